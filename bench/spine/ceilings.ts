/**
 * The ceilings: each piece of the worker with everything else replaced by nothing, measured with
 * the worker's own code path, parallelism and batch shapes, so that end to end can never exceed one
 * of them (run.ts checks it and names the figure if it does).
 *   Kafka + decode  the BatchConsumer (same options as the worker's: every partition concurrently,
 *                   chunks of ≤ maxBatchMessages) draining the topic, decodeLabelled on every
 *                   message, nothing else; it records the chunks exactly as delivered
 *   Redis           the worker's BatchProcessor (load in one round trip, one atomic write with the
 *                   safeguard state and the partition's progress) through the cache tier over
 *                   RedisEntityStore, replaying the recorded chunks partition by partition, the
 *                   partitions concurrently; the adapter replaced by one that computes nothing
 *                   (same state size, view size, baseline and call shape) and a sink that does nothing
 *   sink            the same replay into a real ClickHouseSink (so concurrent partitions' writes are
 *                   group-committed as end to end), states in the cache tier over a store that keeps
 *                   nothing, the adapter computing nothing
 *   adapt alone     the same replay with the real adapter (predictThenAdaptSequence or the waves the
 *                   worker builds), the cache tier over a store that keeps nothing, a sink that does
 *                   nothing
 * Decoding is done once, outside the timed regions of the replays (it is the Kafka ceiling's work).
 * Each replay is timed from its first chunk to its last resolving, as end to end is.
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Adapter, AdapterBatch } from '../../adapters/types.js';
import { ClickHouseSink } from '../../analytics/clickhouse-sink.js';
import type { PredictionSink } from '../../analytics/types.js';
import { BatchProcessor, type BatchItem } from '../../consumers/processor.js';
import type { Logger } from '../../lib/log.js';
import { CachedEntityStore } from '../../model-store/cached-store.js';
import { RedisEntityStore } from '../../model-store/redis-store.js';
import type { EntityState, EntityStore, ScopedWrite, StateScope } from '../../model-store/types.js';
import type { Admin } from 'kafkajs';
import { groupLag } from '../../streams/admin.js';
import { BatchConsumer } from '../../streams/batch-consumer.js';
import { createKafka, type KafkaConnection } from '../../streams/kafka.js';
import { decodeLabelled } from '../../streams/serde.js';
import type { Side } from '../../schemas/types.js';
import type { BenchResources, Services } from './fixtures.js';

/** One micro-batch as the BatchConsumer handed it over. */
export interface RecordedBatch {
  partition: number;
  offsets: number[];
  values: Buffer[];
}

export interface CeilingResult {
  path: string;
  /** What one unit is: events, or rows for the sink. */
  unit: 'events' | 'rows';
  count: number;
  ms: number;
  perSec: number;
  /** Extra facts worth printing (phase split, batch counts). */
  detail: Record<string, number>;
}

function result(path: string, unit: 'events' | 'rows', count: number, ms: number, detail: Record<string, number> = {}): CeilingResult {
  return { path, unit, count, ms, perSec: count / (ms / 1000), detail };
}

/**
 * Polls a group's lag on ONE admin connection, opened before the timed run: polling through
 * `BatchConsumer.lag()` connects a new admin client per poll, which costs the process CPU and
 * delays the moment lag 0 is seen (bench/spine/consumer-overhead.ts measured ~15 % of the Kafka +
 * decode figure between the last message decoded and lag 0 seen that way).
 */
export class LagWatch {
  private constructor(
    private readonly admin: Admin,
    private readonly groupId: string,
    private readonly topics: readonly string[],
  ) {}

  static async open(kafka: KafkaConnection, groupId: string, topics: readonly string[]): Promise<LagWatch> {
    const admin = createKafka(kafka).admin();
    await admin.connect();
    return new LagWatch(admin, groupId, topics);
  }

  /** Resolves with performance.now() when the group's committed offsets reached every partition's end. */
  untilZero(timeoutMs = 60_000, pollMs = 5): Promise<number> {
    return untilLagZero(() => groupLag(this.admin, this.groupId, this.topics), timeoutMs, pollMs);
  }

  close(): Promise<void> {
    return this.admin.disconnect();
  }
}

