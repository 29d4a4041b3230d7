/** Signal handling of a process that runs one AdaptationWorker (consumers/worker-main.ts). */
import { silentLogger, type Logger } from '../lib/log.js';

/**
 * SIGTERM/SIGINT → `worker.drain()` → `exit(0)` (or `exit(1)` if draining fails or the worker had
 * FAILED). A second signal exits at once with 130. Returns a function that removes the handlers.
 */
export function installSignalHandlers(
  worker: { drain(): Promise<void>; readonly state: string },
  opts: { logger?: Logger; exit?: (code: number) => void; signals?: readonly NodeJS.Signals[] } = {},
): () => void {
  const logger = opts.logger ?? silentLogger;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const signals = opts.signals ?? (['SIGTERM', 'SIGINT'] as const);
  let draining = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (draining) {
      logger.warn('second signal: exiting without draining', { signal });
      exit(130);
      return;
    }
    draining = true;
    logger.info('signal received: draining', { signal });
    worker.drain().then(
      () => exit(worker.state === 'FAILED' ? 1 : 0),
      (err: unknown) => {
        logger.error('drain failed', { error: err });
        exit(1);
      },
    );
  };
  for (const s of signals) process.on(s, onSignal);
  return () => {
    for (const s of signals) process.off(s, onSignal);
  };
}
