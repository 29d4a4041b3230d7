/**
 * A worker end to end (item or user side, by the adapter), wired as `thaw run` wires it (RedisEntityStore behind
 * CachedEntityStore, ClickHouseSink, DeadLetterWriter over EventProducer), plus the bench's
 * timing decorators (instrument.ts). Two runs:
 *   drain    the pre-produced topic from the beginning: events/s from the first batch to the
 *            handler resolving (= durable) with `limit` events handled (to lag 0 when limit = all)
 *   latency  live consumption while a paced producer (child process) writes events stamped with the
 *            wall clock: event-to-state latency samples and the achieved rates
 */
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Adapter } from '../../adapters/types.js';
import { ClickHouseSink } from '../../analytics/clickhouse-sink.js';
import { AdaptationWorker, DEFAULT_WORKER_FETCH_AHEAD, DEFAULT_WORKER_PIPELINE_DEPTH, type AdapterReleaseSource } from '../../consumers/worker.js';
import { errorMessage } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { CachedEntityStore } from '../../model-store/cached-store.js';
import { RedisEntityStore } from '../../model-store/redis-store.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { ensureTopics } from '../../streams/admin.js';
import { BatchConsumer } from '../../streams/batch-consumer.js';
import { DeadLetterWriter } from '../../streams/dead-letters.js';
import { EventProducer } from '../../streams/producer.js';
import { quantile } from '../stats.js';
import { LagWatch } from './ceilings.js';
import { benchSource, messageFor, type BenchResources, type Services } from './fixtures.js';
import { TimedSink, TimedSource, TimedStore } from './instrument.js';
import { emptySamples, phaseFigures, type PhaseFigure } from './trace.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

export interface Rig {
  worker: AdaptationWorker;
  consumer: BatchConsumer;
  source: TimedSource;
  store: TimedStore;
  sink: TimedSink;
  cache: CachedEntityStore;
  clickhouse: ClickHouseSink;
  /** Drains the worker, then closes the clients the rig built. */
  close(): Promise<void>;
}

/**
 * What the worker runs: a fixed adapter, or (as `thaw run`) a started release watcher whose active
 * release gives the adapter, with the cross-side read of `crossAdapter`.
 */
export type RigAdapter = Adapter | { releases: AdapterReleaseSource; side: Adapter['side']; crossAdapter?: string };

/** The worker wired as `thaw run` wires it, with the bench's timing decorators. */
export async function buildRig(
  services: Services,
  res: BenchResources,
  adapter: RigAdapter,
  topic: string,
  what: string,
  maxBatchMessages: number,
  log: Logger,
  /** undefined: the BatchConsumer default (every partition), as `thaw run` without --partitions-concurrency. */
  partitionsConsumedConcurrently?: number,
  /** undefined: the worker's default (DEFAULT_WORKER_PIPELINE_DEPTH). */
  pipelineDepth?: number,
  /** undefined: the worker's default (DEFAULT_WORKER_FETCH_AHEAD). */
  fetchAhead?: boolean,
): Promise<Rig> {
  const run =
    'releases' in adapter
      ? { side: adapter.side, releaseWatcher: adapter.releases, ...(adapter.crossAdapter === undefined ? {} : { crossAdapter: adapter.crossAdapter }) }
      : { side: adapter.side, adapter };
  const redisStore = new RedisEntityStore({ redis: { url: services.redisUrl }, keyPrefix: res.redisPrefix(what), logger: log });
  const cache = new CachedEntityStore(redisStore);
  const store = new TimedStore(cache);
  const clickhouse = new ClickHouseSink({
    url: services.clickhouseUrl,
    table: res.table(what.replace(/-/g, '_')),
    spoolDir: res.dir(join(tmpdir(), `thaw-bench-spine-${res.id}-${what}`)),
    logger: log,
  });
  const sink = new TimedSink(clickhouse);
  const producer = new EventProducer({ kafka: services.kafka, logger: log });
  const dlqTopic = res.topic(`${what}-dlq`);
  await ensureTopics(services.kafka, [{ topic: dlqTopic, partitions: 1 }]);
  await clickhouse.ensureSchema();
  await producer.connect();
  const groupId = res.group(what);
  // The consumer the worker would build from the same options, built here so it can be timed.
  const consumer = new BatchConsumer({
    kafka: services.kafka,
    groupId,
    topics: [topic],
    fromBeginning: true,
    maxBatchMessages,
    ...(partitionsConsumedConcurrently === undefined ? {} : { partitionsConsumedConcurrently }),
    pipelineDepth: pipelineDepth ?? DEFAULT_WORKER_PIPELINE_DEPTH,
    fetchAhead: fetchAhead ?? DEFAULT_WORKER_FETCH_AHEAD,
    logger: log,
  });
  const source = new TimedSource(consumer);
  const worker = new AdaptationWorker({
    kafka: services.kafka,
    ...run,
    store,
    sink,
    deadLetters: new DeadLetterWriter(producer, dlqTopic),
    namespace: 'bench',
    groupId,
    topic,
    maxBatchMessages,
    ...(pipelineDepth === undefined ? {} : { pipelineDepth }),
    metricsPort: 0,
    source,
    logger: log,
  });
  return {
    worker,
    consumer,
    source,
    store,
    sink,
    cache,
    clickhouse,
    close: async () => {
      try {
        await worker.drain();
      } finally {
        for (const c of [producer, clickhouse, store]) await c.close().catch((err: unknown) => log.warn('close failed', { error: errorMessage(err) }));
      }
    },
  };
}