/** Polls the group's lag until 0; resolves with performance.now() at that moment. */
export async function untilLagZero(lag: () => Promise<number>, timeoutMs = 60_000, pollMs = 20): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if ((await lag()) === 0) return performance.now();
    if (performance.now() > deadline) throw new Error(`lag not 0 after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * Kafka + decode: drains `topic` (n events) in its own group with the worker's consumer options,
 * decoding every message as the worker does. Timed from the first chunk to the group's lag 0 (as
 * end to end). With `record`, the chunks are also kept as delivered (their buffers then stay alive,
 * which costs the collector: run the timed drain without it and record in another group).
 */
export async function ceilingKafka(
  kafka: KafkaConnection,
  topic: string,
  groupId: string,
  n: number,
  maxBatchMessages: number,
  /** Names the topic in the row, e.g. `by item`. */
  label = 'by item',
  record = true,
): Promise<{ result: CeilingResult; batches: RecordedBatch[] }> {
  const batches: RecordedBatch[] = [];
  const consumer = new BatchConsumer({ kafka, groupId, topics: [topic], fromBeginning: true, maxBatchMessages });
  const watch = await LagWatch.open(kafka, groupId, [topic]);
  let seen = 0;
  let chunks = 0;
  let first = Number.NaN;
  let done: () => void = () => undefined;
  const all = new Promise<void>((r) => (done = r));
  await consumer.start((b) => {
    if (Number.isNaN(first)) first = performance.now();
    const nowMs = Date.now();
    for (const m of b.messages) {
      if (m.value === null) throw new Error('bench topic holds a tombstone');
      decodeLabelled(m.value, nowMs);
    }
    if (record) batches.push({ partition: b.partition, offsets: b.messages.map((m) => m.offset), values: b.messages.map((m) => m.value ?? Buffer.alloc(0)) });
    chunks++;
    seen += b.messages.length;
    if (seen >= n) done();
    return Promise.resolve();
  });
  try {
    await all;
    const end = await watch.untilZero();
    return { result: result(`kafka + decode (${label})`, 'events', seen, end - first, { batches: chunks, concurrency: consumer.concurrency }), batches };
  } finally {
    await consumer.stop();
    await watch.close();
  }
}

/** A recorded chunk decoded once (outside every timed region). */
export interface DecodedBatch {
  partition: number;
  items: BatchItem[];
  lastOffset: number;
}

export function decodeBatches(batches: readonly RecordedBatch[]): DecodedBatch[] {
  const nowMs = Date.now();
  return batches.map((b) => ({
    partition: b.partition,
    items: b.values.map((v, i) => ({ offset: b.offsets[i] ?? -1, event: decodeLabelled(v, nowMs) })),
    lastOffset: b.offsets[b.offsets.length - 1] ?? -1,
  }));
}

/**
 * Replays chunks as the BatchConsumer hands them to the worker: each partition's chunks in order, one
 * at a time; up to `concurrency` partitions at once. Returns the wall time, first chunk to last.
 */
export async function replayPartitions(batches: readonly DecodedBatch[], concurrency: number, fn: (b: DecodedBatch) => Promise<void>): Promise<number> {
  const byPartition = new Map<number, DecodedBatch[]>();
  for (const b of batches) {
    const list = byPartition.get(b.partition);
    if (list === undefined) byPartition.set(b.partition, [b]);
    else list.push(b);
  }
  const queue = [...byPartition.values()];
  const t0 = performance.now();
  const runner = async (): Promise<void> => {
    for (let chain = queue.shift(); chain !== undefined; chain = queue.shift()) {
      for (const b of chain) await fn(b);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, queue.length)) }, runner));
  return performance.now() - t0;
}

/** What an adapter looks like to the store and the sink: the sizes and call shape, not the computation. */
export interface AdapterShape {
  name: string;
  side: Side;
  stateSize: number;
  viewSize: number;
  hasBaseline: boolean;
  release: string;
  /** Whether it offers predictThenAdaptSequence (one call per chunk instead of one per wave). */
  sequence: boolean;
}

export function shapeOf(a: Adapter): AdapterShape {
  return { name: a.name, side: a.side, stateSize: a.stateSize, viewSize: a.viewSize, hasBaseline: a.hasBaseline, release: a.release, sequence: a.predictThenAdaptSequence !== undefined };
}

/** An adapter of `shape` that computes nothing: zero initial states, every score 0.5, states unchanged. */
export function idleAdapter(shape: AdapterShape): Adapter {
  const scores = (b: AdapterBatch): Float32Array => {
    b.baseline?.fill(0.5);
    return new Float32Array(b.events.length).fill(0.5);
  };
  return {
    name: shape.name,
    side: shape.side,
    stateSize: shape.stateSize,
    viewSize: shape.viewSize,
    hasBaseline: shape.hasBaseline,
    release: shape.release,
    initialState: () => new Float32Array(shape.stateSize),
    predict: scores,
    predictThenAdapt: scores,
    ...(shape.sequence ? { predictThenAdaptSequence: scores } : {}),
  };
}

/** A store that keeps nothing (every read misses, every write is accepted): the cache tier over it is the worker minus Redis. */
export class NullStore implements EntityStore {
  getMany(_scope: StateScope, ids: readonly string[]): Promise<(EntityState | undefined)[]> {
    return Promise.resolve(ids.map(() => undefined));
  }

  putMany(_scope: StateScope, entries: readonly unknown[]): Promise<{ written: number; skipped: number }> {
    return Promise.resolve({ written: entries.length, skipped: 0 });
  }

  putManyScoped(writes: readonly ScopedWrite[]): Promise<{ written: number; skipped: number }[]> {
    return Promise.resolve(writes.map((w) => ({ written: w.entries.length, skipped: 0 })));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const noopSink: PredictionSink = { write: () => Promise.resolve(), flush: () => Promise.resolve(), close: () => Promise.resolve() };

/** The BatchProcessor as the worker builds it (no cross-side partner: the bench's workers run without one). */
function workerProcessor(adapter: Adapter, store: EntityStore, sink: PredictionSink): BatchProcessor {
  const scope: StateScope = { namespace: 'bench', side: adapter.side, adapter: adapter.name };
  return new BatchProcessor({ adapter, store, sink, scope });
}

/** Replays the chunks through `processor` as the worker's handler does (prepare, then persist with the partition's progress). */
function replayThrough(processor: BatchProcessor, batches: readonly DecodedBatch[], topic: string, concurrency: number): Promise<number> {
  return replayPartitions(batches, concurrency, async (b) => {
    const prepared = await processor.prepare(b.items, undefined, { partition: b.partition, topic });
    await processor.persist(prepared, { topic, partition: b.partition, offset: b.lastOffset });
  });
}

function countEvents(batches: readonly DecodedBatch[]): number {
  return batches.reduce((n, b) => n + b.items.length, 0);
}

/** Redis: the worker's store path (cache tier over RedisEntityStore), the adapter computing nothing. */
export async function ceilingRedis(services: Services, res: BenchResources, shape: AdapterShape, batches: readonly DecodedBatch[], topic: string, concurrency: number): Promise<CeilingResult> {
  const redis = new RedisEntityStore({ redis: { url: services.redisUrl }, keyPrefix: res.redisPrefix(`ceiling-redis-${shape.name}`) });
  const store = new CachedEntityStore(redis);
  try {
    const ms = await replayThrough(workerProcessor(idleAdapter(shape), store, noopSink), batches, topic, concurrency);
    const cache = store.stats();
    return result(`redis (${shape.name} states, ${shape.stateSize} floats)`, 'events', countEvents(batches), ms, { cacheHits: cache.hits, cacheMisses: cache.misses });
  } finally {
    await store.close();
  }
}

/** Sink: the worker's rows into a real ClickHouseSink (group commit across the concurrent partitions). */
export async function ceilingSink(
  services: Services,
  res: BenchResources,
  shape: AdapterShape,
  batches: readonly DecodedBatch[],
  topic: string,
  concurrency: number,
  log: Logger,
): Promise<CeilingResult> {
  const sink = new ClickHouseSink({
    url: services.clickhouseUrl,
    table: res.table('ceiling_sink'),
    spoolDir: res.dir(join(tmpdir(), `thaw-bench-spine-${res.id}-ceiling-sink`)),
    logger: log,
  });
  try {
    await sink.ensureSchema();
    const ms = await replayThrough(workerProcessor(idleAdapter(shape), new CachedEntityStore(new NullStore()), sink), batches, topic, concurrency);
    return result('sink (clickhouse)', 'rows', countEvents(batches), ms, { inserts: sink.groupCommits });
  } finally {
    await sink.close();
  }
}

/**
 * Adapt alone: the worker's processor with the real adapter on the whole recorded stream (states in
 * the cache tier over a store that keeps nothing, rows dropped). The first `warmup` chunks run once
 * before, untimed, on their own store (JIT, TensorFlow.js kernels).
 */
export async function ceilingAdapt(adapter: Adapter, batches: readonly DecodedBatch[], topic: string, concurrency: number, warmup = 2): Promise<CeilingResult> {
  const warm = workerProcessor(adapter, new CachedEntityStore(new NullStore()), noopSink);
  for (const b of batches.slice(0, warmup)) await warm.process(b.items, { partition: b.partition, topic });
  const ms = await replayThrough(workerProcessor(adapter, new CachedEntityStore(new NullStore()), noopSink), batches, topic, concurrency);
  return result(`adapt alone (${adapter.name})`, 'events', countEvents(batches), ms);
}
