/**
 * `thaw run item|user`: the production adaptation worker. AdaptationWorker over Kafka, entity states
 * in Redis behind the in-process cache tier, prediction rows to ClickHouse (disk spool during an
 * outage), the shared model from the current release of `--model` (an FM, or a meta-learned EmerG,
 * ColdNAS or fixed/adaptive release trained for the stream: the adapter is built from the release,
 * adapters/registry.ts `createAdapterFromRelease`), hot-swapped between micro-batches when a new
 * release of the same type is promoted (polled every releasePollMs, and at once on an announcement
 * on thaw.releases). SIGTERM/SIGINT drain: the batch in flight finishes and is committed, the sink
 * is flushed, clients are closed, exit 0; a drain longer than --drain-timeout-ms exits 1. With
 * --until-end the worker drains the same way once the group has committed the topic up to its end
 * offsets at start (consumers/until-end.ts), exit 0. Start-up checks every service first
 * (cli/preflight.ts): bad credentials or a service down at start exit 1 at once, naming it.
 * With --threads N (N > 1) the same worker runs N times in worker threads of this process
 * (cli/run-threads.ts). */
import type { RunConfig } from '../../config/commands/run.js';
import { redactConfig } from '../../config/redact.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { aborted } from '../lifecycle.js';
import { assembleWorker, checkNoStrandedSpool, deadline } from '../run-assembly.js';
import { runThreads } from '../run-threads.js';
export { heartbeatIntervalFor } from '../connect.js';
export { crossPartner } from '../run-assembly.js';

export const runCommand: Command<RunConfig> = { run: runWorker };

async function runWorker(cfg: RunConfig, ctx: CommandContext): Promise<number> {
  const log = ctx.logger.child({ side: cfg.side, adapter: cfg.adapter, namespace: cfg.namespace });
  log.info('starting worker', { config: redactConfig(cfg) });
  if (cfg.threads > 1) return runThreads(cfg, ctx, log);
  checkNoStrandedSpool(cfg.spoolDir, 1);
  const { worker, sink, spoolDir, cleanup } = await assembleWorker(cfg, log);

  // Run until a signal (drain), until the worker fails on its own, or (--until-end) until it drains
  // itself at the end of the topic. However it began, stopping has --drain-timeout-ms.
  const outcome = await Promise.race([aborted(ctx.signal).then(() => 'signal' as const), worker.whenDraining().then(() => 'self' as const)]);
  if (outcome === 'signal') worker.drain().catch((err: unknown) => log.error('drain failed', { error: err }));
  const final = await deadline(worker.whenStopped(), cfg.drainTimeoutMs);
  if (final === 'timeout') {
    const spooledBytes = await deadline(sink.spooledBytes(), 1_000).catch(() => 'unknown' as const);
    log.error('drain deadline passed: exiting without waiting any longer', {
      code: 'DRAIN_TIMEOUT',
      drainTimeoutMs: cfg.drainTimeoutMs,
      spoolDir,
      spooledBytes: spooledBytes === 'timeout' ? 'unknown' : spooledBytes,
      stays: 'rows in the spool are durable and are sent to ClickHouse on the next start; the batch in flight was not committed and is consumed again',
    });
    // Closing waits on the same stuck service: bounded, the process exits anyway (cli/main.ts runCli).
    await deadline(cleanup(), 2_000);
    return EXIT.failure;
  }
  await cleanup();
  if (final === 'FAILED') {
    log.error('worker failed', { error: worker.error, code: (worker.error as { code?: unknown } | undefined)?.code });
    return EXIT.failure;
  }
  if (outcome !== 'signal') log.info('worker stopped at the end of the topic', { processed: worker.stats().processed, batches: worker.stats().batches });
  return EXIT.ok;
}
