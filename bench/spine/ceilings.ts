/**
 * The ceilings: each piece of the item worker alone, on the same events and micro-batches.
 *   A  Kafka client + Avro decode (BatchConsumer draining the topic, decodeLabelled, nothing else)
 *   B  Redis (RedisEntityStore getMany + putMany of each batch's distinct items)
 *   C  adapter (BatchProcessor over MemoryEntityStore and a no-op sink); the run prints the
 *      adapter alone instead (adapters.ts adaptAlone), C stays for ad-hoc use
 *   D  ClickHouse sink (ClickHouseSink.write of as many rows, in the same batch sizes)
 * A records the batches exactly as the consumer delivered them; B, C and D replay that sequence.
 * Work that is not the piece under test (decoding for B/C, building rows for D) happens outside the timed region.
 */
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Adapter } from '../../adapters/types.js';
import { ClickHouseSink } from '../../analytics/clickhouse-sink.js';
import type { PredictionRow, PredictionSink } from '../../analytics/types.js';
import { BatchProcessor, type BatchItem } from '../../consumers/processor.js';
import type { Logger } from '../../lib/log.js';
import { MemoryEntityStore } from '../../model-store/memory-store.js';
import { RedisEntityStore } from '../../model-store/redis-store.js';
import type { EntityState, StateScope } from '../../model-store/types.js';
import { BatchConsumer } from '../../streams/batch-consumer.js';
import type { KafkaConnection } from '../../streams/kafka.js';
import { decodeLabelled } from '../../streams/serde.js';
import { entityIdOf, type Side } from '../../schemas/types.js';
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

