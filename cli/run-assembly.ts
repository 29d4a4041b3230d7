/**
 * One `thaw run` worker as it is wired in production: preflight of every service, the dead-letter
 * topic, the release watcher, Redis behind the cache tier, the ClickHouse sink with its disk spool,
 * the dead-letter producer and the AdaptationWorker over them. `thaw run` builds one on its main
 * thread, or one per worker thread with --threads (cli/run-threads.ts).
 */
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ClickHouseSink } from '../analytics/clickhouse-sink.js';
import type { RunConfig } from '../config/commands/run.js';
import { createAdapterReleaseWatcher, defaultPartner, type CrossSidePartner } from '../consumers/release-adapter.js';
import type { WorkerMetricsOptions } from '../consumers/metrics.js';
import { AdaptationWorker } from '../consumers/worker.js';
import { errorMessage, ThawError } from '../lib/errors.js';
import { redactUrl, type Logger } from '../lib/log.js';
import { CachedEntityStore } from '../model-store/cached-store.js';
import { RedisEntityStore } from '../model-store/redis-store.js';
import { ReleaseStore } from '../model-store/releases.js';
import { ensureTopics } from '../streams/admin.js';
import { DeadLetterWriter } from '../streams/dead-letters.js';
import { EventProducer } from '../streams/producer.js';
import { TOPICS } from '../streams/topics.js';
import { clickhouseSinkOptions, heartbeatIntervalFor, kafkaConnection, redisConnection, rf } from './connect.js';
import { closeAll } from './lifecycle.js';
import { checkServices, clickhouseCheck, kafkaCheck } from './preflight.js';

export interface AssembledWorker {
  worker: AdaptationWorker;
  sink: ClickHouseSink;
  /** Absolute directory of this worker's disk spool. */
  spoolDir: string;
  /** Stops the release watcher, closes the producer, the sink and the store (errors logged). */
  cleanup: () => Promise<void>;
}

export interface AssembleOptions {
  /** Index of the worker thread (0 on the main thread): picks the spool directory. @default 0 */
  threadIndex?: number;
  /** Passed to the worker's metrics (a thread's label, no endpoint of its own). @default none */
  metricsOptions?: Pick<WorkerMetricsOptions, 'labels' | 'serve' | 'processMetrics'>;
}

/** Builds and starts one worker; on a failure closes what it built and rethrows. */
export async function assembleWorker(cfg: RunConfig, log: Logger, opts: AssembleOptions = {}): Promise<AssembledWorker> {
  const kafka = kafkaConnection(cfg.kafka);
  const cross = crossPartner(cfg);
  const spoolDir = threadSpoolDir(resolve(cfg.spoolDir), opts.threadIndex ?? 0);
  const redisStore = new RedisEntityStore({ redis: redisConnection(cfg.redis), keyPrefix: cfg.redis.keyPrefix, ttlSeconds: cfg.stateTtlSeconds, maxEntities: cfg.stateMaxEntities, logger: log });
  const store = new CachedEntityStore(redisStore, { maxEntries: cfg.cacheEntries, readTtlMs: cfg.cacheReadTtlMs });
  const sink = new ClickHouseSink(clickhouseSinkOptions(cfg.clickhouse, spoolDir, log));
  const producer = new EventProducer({ kafka, logger: log });
  let releases: { stop(): Promise<void> } | undefined;
  const cleanup = (): Promise<void> => closeAll([{ close: async () => releases?.stop() }, producer, sink, store], (err) => log.warn('close failed', { error: errorMessage(err) }));

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
    const worker = new AdaptationWorker({
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
      ...(opts.metricsOptions === undefined ? {} : { metricsOptions: opts.metricsOptions }),
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
    log.info('worker started', { groupId: worker.groupId, topic: worker.topic, release: worker.adapter.release, crossSide: cross ?? 'off' });
    return { worker, sink, spoolDir, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/**
 * The spool directory of worker thread `index`: `--spool-dir` itself for thread 0 (so one thread,
 * the default, keeps the layout it always had), `<spool-dir>/thread-<index>` for the others: a
 * spool has one writer (analytics/spool.ts).
 */
export function threadSpoolDir(spoolDir: string, index: number): string {
  return index === 0 ? spoolDir : join(spoolDir, `thread-${index}`);
}

/**
 * Refuses to start with fewer threads than a previous run whose spool still holds rows: those rows
 * are sent only by a thread of the same index (USAGE, naming the directory and the way out).
 */
export function checkNoStrandedSpool(spoolDir: string, threads: number): void {
  let entries: string[];
  try {
    entries = readdirSync(resolve(spoolDir));
  } catch {
    return; // no spool yet
  }
  for (const name of entries) {
    const index = /^thread-(\d+)$/.exec(name)?.[1];
    if (index === undefined || Number(index) < threads) continue;
    const dir = join(resolve(spoolDir), name);
    let segments: string[];
    try {
      segments = readdirSync(dir).filter((f) => f.endsWith('.jsonl'));
    } catch {
      continue;
    }
    if (segments.length === 0) continue;
    throw new ThawError(
      'USAGE',
      `${dir} holds prediction rows a previous run with more threads spooled during a ClickHouse outage (${segments.length} segment file(s)): run with --threads ${Number(index) + 1} or more once to send them`,
    );
  }
}

/** The cross-side partner of `--cross-adapter` / `--cross-model` (undefined: off, or a `none` worker). */
export function crossPartner(cfg: Pick<RunConfig, 'adapter' | 'model' | 'crossAdapter' | 'crossModel'>): CrossSidePartner | undefined {
  if (cfg.crossAdapter === 'off' || cfg.adapter === 'none') return undefined;
  const auto = defaultPartner(cfg.adapter, cfg.model);
  const adapter = cfg.crossAdapter === 'auto' ? auto?.adapter : cfg.crossAdapter;
  if (adapter === undefined) return undefined;
  return { adapter, model: cfg.crossModel ?? (adapter === cfg.adapter ? cfg.model : (auto?.model ?? 'fm')) };
}

/** `promise`'s value, or 'timeout' if it takes longer than `ms`. */
export function deadline<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
