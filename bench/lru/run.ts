/**
 * `npm run bench -- --only lru`: an LRU written as a Map re-inserted on every hit (the worker's cache
 * tier, model-store/cached-store.ts, before it moved to lru-cache; the online learners' replica
 * tables still are) against lru-cache, the well-kept library, on the worker cache's access pattern: Zipf-skewed entity ids, a read of a
 * batch of keys then a write of the same keys, capacity below the id space.
 * Prints operations per second (median of interleaved rounds) and the ratio.
 */
import { LRUCache } from 'lru-cache';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    ids: { type: 'string', default: '1000000' },
    capacity: { type: 'string', default: '100000' },
    ops: { type: 'string', default: '300000' },
    rounds: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const IDS = Number(values.ids);
const CAPACITY = Number(values.capacity);
const OPS = Number(values.ops);
const ROUNDS = Number(values.rounds);

/** Zipf(1.1)-skewed ids by inverse transform over a precomputed CDF, seeded. */
function zipfKeys(n: number, ids: number, seed: number): string[] {
  const cdf = new Float64Array(ids);
  let sum = 0;
  for (let i = 0; i < ids; i++) cdf[i] = sum += 1 / Math.pow(i + 1, 1.1);
  let s = seed >>> 0;
  const keys: string[] = new Array<string>(n);
  for (let k = 0; k < n; k++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = (s / 2 ** 32) * sum;
    let lo = 0;
    let hi = ids - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] ?? 0) < u) lo = mid + 1;
      else hi = mid;
    }
    keys[k] = `live|item|fm-adagrad|${lo}`;
  }
  return keys;
}

interface Lru {
  get(k: string): object | undefined;
  set(k: string, v: object): void;
}

/** Thaw's pattern: Map order is recency; a hit deletes and re-inserts; over capacity the first key goes. */
function mapLru(capacity: number): Lru {
  const m = new Map<string, object>();
  return {
    get(k) {
      const v = m.get(k);
      if (v !== undefined) {
        m.delete(k);
        m.set(k, v);
      }
      return v;
    },
    set(k, v) {
      m.delete(k);
      m.set(k, v);
      if (m.size > capacity) {
        const first = m.keys().next();
        if (first.done !== true) m.delete(first.value);
      }
    },
  };
}

function libLru(capacity: number): Lru {
  const c = new LRUCache<string, object>({ max: capacity });
  return { get: (k) => c.get(k), set: (k, v) => void c.set(k, v) };
}

const BATCH = 256;
function run(lru: Lru, keys: readonly string[]): number {
  const t0 = process.hrtime.bigint();
  const value = { v: 1 };
  for (let i = 0; i < keys.length; i += BATCH) {
    const end = Math.min(keys.length, i + BATCH);
    for (let j = i; j < end; j++) lru.get(keys[j] ?? '');
    for (let j = i; j < end; j++) lru.set(keys[j] ?? '', value);
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return (2 * keys.length) / s;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? Number.NaN;
const keys = zipfKeys(OPS, IDS, 7);
const results = { map: [] as number[], lruCache: [] as number[] };
for (let r = 0; r < ROUNDS; r++) {
  const first = r % 2 === 0;
  const a = first ? run(mapLru(CAPACITY), keys) : run(libLru(CAPACITY), keys);
  const b = first ? run(libLru(CAPACITY), keys) : run(mapLru(CAPACITY), keys);
  results.map.push(first ? a : b);
  results.lruCache.push(first ? b : a);
}
const out = { ids: IDS, capacity: CAPACITY, ops: 2 * OPS, rounds: ROUNDS, mapOpsPerSec: Math.round(median(results.map)), lruCacheOpsPerSec: Math.round(median(results.lruCache)) };
if (values.json) console.log(JSON.stringify(out));
else {
  console.log(
    `LRU: ${out.ops.toLocaleString('en-US')} get+set operations, Zipf(1.1) over ${IDS.toLocaleString('en-US')} ids, capacity ${CAPACITY.toLocaleString('en-US')}, median of ${ROUNDS} interleaved rounds`,
  );
  console.log(`| LRU | ops/s |\n|---|--:|\n| Map re-insert (Thaw's) | ${out.mapOpsPerSec.toLocaleString('en-US')} |\n| lru-cache ${'11'} | ${out.lruCacheOpsPerSec.toLocaleString('en-US')} |`);
  console.log(`Map / lru-cache: ${(out.mapOpsPerSec / out.lruCacheOpsPerSec).toFixed(2)}`);
}
