/**
 * Entry of one worker thread of `thaw run --threads N` (started by cli/run-threads.ts): a whole
 * worker (cli/run-assembly.ts) whose logs carry `thread`, whose metrics are labelled with it and
 * served by the main thread. It drains when the main thread says so, reports when it starts to stop
 * by itself (end of the topic, failure) and once it has stopped; the main thread then ends it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../lib/log.js';
import { assembleWorker } from './run-assembly.js';
import { threadError, type FromThread, type ThreadData, type ToThread } from './run-thread-protocol.js';

async function runThread(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('cli/run-thread.ts runs as a worker thread of thaw run --threads');
  const { cfg, index } = workerData as ThreadData;
  const send = (m: FromThread): void => port.postMessage(m);
  const log = createLogger(cfg.logLevel, { cmd: 'run', thread: index }).child({ side: cfg.side, adapter: cfg.adapter, namespace: cfg.namespace });

  let assembled: Awaited<ReturnType<typeof assembleWorker>>;
  try {
    // Process metrics (CPU, memory) are the process's: the main thread exports them once.
    assembled = await assembleWorker(cfg, log, { threadIndex: index, metricsOptions: { labels: { thread: String(index) }, serve: false, processMetrics: false } });
  } catch (err) {
    send({ kind: 'start-failed', error: threadError(err) });
    return;
  }
  const { worker, cleanup } = assembled;
  port.on('message', (m: ToThread) => {
    if (m.kind === 'drain') worker.drain().catch((err: unknown) => log.error('drain failed', { error: err }));
    else
      void worker.metrics.registry.getMetricsAsJSON().then(
        (metrics) => send({ kind: 'scraped', id: m.id, healthy: worker.state === 'RUNNING' && worker.stats().outageSinceMs === undefined, metrics }),
        // A collector that throws must not kill the thread: this scrape answers unhealthy, empty.
        (err: unknown) => {
          log.warn('metrics collection failed', { error: err });
          send({ kind: 'scraped', id: m.id, healthy: false, metrics: [] });
        },
      );
  });
  send({ kind: 'started', groupId: worker.groupId, topic: worker.topic, release: worker.adapter.release });
  void worker.whenDraining().then(() => send({ kind: 'draining' }));
  const state = await worker.whenStopped();
  await cleanup();
  const stats = worker.stats();
  send({ kind: 'stopped', state: state === 'FAILED' ? 'FAILED' : 'STOPPED', error: state === 'FAILED' ? threadError(worker.error) : undefined, processed: stats.processed, batches: stats.batches });
}

// An error here is not caught: the thread dies with it and the main thread reports it (exit 1).
await runThread();
