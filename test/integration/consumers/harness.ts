/**
 * Shared pieces of the consumer integration tests: unique names, producing synthetic events,
 * reading the prediction log and Redis states back, group lag, and the reference run that every
 * fault test compares against (the BatchProcessor over the same events with a MemoryEntityStore).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createAdapter } from '../../../adapters/registry.js';
import type { PredictionRow } from '../../../analytics/types.js';
import { BatchProcessor } from '../../../consumers/processor.js';
import { MemoryEntityStore } from '../../../model-store/memory-store.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import type { EntityState, StateScope } from '../../../model-store/types.js';
import { FactorizationMachine } from '../../../models/fm.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { syntheticStream } from '../../../sources/synthetic.js';
import { groupLag, withAdmin } from '../../../streams/admin.js';
import type { KafkaConnection } from '../../../streams/kafka.js';
import { partitionOfKey, type EventProducer } from '../../../streams/producer.js';
import { encodeLabelled } from '../../../streams/serde.js';

export const KAFKA: KafkaConnection = { brokers: (process.env.THAW_KAFKA ?? '127.0.0.1:19092').split(',') };
export const REDIS_URL = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';
export const CLICKHOUSE_URL = process.env.THAW_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123';
export const DATABASE = 'thaw';

/**
 * Config of the event topics: no time retention. Synthetic events carry their 2024 event times as
 * Kafka timestamps, far past the brokers' retention (24 h here): a retention check (every 5 min)
 * that ran mid-test would delete every message of the topic (log start offset = end offset).
 */
export const KEEP_ALL_EVENTS: Readonly<Record<string, string>> = { 'retention.ms': '-1' };

/** The shared FM every test uses: untrained but seeded, so scores differ per feature. */
export const MODEL = { buckets: 16384, k: 4, seed: 7 } as const;
export function model(): FactorizationMachine {
  return FactorizationMachine.create({ ...MODEL, initStd: 0.1 });
}

/** Unique names of one test: topic, Redis key prefix, ClickHouse table, group. */
export function names(tag: string): { id: string; topic: string; dlq: string; prefix: string; table: string; group: string } {
  const id = randomUUID().replace(/-/g, '').slice(0, 12);
  return {
    id,
    topic: `thaw-test-${tag}-${id}`,
    dlq: `thaw-test-${tag}-dlq-${id}`,
    prefix: `tc${id}`,
    table: `p_${tag}_${id}`,
    group: `thaw-test-${tag}-${id}`,
  };
}

export function events(n: number, seed: number): LabelledEvent[] {
  return [...syntheticStream({ seed, events: n, users: 2000, items: 400 }).events()];
}

/** Produces events keyed by item (as the re-keying stage does), in order. */
export async function produceByItem(producer: EventProducer, topic: string, evs: readonly LabelledEvent[]): Promise<void> {
  for (let at = 0; at < evs.length; at += 2000) {
    await producer.send(
      topic,
      evs.slice(at, at + 2000).map((e) => ({ key: e.itemId, value: encodeLabelled(e), timestampMs: e.timeMs })),
    );
  }
}

/** Messages of `group` not yet committed on `topic` (sum over partitions). */
export function lagOf(group: string, topic: string, kafka: KafkaConnection = KAFKA): Promise<number> {
  return withAdmin(kafka, (admin) => groupLag(admin, group, [topic]));
}

