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
 * (cli/preflight.ts): bad credentials or a service down at start exit 1 at once, naming it. */
import { resolve } from 'node:path';
import { ClickHouseSink } from '../../analytics/clickhouse-sink.js';
import type { RunConfig } from '../../config/commands/run.js';
import { redactConfig } from '../../config/redact.js';
import { createAdapterReleaseWatcher, defaultPartner, type CrossSidePartner } from '../../consumers/release-adapter.js';
import { AdaptationWorker } from '../../consumers/worker.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { TOPICS } from '../../streams/topics.js';
export { heartbeatIntervalFor } from '../connect.js';
import { errorMessage } from '../../lib/errors.js';
import { redactUrl } from '../../lib/log.js';
import { ensureTopics } from '../../streams/admin.js';
import { checkServices, clickhouseCheck, kafkaCheck } from '../preflight.js';
import { CachedEntityStore } from '../../model-store/cached-store.js';
import { RedisEntityStore } from '../../model-store/redis-store.js';
import { DeadLetterWriter } from '../../streams/dead-letters.js';
import { EventProducer } from '../../streams/producer.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { clickhouseSinkOptions, heartbeatIntervalFor, kafkaConnection, redisConnection, rf } from '../connect.js';
import { aborted, closeAll } from '../lifecycle.js';

export const runCommand: Command<RunConfig> = { run: runWorker };

async function runWorker(cfg: RunConfig, ctx: CommandContext): Promise<number> {
  const log = ctx.logger.child({ side: cfg.side, adapter: cfg.adapter, namespace: cfg.namespace });
  log.info('starting worker', { config: redactConfig(cfg) });
  const kafka = kafkaConnection(cfg.kafka);
  const cross = crossPartner(cfg);
  const spoolDir = resolve(cfg.spoolDir);
  const redisStore = new RedisEntityStore({ redis: redisConnection(cfg.redis), keyPrefix: cfg.redis.keyPrefix, ttlSeconds: cfg.stateTtlSeconds, maxEntities: cfg.stateMaxEntities, logger: log });
  const store = new CachedEntityStore(redisStore, { maxEntries: cfg.cacheEntries, readTtlMs: cfg.cacheReadTtlMs });
  const sink = new ClickHouseSink(clickhouseSinkOptions(cfg.clickhouse, spoolDir, log));
  const producer = new EventProducer({ kafka, logger: log });
  let releases: { stop(): Promise<void> } | undefined;
  const cleanup = (): Promise<void> => closeAll([{ close: async () => releases?.stop() }, producer, sink, store], (err) => log.warn('close failed', { error: errorMessage(err) }));

  let worker: AdaptationWorker;
  try {
    // Every service answers and accepts the credentials, or exit 1 now naming it: later outages are
    // waited out batch by batch, which for a wrong password or a typo in a host meant for ever.
    await checkServices([kafkaCheck(kafka), { service: 'redis', target: redactUrl(cfg.redis.url), check: () => redisStore.ping() }, clickhouseCheck(cfg.clickhouse.url, () => sink.ensureSchema())]);
    // The dead-letter topic exists before the first poison record: a cluster that does not create
    // topics on first use (auto.create.topics.enable=false, the production setting) would otherwise
    // refuse the write, and broker defaults would give it one copy where the events have three.
    await ensureTopics(kafka, [{ topic: TOPICS.deadLetters, ...rf(cfg.replicationFactor) }], log);
    // Refuses to start without a current release (RELEASE_NOT_FOUND), or with one of the wrong side or
    // type for the adapter (RELEASE_INCOMPATIBLE, e.g. --adapter emerg on an fm release).
    const watcher = await createAdapterReleaseWatcher({
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
    releases = watcher;
    await watcher.start();
    await producer.connect();
    worker = new AdaptationWorker({
      kafka,
      side: cfg.side,
      releaseWatcher: watcher,
      store,
      sink,
      deadLetters: new DeadLetterWriter(producer),
      namespace: cfg.namespace,
      ...(cross === undefined ? {} : { crossAdapter: cross.adapter }),
      fromBeginning: cfg.fromBeginning,
      untilEnd: cfg.untilEnd,
      metricsPort: cfg.metricsPort,
      metricsHost: cfg.metricsHost,
      pipelineDepth: cfg.pipelineDepth,
      fetchAhead: cfg.fetchAhead,
      logger: log,
      ...(cfg.groupId === undefined ? {} : { groupId: cfg.groupId }),
      ...(cfg.topic === undefined ? {} : { topic: cfg.topic }),
      ...(cfg.maxBatchMessages === undefined ? {} : { maxBatchMessages: cfg.maxBatchMessages }),
      consumer: {
        sessionTimeoutMs: cfg.sessionTimeoutMs,
        heartbeatIntervalMs: cfg.heartbeatIntervalMs ?? heartbeatIntervalFor(cfg.sessionTimeoutMs),
        ...(cfg.partitionsConcurrency === undefined ? {} : { partitionsConsumedConcurrently: cfg.partitionsConcurrency }),
      },
    });
    await worker.start();
  } catch (err) {
    await cleanup();
    throw err;
  }
  log.info('worker started', { groupId: worker.groupId, topic: worker.topic, release: worker.adapter.release, crossSide: cross ?? 'off' });

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

/** `promise`'s value, or 'timeout' if it takes longer than `ms`. */
function deadline<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** The cross-side partner of `--cross-adapter` / `--cross-model` (undefined: off, or a `none` worker). */
export function crossPartner(cfg: Pick<RunConfig, 'adapter' | 'model' | 'crossAdapter' | 'crossModel'>): CrossSidePartner | undefined {
  if (cfg.crossAdapter === 'off' || cfg.adapter === 'none') return undefined;
  const auto = defaultPartner(cfg.adapter, cfg.model);
  const adapter = cfg.crossAdapter === 'auto' ? auto?.adapter : cfg.crossAdapter;
  if (adapter === undefined) return undefined;
  return { adapter, model: cfg.crossModel ?? (adapter === cfg.adapter ? cfg.model : (auto?.model ?? 'fm')) };
}
