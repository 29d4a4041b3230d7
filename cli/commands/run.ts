/**
 * `thaw run item|user`: the production adaptation worker. AdaptationWorker over Kafka, entity states
 * in Redis behind the in-process cache tier, prediction rows to ClickHouse (disk spool during an
 * outage), the shared model from the current release of `--model` (an FM, or a meta-learned EmerG,
 * ColdNAS or fixed/adaptive release trained for the stream: the adapter is built from the release,
 * adapters/registry.ts `createAdapterFromRelease`), hot-swapped between micro-batches when a new
 * release of the same type is promoted (polled every releasePollMs, and at once on an announcement
 * on thaw.releases). SIGTERM/SIGINT drain: the batch in flight finishes and is committed, the sink
 * is flushed, clients are closed, exit 0. With --until-end the worker drains the same way once the
 * group has committed the topic up to its end offsets at start (consumers/until-end.ts), exit 0. */
import { resolve } from 'node:path';
import { ClickHouseSink } from '../../analytics/clickhouse-sink.js';
import type { RunConfig } from '../../config/commands/run.js';
import { redactConfig } from '../../config/redact.js';
import { createAdapterReleaseWatcher, defaultPartner, type CrossSidePartner } from '../../consumers/release-adapter.js';
import { AdaptationWorker } from '../../consumers/worker.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { TOPICS } from '../../streams/topics.js';
import { errorMessage } from '../../lib/errors.js';
import { CachedEntityStore } from '../../model-store/cached-store.js';
import { RedisEntityStore } from '../../model-store/redis-store.js';
import { DeadLetterWriter } from '../../streams/dead-letters.js';
import { EventProducer } from '../../streams/producer.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { clickhouseSinkOptions, kafkaConnection, redisConnection } from '../connect.js';
import { aborted, closeAll } from '../lifecycle.js';

export const runCommand: Command<RunConfig> = { run: runWorker };

async function runWorker(cfg: RunConfig, ctx: CommandContext): Promise<number> {
  const log = ctx.logger.child({ side: cfg.side, adapter: cfg.adapter, namespace: cfg.namespace });
  log.info('starting worker', { config: redactConfig(cfg) });
  const kafka = kafkaConnection(cfg.kafka);
  const cross = crossPartner(cfg);
  // Refuses to start without a current release (RELEASE_NOT_FOUND), or with one of the wrong side or
  // type for the adapter (RELEASE_INCOMPATIBLE, e.g. --adapter emerg on an fm release).
  const releases = await createAdapterReleaseWatcher({
    store: new ReleaseStore({ root: resolve(cfg.releaseDir) }),
    model: cfg.model,
    adapter: cfg.adapter,
    adapterOptions: cfg.adapterOptions,
    side: cfg.side,
    ...(cross === undefined ? {} : { cross }),
    pollIntervalMs: cfg.releasePollMs,
    kafka: { connection: kafka, topic: TOPICS.releases },
    logger: log,
  });
  await releases.start();
  const redisStore = new RedisEntityStore({ redis: redisConnection(cfg.redis), keyPrefix: cfg.redis.keyPrefix, ttlSeconds: cfg.stateTtlSeconds, maxEntities: cfg.stateMaxEntities, logger: log });
  const store = new CachedEntityStore(redisStore, { maxEntries: cfg.cacheEntries, readTtlMs: cfg.cacheReadTtlMs });
  const sink = new ClickHouseSink(clickhouseSinkOptions(cfg.clickhouse, resolve(cfg.spoolDir), log));
  const producer = new EventProducer({ kafka, logger: log });
  const cleanup = (): Promise<void> =>
    closeAll([{ close: () => releases.stop() }, producer, sink, store], (err) => log.warn('close failed', { error: errorMessage(err) }));

  let worker: AdaptationWorker;
  try {
    await sink.ensureSchema();
    await producer.connect();
    worker = new AdaptationWorker({
      kafka,
      side: cfg.side,
      releaseWatcher: releases,
      store,
      sink,
      deadLetters: new DeadLetterWriter(producer),
      namespace: cfg.namespace,
      ...(cross === undefined ? {} : { crossAdapter: cross.adapter }),
      fromBeginning: cfg.fromBeginning,
      untilEnd: cfg.untilEnd,
      metricsPort: cfg.metricsPort,
      pipelineDepth: cfg.pipelineDepth,
      logger: log,
      ...(cfg.groupId === undefined ? {} : { groupId: cfg.groupId }),
      ...(cfg.topic === undefined ? {} : { topic: cfg.topic }),
      ...(cfg.maxBatchMessages === undefined ? {} : { maxBatchMessages: cfg.maxBatchMessages }),
      consumer: {
        ...(cfg.partitionsConcurrency === undefined ? {} : { partitionsConsumedConcurrently: cfg.partitionsConcurrency }),
        ...(cfg.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: cfg.sessionTimeoutMs }),
        ...(cfg.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: cfg.heartbeatIntervalMs }),
      },
    });
    await worker.start();
  } catch (err) {
    await cleanup();
    throw err;
  }
  log.info('worker started', { groupId: worker.groupId, topic: worker.topic, release: worker.adapter.release, crossSide: cross ?? 'off' });

  // Run until a signal (drain), until the worker fails on its own, or (--until-end) until it drained
  // itself at the end of the topic.
  const outcome = await Promise.race([aborted(ctx.signal).then(() => 'signal' as const), worker.whenStopped()]);
  if (outcome === 'signal') await worker.drain();
  const final = await worker.whenStopped();
  await cleanup();
  if (final === 'FAILED') {
    log.error('worker failed', { error: worker.error });
    return EXIT.failure;
  }
  if (outcome !== 'signal') log.info('worker stopped at the end of the topic', { processed: worker.stats().processed, batches: worker.stats().batches });
  return EXIT.ok;
}

/** The cross-side partner of `--cross-adapter` / `--cross-model` (undefined: off, or a `none` worker). */
export function crossPartner(cfg: Pick<RunConfig, 'adapter' | 'model' | 'crossAdapter' | 'crossModel'>): CrossSidePartner | undefined {
  if (cfg.crossAdapter === 'off' || cfg.adapter === 'none') return undefined;
  const auto = defaultPartner(cfg.adapter, cfg.model);
  const adapter = cfg.crossAdapter === 'auto' ? auto?.adapter : cfg.crossAdapter;
  if (adapter === undefined) return undefined;
  return { adapter, model: cfg.crossModel ?? (adapter === cfg.adapter ? cfg.model : (auto?.model ?? 'fm')) };
}