/** Offsets committed by `group` on `topic`, summed over partitions (events it has finished). */
export function committedOf(group: string, topic: string, kafka: KafkaConnection = KAFKA): Promise<number> {
  return withAdmin(kafka, async (admin) => {
    const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
    return (committed?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
  });
}

export async function waitFor(what: string, cond: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 250): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function clickhouse(url = CLICKHOUSE_URL): ClickHouseClient {
  return createClient({ url, request_timeout: 30_000 });
}

export async function query<T>(ch: ClickHouseClient, sql: string): Promise<T[]> {
  const rs = await ch.query({ query: sql, format: 'JSONEachRow' });
  return rs.json<T>();
}

export async function dropTable(ch: ClickHouseClient, table: string): Promise<void> {
  await ch.command({ query: `DROP TABLE IF EXISTS ${DATABASE}.${table}` });
}

/**
 * Reference: the BatchProcessor over the events with an in-memory store, each Kafka partition's
 * events in stream order as their own sequence (the worker's safeguard keeps one state per
 * partition, folded in offset order). `partitions` is the topic's partition count; events are
 * keyed by item (produceByItem), so each lands where streams/producer.ts partitionOfKey says.
 */
export async function referenceRun(
  evs: readonly LabelledEvent[],
  scope: StateScope,
  partitions: number,
  opts: { safeguard?: false } = {},
): Promise<{ states: Map<string, EntityState>; rows: Map<string, PredictionRow> }> {
  const store = new MemoryEntityStore();
  const rows: PredictionRow[] = [];
  const sink = {
    write: (r: readonly PredictionRow[]): Promise<void> => {
      rows.push(...r);
      return Promise.resolve();
    },
    flush: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const proc = new BatchProcessor({ adapter: createAdapter(scope.adapter, scope.side, model()), store, sink, scope, ...opts });
  const byPartition = Array.from({ length: partitions }, (): LabelledEvent[] => []);
  for (const e of evs) byPartition[partitionOfKey(e.itemId, partitions)]?.push(e);
  for (const [partition, part] of byPartition.entries()) {
    for (let at = 0; at < part.length; at += 1000) {
      await proc.process(
        part.slice(at, at + 1000).map((event, i) => ({ offset: at + i, event })),
        { partition },
      );
    }
  }
  const ids = [...new Set(evs.map((e) => e.itemId))];
  const loaded = await store.getMany(scope, ids);
  const states = new Map<string, EntityState>();
  ids.forEach((id, i) => states.set(id, loaded[i] as EntityState));
  return { states, rows: new Map(rows.map((r) => [r.eventId, r])) };
}

/**
 * The checks every end-to-end test ends with: each event has exactly one prediction (duplicates
 * in the table, if any, carry the same score and prior count, so the dedup query is exact), scores
 * and prior counts equal the reference run's, and every Redis state equals the reference state.
 */
export async function assertMatchesReference(opts: {
  ch: ClickHouseClient;
  table: string;
  redisUrl: string;
  /** `redisUrl` is a seed node of a Redis Cluster. @default false */
  redisCluster?: boolean;
  prefix: string;
  scope: StateScope;
  events: readonly LabelledEvent[];
  reference: Awaited<ReturnType<typeof referenceRun>>;
}): Promise<void> {
  const { ch, table, scope, reference } = opts;
  // Aliases differ from column names: ClickHouse would otherwise substitute them inside max()/min().
  const rows = await query<{ event_id: string; n: string; s: number; s_spread: number; pc: string | number; pc_spread: string | number }>(
    ch,
    `SELECT event_id, count() AS n, any(score) AS s, max(score) - min(score) AS s_spread,
            any(prior_count) AS pc, max(prior_count) - min(prior_count) AS pc_spread
     FROM ${DATABASE}.${table} WHERE namespace = '${scope.namespace}' GROUP BY event_id`,
  );
  assert.equal(rows.length, opts.events.length, 'one distinct prediction per event');
  let maxDiff = 0;
  for (const r of rows) {
    const ref = reference.rows.get(r.event_id);
    assert.ok(ref !== undefined, `unexpected event ${r.event_id} in the log`);
    assert.equal(Number(r.s_spread), 0, `duplicates of ${r.event_id} disagree on the score`);
    assert.equal(Number(r.pc_spread), 0, `duplicates of ${r.event_id} disagree on the prior count`);
    assert.equal(Number(r.pc), ref.priorCount, `prior count of ${r.event_id}`);
    maxDiff = Math.max(maxDiff, Math.abs(Number(r.s) - ref.score));
  }
  assert.ok(maxDiff < 1e-6, `scores differ from the reference by up to ${maxDiff}`);

  const store = new RedisEntityStore({ redis: { url: opts.redisUrl, cluster: opts.redisCluster === true }, keyPrefix: opts.prefix });
  try {
    const ids = [...reference.states.keys()];
    const got = await store.getMany(scope, ids);
    let total = 0;
    ids.forEach((id, i) => {
      const s = got[i];
      const want = reference.states.get(id) as EntityState;
      assert.ok(s !== undefined, `state of ${id} missing in Redis`);
      assert.equal(s.count, want.count, `count of ${id}`);
      assert.equal(s.lastEventMs, want.lastEventMs, `lastEventMs of ${id}`);
      assert.equal(s.params.length, want.params.length);
      for (let j = 0; j < s.params.length; j++) {
        assert.ok(Math.abs((s.params[j] as number) - (want.params[j] as number)) <= 1e-6, `param ${j} of ${id}: ${s.params[j]} vs ${want.params[j]}`);
      }
      total += s.count;
    });
    assert.equal(total, opts.events.length, 'state counts sum to the events');
  } finally {
    await store.close();
  }
}

/** Deletes every Redis key under `prefix`. */
export async function dropKeys(redisUrl: string, prefix: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const r = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await r.connect();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}