export interface DrainResult {
  adapter: string;
  /** Chunks of one partition in flight (worker pipelineDepth; 1 = serial). */
  pipelineDepth: number;
  /** BatchConsumer partitionsConsumedConcurrently of this run (`thaw run` default: every partition). */
  concurrency: number;
  /** Inserts the ClickHouse sink made (a group commit carries several batches' rows). */
  sinkInserts: number;
  events: number;
  /** First batch to `limit` events handled (to lag 0 when the whole topic was the limit). */
  ms: number;
  perSec: number;
  /** First batch to the last batch's handler resolving (before its commit). */
  msToLastBatch: number;
  batches: number;
  /**
   * Where the wall time went, ms, summed over batches; "kafkaOtherMs" = wall − handler time (fetch,
   * commit, idle). With concurrency > 1 handlers overlap and the parts can sum to more than the wall time.
   */
  split: { redisGetMs: number; sinkMs: number; redisPutMs: number; decodeComputeMs: number; kafkaOtherMs: number };
  worker: ReturnType<AdaptationWorker['stats']>;
  cache: { hits: number; misses: number; size: number };
}

/**
 * E2E: the worker drains the pre-produced topic (n events) in its own group. With `limit` < n the
 * run ends when `limit` events were handled (slow adapters: the rate is what matters, not the tail).
 */
export async function endToEndDrain(
  services: Services,
  res: BenchResources,
  adapter: Adapter,
  topic: string,
  n: number,
  maxBatchMessages: number,
  log: Logger,
  /** tag: appended to the run's group and table names (several runs of one adapter in a process). */
  opts: { concurrency?: number; pipelineDepth?: number; fetchAhead?: boolean; limit?: number; tag?: string } = {},
): Promise<DrainResult> {
  const depth = opts.pipelineDepth ?? DEFAULT_WORKER_PIPELINE_DEPTH;
  const limit = Math.min(n, opts.limit ?? n);
  const rig = await buildRig(services, res, adapter, topic, `e2e-${adapter.name}-d${depth}${opts.tag ?? ''}`, maxBatchMessages, log, opts.concurrency, depth, opts.fetchAhead);
  const watch = await LagWatch.open(services.kafka, rig.worker.groupId, [topic]);
  try {
    await rig.worker.start();
    await rig.source.handled(limit, 600_000);
    const end = limit === n ? await watch.untilZero() : rig.source.lastBatchDoneAt;
    const s = rig.source;
    const events = limit === n ? s.events : s.eventsAtLastBatch;
    const ms = end - s.firstBatchAt;
    const handlerOther = s.handlerMs - rig.store.getMs - rig.sink.writeMs - rig.store.putMs;
    return {
      adapter: adapter.name,
      pipelineDepth: depth,
      concurrency: rig.consumer.concurrency,
      sinkInserts: rig.clickhouse.groupCommits,
      events,
      ms,
      perSec: events / (ms / 1000),
      msToLastBatch: s.lastBatchDoneAt - s.firstBatchAt,
      batches: s.batches,
      split: {
        redisGetMs: rig.store.getMs,
        sinkMs: rig.sink.writeMs,
        redisPutMs: rig.store.putMs,
        decodeComputeMs: handlerOther,
        kafkaOtherMs: ms - s.handlerMs,
      },
      worker: rig.worker.stats(),
      cache: rig.cache.stats(),
    };
  } finally {
    await rig.close();
    await watch.close();
  }
}

/** Events of the warm-up before a live run (not sampled). */
export const WARMUP_EVENTS = 200;