/** Polls the group's lag until 0; resolves with performance.now() at that moment. */
export async function untilLagZero(lag: () => Promise<number>, timeoutMs = 60_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if ((await lag()) === 0) return performance.now();
    if (performance.now() > deadline) throw new Error(`lag not 0 after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A: drains `topic` (n events) in its own group, decoding every message. */
export async function ceilingKafka(
  kafka: KafkaConnection,
  topic: string,
  groupId: string,
  n: number,
  maxBatchMessages: number,
  /** Names the topic in the row, e.g. `by item`. */
  label = 'by item',
): Promise<{ result: CeilingResult; batches: RecordedBatch[] }> {
  const batches: RecordedBatch[] = [];
  const consumer = new BatchConsumer({ kafka, groupId, topics: [topic], fromBeginning: true, maxBatchMessages });
  let seen = 0;
  let first = Number.NaN;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const nowMs = Date.now();
  await consumer.start(async (b) => {
    if (Number.isNaN(first)) first = performance.now();
    const offsets: number[] = new Array<number>(b.messages.length);
    const values: Buffer[] = new Array<Buffer>(b.messages.length);
    for (let i = 0; i < b.messages.length; i++) {
      const m = b.messages[i]!;
      decodeLabelled(m.value!, nowMs);
      offsets[i] = m.offset;
      values[i] = m.value!;
    }
    batches.push({ partition: b.partition, offsets, values });
    seen += b.messages.length;
    if (seen >= n) done();
    return Promise.resolve();
  });
  try {
    await all;
    const end = await untilLagZero(() => consumer.lag());
    return { result: result(`A kafka client + decode (${label})`, 'events', seen, end - first, { batches: batches.length }), batches };
  } finally {
    await consumer.stop();
  }
}

/** Distinct entity ids (of `side`) of each batch, in first-seen order (computed outside any timed region). */
export function distinctEntities(batches: readonly RecordedBatch[], side: Side = 'item'): string[][] {
  const nowMs = Date.now();
  return batches.map((b) => [...new Set(b.values.map((v) => entityIdOf(decodeLabelled(v, nowMs), side)))]);
}

/** B: the worker's two Redis round trips per batch, for the same batches. */
export async function ceilingRedis(
  services: Services,
  res: BenchResources,
  adapter: Adapter,
  batches: readonly RecordedBatch[],
  idsPerBatch: readonly string[][],
): Promise<CeilingResult> {
  const store = new RedisEntityStore({ redis: { url: services.redisUrl }, keyPrefix: res.redisPrefix(`ceiling-b-${adapter.name}`) });
  const scope: StateScope = { namespace: 'bench', side: adapter.side, adapter: adapter.name };
  let getMs = 0;
  let putMs = 0;
  let events = 0;
  try {
    for (let b = 0; b < batches.length; b++) {
      const ids = idsPerBatch[b]!;
      const t0 = performance.now();
      const loaded = await store.getMany(scope, ids);
      const t1 = performance.now();
      const entries = ids.map((entityId, i) => {
        const prev = loaded[i];
        const state: EntityState = prev ?? { count: 0, lastOffset: -1, lastEventMs: 0, params: new Float32Array(adapter.stateSize) };
        return { entityId, state: { ...state, count: state.count + 1, lastOffset: b, lastEventMs: Date.now() } };
      });
      await store.putMany(scope, entries);
      putMs += performance.now() - t1;
      getMs += t1 - t0;
      events += batches[b]!.values.length;
    }
  } finally {
    await store.close();
  }
  return result(`B redis get+put (${adapter.name} states, ${adapter.stateSize} floats)`, 'events', events, getMs + putMs, { getMs, putMs });
}

const noopSink: PredictionSink = { write: () => Promise.resolve(), flush: () => Promise.resolve(), close: () => Promise.resolve() };

/** C: BatchProcessor with the adapter, an in-memory store and a sink that does nothing. */
export async function ceilingAdapter(adapter: Adapter, batches: readonly RecordedBatch[]): Promise<CeilingResult> {
  const scope: StateScope = { namespace: 'bench', side: adapter.side, adapter: adapter.name };
  const processor = new BatchProcessor({ adapter, store: new MemoryEntityStore(), sink: noopSink, scope });
  const nowMs = Date.now();
  let ms = 0;
  let computeMs = 0;
  let events = 0;
  for (const b of batches) {
    const items: BatchItem[] = b.values.map((v, i) => ({ offset: b.offsets[i]!, event: decodeLabelled(v, nowMs) }));
    const t0 = performance.now();
    const r = await processor.process(items);
    ms += performance.now() - t0;
    computeMs += r.timings.computeMs;
    events += r.processed;
  }
  return result('C adapter (BatchProcessor, memory store)', 'events', events, ms, { predictThenAdaptAndRowsMs: computeMs });
}

/** D: ClickHouseSink writes of as many prediction rows, batch by batch. */
export async function ceilingSink(services: Services, res: BenchResources, batches: readonly RecordedBatch[], log: Logger): Promise<CeilingResult> {
  const sink = new ClickHouseSink({
    url: services.clickhouseUrl,
    table: res.table('ceiling_d'),
    spoolDir: res.dir(join(tmpdir(), `thaw-bench-spine-${res.id}-ceiling-d`)),
    logger: log,
  });
  let ms = 0;
  let rowsOut = 0;
  try {
    await sink.ensureSchema();
    let seq = 0;
    for (const b of batches) {
      const rows: PredictionRow[] = b.values.map(() => {
        seq++;
        return {
          eventId: `bench-${seq}`,
          eventTimeMs: 1_704_067_200_000 + seq,
          side: 'item',
          entityId: `i${seq % 5000}`,
          priorCount: seq % 60,
          score: (seq % 997) / 997,
          label: (seq % 5 === 0 ? 1 : 0) as 0 | 1,
          adapter: 'fm-adagrad',
          release: 'bench-fm',
          namespace: 'bench',
        };
      });
      const t0 = performance.now();
      await sink.write(rows);
      ms += performance.now() - t0;
      rowsOut += rows.length;
    }
  } finally {
    await sink.close();
  }
  return result('D clickhouse sink', 'rows', rowsOut, ms);
}
