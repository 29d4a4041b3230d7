/**
 * `thaw run item|user`: the production adaptation worker. AdaptationWorker over Kafka, entity states
 * in Redis behind the in-process cache tier, prediction rows to ClickHouse (disk spool during an
 * outage), the shared FM from the current release. SIGTERM/SIGINT drain: the batch in flight
 * finishes and is committed, the sink is flushed, clients are closed, exit 0.
 */
import { resolve } from 'node:path';
import { createAdapter } from '../../adapters/registry.js';
import { ClickHouseSink } from '../../analytics/clickhouse-sink.js';
import type { RunConfig } from '../../config/commands/run.js';
import { redactConfig } from '../../config/redact.js';
import { AdaptationWorker } from '../../consumers/worker.js';
import { errorMessage } from '../../lib/errors.js';
import { CachedEntityStore } from '../../model-store/cached-store.js';
import { RedisEntityStore } from '../../model-store/redis-store.js';
import { DeadLetterWriter } from '../../streams/dead-letters.js';
import { EventProducer } from '../../streams/producer.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { clickhouseSinkOptions, kafkaConnection, redisConnection } from '../connect.js';
import { loadCurrentFm } from '../fm-release.js';
import { aborted, closeAll } from '../lifecycle.js';

export const runCommand: Command<RunConfig> = { run: runWorker };

async function runWorker(cfg: RunConfig, ctx: CommandContext): Promise<number> {
  const log = ctx.logger.child({ side: cfg.side, adapter: cfg.adapter, namespace: cfg.namespace });
  log.info('starting worker', { config: redactConfig(cfg) });
  const { fm, manifest } = await loadCurrentFm(resolve(cfg.releaseDir), cfg.model);
  const adapter = createAdapter(cfg.adapter, cfg.side, fm);
  const kafka = kafkaConnection(cfg.kafka);
  const redisStore = new RedisEntityStore({ redis: redisConnection(cfg.redis), keyPrefix: cfg.redis.keyPrefix, ttlSeconds: cfg.stateTtlSeconds, logger: log });
  const store = new CachedEntityStore(redisStore, { maxEntries: cfg.cacheEntries, readTtlMs: cfg.cacheReadTtlMs });
  const sink = new ClickHouseSink(clickhouseSinkOptions(cfg.clickhouse, resolve(cfg.spoolDir), log));
  const producer = new EventProducer({ kafka, logger: log });
  const cleanup = (): Promise<void> => closeAll([producer, sink, store], (err) => log.warn('close failed', { error: errorMessage(err) }));

  let worker: AdaptationWorker;
  try {
    await sink.ensureSchema();
    await producer.connect();
    worker = new AdaptationWorker({
      kafka,
      side: cfg.side,
      adapter,
      store,
      sink,
      deadLetters: new DeadLetterWriter(producer),
      namespace: cfg.namespace,
      fromBeginning: cfg.fromBeginning,
      metricsPort: cfg.metricsPort,
      releaseCreatedMs: manifest.createdAtMs,
      logger: log,
      ...(cfg.groupId === undefined ? {} : { groupId: cfg.groupId }),
      ...(cfg.topic === undefined ? {} : { topic: cfg.topic }),
      ...(cfg.maxBatchMessages === undefined ? {} : { maxBatchMessages: cfg.maxBatchMessages }),
      ...(cfg.partitionsConcurrency === undefined ? {} : { consumer: { partitionsConsumedConcurrently: cfg.partitionsConcurrency } }),
    });
    await worker.start();
  } catch (err) {
    await cleanup();
    throw err;
  }
  log.info('worker started', { groupId: worker.groupId, topic: worker.topic, release: adapter.release });

  // Run until a signal (drain) or until the worker fails on its own.
  const outcome = await Promise.race([aborted(ctx.signal).then(() => 'signal' as const), worker.whenStopped()]);
  if (outcome === 'signal') await worker.drain();
  const final = await worker.whenStopped();
  await cleanup();
  if (final === 'FAILED') {
    log.error('worker failed', { error: worker.error });
    return EXIT.failure;
  }
  return EXIT.ok;
}