/** Warm-up of a live rig: events until the group has its partitions and a first batch went through. */
export async function warmUp(services: Services, rig: Rig, topic: string, side: Adapter['side']): Promise<void> {
  const producer = new EventProducer({ kafka: services.kafka });
  await producer.connect();
  try {
    const warm = [];
    for await (const e of syntheticStream(benchSource(WARMUP_EVENTS, 5))) warm.push(messageFor(side, { ...e, timeMs: Date.now() }));
    await producer.send(topic, warm);
  } finally {
    await producer.close();
  }
  await rig.source.handled(WARMUP_EVENTS, 120_000);
}

/** What pace-producer.ts reports: events sent, ms, achieved rate, wall clock of the first send. */
export interface PacedRun {
  sent: number;
  ms: number;
  rate: number;
  startMs: number;
}

/** Runs pace-producer.ts (a child process) writing live events to `topic` at `rate` for `seconds`. */
export async function pacedProducer(services: Services, topic: string, rate: number, seconds: number, side: Adapter['side']): Promise<PacedRun> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench', 'spine', 'pace-producer.ts'), '--topic', topic, '--rate', String(rate), '--seconds', String(seconds), '--key', side],
    { cwd: ROOT, env: { ...process.env, THAW_KAFKA: services.kafka.brokers.join(',') }, maxBuffer: 1 << 20 },
  );
  const lastLine = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(lastLine) as PacedRun;
}

/** Latency of every event at one paced load (one of a latency run's phases). */
export interface LatencyPoint {
  /** Load asked of the paced producer, events/s. */
  targetEventsPerSec: number;
  /** Load the paced producer achieved (its events over its sending time), events/s: the offered load. */
  loadEventsPerSec: number;
  /** Events the worker handled in this phase over the time from the producer's first send to its last batch durable, events/s. */
  consumedEventsPerSec: number;
  produced: number;
  /** Latency samples: one per event produced in this phase. */
  samples: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** The same events' latency by phase (trace.ts): p50/p99 of each, and its mean over the slowest 1 %. */
  phases: PhaseFigure[];
}

/**
 * Latency at load: one worker consumes a live 4-partition topic while pace-producer.ts writes at each
 * of `rates` in turn for `seconds` (the next phase starts once every event of the previous one is
 * durable). Every event is sampled: its Kafka record timestamp (the producer's send time) to its
 * batch's handler resolving (rows durable, states written).
 */
export async function latencyAtLoads(
  services: Services,
  res: BenchResources,
  adapter: Adapter,
  rates: readonly number[],
  seconds: number,
  maxBatchMessages: number,
  log: Logger,
  /** undefined: the worker's default (DEFAULT_WORKER_PIPELINE_DEPTH). */
  pipelineDepth?: number,
  /** undefined: the worker's default (DEFAULT_WORKER_FETCH_AHEAD). */
  fetchAhead?: boolean,
  /** Appended to the run's topic, group and table names (several runs of one adapter in a process). */
  tag = '',
): Promise<LatencyPoint[]> {
  const topic = res.topic(`live-${adapter.name}${tag}`);
  await ensureTopics(services.kafka, [{ topic, partitions: 4 }]);
  const rig = await buildRig(services, res, adapter, topic, `latency-${adapter.name}${tag}`, maxBatchMessages, log, undefined, pipelineDepth, fetchAhead);
  const out: LatencyPoint[] = [];
  try {
    await rig.worker.start();
    await warmUp(services, rig, topic, adapter.side);
    const src = rig.source;
    for (const rate of rates) {
      const before = src.events;
      src.eventLatencyMs = [];
      src.phases = emptySamples();
      src.recordEventLatencyAfterMs = Date.now();
      const produced = await pacedProducer(services, topic, rate, seconds, adapter.side);
      await src.handled(before + produced.sent, 300_000);
      const lat = src.eventLatencyMs;
      src.recordEventLatencyAfterMs = Number.POSITIVE_INFINITY;
      const point: LatencyPoint = {
        targetEventsPerSec: rate,
        loadEventsPerSec: produced.rate,
        consumedEventsPerSec: (src.events - before) / ((src.lastBatchDoneMs - produced.startMs) / 1000),
        produced: produced.sent,
        samples: lat.length,
        p50Ms: quantile(lat, 0.5),
        p99Ms: quantile(lat, 0.99),
        p999Ms: quantile(lat, 0.999),
        maxMs: quantile(lat, 1),
        phases: phaseFigures(src.phases),
      };
      const { phases, ...summary } = point;
      log.info('latency phase done', {
        adapter: adapter.name,
        ...summary,
        phases: Object.fromEntries(phases.map((f) => [f.phase, [Math.round(f.p50Ms), Math.round(f.p99Ms), Math.round(f.tailMeanMs)]])),
      });
      out.push(point);
    }
    return out;
  } finally {
    await rig.close();
  }
}
