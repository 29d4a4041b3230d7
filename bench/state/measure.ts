/**
 * Bytes per entity state in Redis, measured two ways on the real server:
 * - `MEMORY USAGE key SAMPLES 0` on a sample of the keys written: key + value + its main-dict
 *   entry, as Redis accounts them (allocator size classes included); not the entry in the expires
 *   dict nor the dict's bucket arrays.
 * - the `used_memory` delta of INFO memory across writing all N entities, divided by N: every
 *   byte the writes cost, the expires dict and bucket arrays included. It also counts whatever
 *   other clients of a shared server did meanwhile, so read it next to the first figure.
 * With the cap on (`maxEntities`), the last-seen index adds a sorted-set entry per entity, measured
 * by `MEMORY USAGE` of the index (SAMPLES 0 = every element) and by the INFO delta.
 */
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { RedisEntityStore } from '../../model-store/redis-store.js';
import { originOf } from '../../model-store/origin.js';
import { encodeState } from '../../model-store/state-codec.js';
import type { EntityState, StateScope } from '../../model-store/types.js';

export interface MeasureOptions {
  redis: Redis;
  /** Key prefix of this measurement (deleted afterwards by the caller). */
  prefix: string;
  scope: StateScope;
  /** Floats per state. */
  floats: number;
  /** Recent views per state (consumers/cross-side.ts) and floats per view; none when absent. */
  recent?: { views: number; viewFloats: number };
  /** Entities written. */
  entities: number;
  /** Entities per putMany. */
  batch: number;
  /** Keys sampled with MEMORY USAGE. */
  sample: number;
  ttlSeconds: number;
  /** 0 = no cap (no index). */
  maxEntities: number;
}

export interface Measurement {
  /** Bytes of the encoded value (model-store/state-codec.ts: header, 4 per float, the recent views). */
  payloadBytes: number;
  /** Mean MEMORY USAGE of the sampled state keys, bytes. */
  memoryUsagePerKey: number;
  /** MEMORY USAGE of the last-seen index / entities in it, bytes (0 without a cap). */
  indexBytesPerEntity: number;
  /** INFO used_memory delta / entities written, bytes (states, plus the index when capped). */
  infoDeltaPerEntity: number;
  /** Entities alive after the writes (the index's ZCARD with a cap, else all written). */
  entitiesKept: number;
  /** putMany throughput of the run, entities/s (a side figure; the run is short). */
  writesPerSec: number;
  /** Length of one state key, bytes (prefixes and ids make up part of the cost). */
  keyBytes: number;
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  const m = /^used_memory:(\d+)/m.exec(info);
  if (m === null) throw new Error('INFO memory has no used_memory');
  return Number(m[1]);
}

async function memoryUsage(redis: Redis, keys: readonly string[]): Promise<number[]> {
  const results = await redis.pipeline(keys.map((k) => ['memory', 'usage', k, 'samples', '0'])).exec();
  return (results ?? []).map(([err, v]) => {
    if (err !== null) throw err;
    return Number(v);
  });
}

/** Deterministic, non-trivial parameters (compression-free either way: Redis stores bytes as they are). */
function stateOf(i: number, floats: number, recent?: { views: number; viewFloats: number }): EntityState {
  const params = new Float32Array(floats);
  for (let j = 0; j < floats; j++) params[j] = Math.sin(i * 31 + j) * 0.1;
  const lastEventMs = 1_700_000_000_000 + i * 1000;
  // A worker's state records the partition it came from (format 2), as `thaw run` writes it.
  const state: EntityState = { count: 1 + (i % 50), lastOffset: i, lastEventMs, params, origin: originOf('thaw.labelled.by-item', i % 8) };
  if (recent !== undefined && recent.views > 0) {
    const entries = Array.from({ length: recent.views }, (_, v) => ({
      key: (i * 7919 + v) >>> 0,
      eventMs: lastEventMs - (recent.views - 1 - v) * 100,
      before: params.slice(0, recent.viewFloats),
    }));
    state.recent = { baseMs: lastEventMs - recent.views * 100, entries };
  }
  return state;
}

export async function measureStateBytes(o: MeasureOptions): Promise<Measurement> {
  const store = new RedisEntityStore({ redis: o.redis, keyPrefix: o.prefix, ttlSeconds: o.ttlSeconds, maxEntities: o.maxEntities });
  const ids = Array.from({ length: o.entities }, (_, i) => `${o.scope.side}-${i}`);
  // Warm the script cache and the client outside the measured window.
  await store.putMany(o.scope, [{ entityId: 'warm-up', state: stateOf(0, o.floats, o.recent) }]);
  const before = await usedMemory(o.redis);
  const t0 = performance.now();
  for (let from = 0; from < ids.length; from += o.batch) {
    const entries = ids.slice(from, from + o.batch).map((entityId, j) => ({ entityId, state: stateOf(from + j, o.floats, o.recent) }));
    await store.putMany(o.scope, entries);
  }
  const writeMs = performance.now() - t0;
  const after = await usedMemory(o.redis);
  const step = Math.max(1, Math.floor(ids.length / o.sample));
  const sampled = ids
    .filter((_, i) => i % step === 0)
    .slice(0, o.sample)
    .map((id) => store.keyOf(o.scope, id));
  const usages = (await memoryUsage(o.redis, sampled)).filter((u) => u > 0); // 0 = evicted by the cap
  const kept = o.maxEntities > 0 ? await store.trackedEntities(o.scope) : ids.length + 1;
  let indexBytes = 0;
  if (o.maxEntities > 0) [indexBytes] = (await memoryUsage(o.redis, [store.seenIndexKeyOf(o.scope)])) as [number];
  return {
    payloadBytes: encodeState(stateOf(0, o.floats, o.recent)).length,
    memoryUsagePerKey: usages.reduce((a, b) => a + b, 0) / Math.max(1, usages.length),
    indexBytesPerEntity: kept > 0 ? indexBytes / kept : 0,
    infoDeltaPerEntity: (after - before) / ids.length,
    entitiesKept: kept,
    writesPerSec: ids.length / (writeMs / 1000),
    keyBytes: Buffer.byteLength(store.keyOf(o.scope, ids[0] ?? '')),
  };
}

/** Deletes every key under `prefix` (SCAN + UNLINK). */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}
