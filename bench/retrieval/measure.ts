/**
 * The measurements of `npm run bench -- --only retrieval` (bench/retrieval/run.ts): each function
 * runs one phase on an index and returns its figures; none asserts.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { topK } from '../../retrieval/exact-search.js';
import { AnnIndex } from '../../retrieval/index/ann-index.js';
import { dot4, GrowingSegment } from '../../retrieval/index/growing.js';
import { BackgroundSealer } from '../../retrieval/index/sealer.js';
import { quantile } from '../stats.js';
import type { ClusteredVectors } from './vectors.js';

/** Latency percentiles in microseconds. */
export interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
}

export function percentilesUs(ms: readonly number[]): Percentiles {
  return { p50: quantile(ms, 0.5) * 1000, p99: quantile(ms, 0.99) * 1000, p999: quantile(ms, 0.999) * 1000 };
}

function progress(phase: string, fields: Record<string, unknown>): void {
  process.stderr.write(JSON.stringify({ bench: 'retrieval', phase, ...fields }) + '\n');
}

/** Builds the graph from `items` (row-major) by direct inserts; returns items/s. */
export function build(index: AnnIndex, items: Float32Array, dim: number): { seconds: number; perSecond: number } {
  const n = items.length / dim;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    index.upsertSealed(`i${i}`, items.subarray(i * dim, (i + 1) * dim));
    if ((i + 1) % 50_000 === 0) {
      const s = (performance.now() - t0) / 1000;
      progress('build', { items: i + 1, of: n, perSecond: Math.round((i + 1) / s), seconds: Math.round(s) });
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, perSecond: n / seconds };
}

/** Exact top-k ids (as item numbers) of each query over `items`, and the time of each scan. */
export function exactTruth(items: Float32Array, dim: number, queries: Float32Array, k: number): { truth: Int32Array[]; ms: number[] } {
  const n = items.length / dim;
  const scores = new Float32Array(n);
  const truth: Int32Array[] = [];
  const ms: number[] = [];
  const nq = queries.length / dim;
  for (let q = 0; q < nq; q++) {
    const query = queries.subarray(q * dim, (q + 1) * dim);
    const t0 = performance.now();
    for (let r = 0; r < n; r++) scores[r] = dot4(items, r, query, dim);
    truth.push(topK(scores, k));
    ms.push(performance.now() - t0);
  }
  return { truth, ms };
}

/** Search latency over `latencyQueries` and recall@k over `recallQueries` against `truth`, at `ef`. */
export function searchAt(
  index: AnnIndex,
  dim: number,
  k: number,
  ef: number,
  latencyQueries: Float32Array,
  recallQueries: Float32Array,
  truth: readonly Int32Array[],
): { latency: Percentiles; recall: number } {
  const nl = latencyQueries.length / dim;
  for (let q = 0; q < Math.min(50, nl); q++) index.search(latencyQueries.subarray(q * dim, (q + 1) * dim), k, ef); // warm-up
  const ms: number[] = [];
  for (let q = 0; q < nl; q++) {
    const query = latencyQueries.subarray(q * dim, (q + 1) * dim);
    const t0 = performance.now();
    index.search(query, k, ef);
    ms.push(performance.now() - t0);
  }
  let hit = 0;
  let total = 0;
  for (let q = 0; q < truth.length; q++) {
    const found = new Set(index.search(recallQueries.subarray(q * dim, (q + 1) * dim), k, ef).ids);
    for (const item of truth[q] ?? []) {
      total++;
      if (found.has(`i${item}`)) hit++;
    }
  }
  return { latency: percentilesUs(ms), recall: total === 0 ? Number.NaN : hit / total };
}

/** Exact scan + top-k of a growing segment of `size` items, row-major (the segment's own code). */
export function growingScan(gen: ClusteredVectors, dim: number, size: number, k: number, queries: Float32Array): Percentiles {
  const seg = new GrowingSegment(dim, size);
  const rows = gen.next(size);
  for (let i = 0; i < size; i++) seg.put(i, rows.subarray(i * dim, (i + 1) * dim));
  const scratch = new Float32Array(size);
  const ms: number[] = [];
  const nq = queries.length / dim;
  for (let q = 0; q < nq; q++) {
    const query = queries.subarray(q * dim, (q + 1) * dim);
    const t0 = performance.now();
    topK(seg.scoreAll(query, scratch), k);
    if (q >= 20) ms.push(performance.now() - t0);
  }
  return percentilesUs(ms);
}

/** The same scan over a dim-major copy (one column per dimension), for the layout choice. */
export function dimMajorScan(gen: ClusteredVectors, dim: number, size: number, k: number, queries: Float32Array): Percentiles {
  const rows = gen.next(size);
  const cols = new Float32Array(size * dim);
  for (let i = 0; i < size; i++) for (let j = 0; j < dim; j++) cols[j * size + i] = rows[i * dim + j] ?? 0;
  const scores = new Float32Array(size);
  const ms: number[] = [];
  const nq = queries.length / dim;
  for (let q = 0; q < nq; q++) {
    const query = queries.subarray(q * dim, (q + 1) * dim);
    const t0 = performance.now();
    scores.fill(0);
    for (let j = 0; j < dim; j++) {
      const qj = query[j] ?? 0;
      const base = j * size;
      for (let i = 0; i < size; i++) scores[i] = (scores[i] ?? 0) + (cols[base + i] ?? 0) * qj;
    }
    topK(scores, k);
    if (q >= 20) ms.push(performance.now() - t0);
  }
  return percentilesUs(ms);
}

export interface ServingWhileInserting {
  /** Inserts asked for per second (0: batches of 100 every loop turn, as fast as the loop allows). */
  targetPerSecond: number;
  insertsPerSecond: number;
  inserted: number;
  /** Searches asked for per second (open loop: each has a due time). */
  searchesPerSecondAsked: number;
  seconds: number;
  searches: number;
  /** A search's own time. */
  search: Percentiles;
  /** From a search's due time to its answer: includes the wait behind a sealing chunk, inserts or earlier searches. */
  searchWithWait: Percentiles;
  /** Event-loop delay while it ran (µs). */
  loopDelay: Percentiles;
  sealedPerSecond: number;
  growingAtEnd: number;
  growingMax: number;
}

/**
 * For `seconds`: searches due at `searchRate` per second (open loop: a search's latency counts from
 * its due time) while new items arrive at `targetPerSecond` (due times checked every event-loop
 * turn; 0 = 100 per turn, as fast as the loop allows) into the growing segment, and the background
 * sealer seals them into the graph between turns.
 */
export async function servingWhileInserting(
  index: AnnIndex,
  gen: ClusteredVectors,
  dim: number,
  k: number,
  ef: number,
  targetPerSecond: number,
  searchRate: number,
  seconds: number,
  queries: Float32Array,
  prefix: string,
): Promise<ServingWhileInserting> {
  const sealer = new BackgroundSealer(index);
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const pool = gen.next(Math.max(1000, Math.ceil((targetPerSecond || 50_000) * seconds * 1.1)));
  const poolSize = pool.length / dim;
  const nq = queries.length / dim;
  const own: number[] = [];
  const withWait: number[] = [];
  let inserted = 0;
  let growingMax = 0;
  sealer.start();
  delay.enable();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const interval = 1000 / searchRate;
  await new Promise<void>((resolve) => {
    let q = 0;
    let due = t0;
    const turn = (): void => {
      const now = performance.now();
      if (now >= end) return resolve();
      const want = targetPerSecond > 0 ? Math.floor(((now - t0) / 1000) * targetPerSecond) : inserted + 100;
      while (inserted < want) {
        const i = inserted % poolSize;
        index.upsert(`${prefix}${inserted}`, pool.subarray(i * dim, (i + 1) * dim));
        inserted++;
      }
      growingMax = Math.max(growingMax, index.growingCount);
      // One search per turn at most, so inserts and sealing chunks keep their turns when searches fall behind.
      if (due <= performance.now()) {
        const query = queries.subarray((q % nq) * dim, ((q % nq) + 1) * dim);
        q++;
        const s0 = performance.now();
        index.search(query, k, ef);
        const s1 = performance.now();
        own.push(s1 - s0);
        withWait.push(s1 - due);
        due += interval;
      }
      setImmediate(turn);
    };
    setImmediate(turn);
  });
  const elapsed = (performance.now() - t0) / 1000;
  delay.disable();
  sealer.stop();
  const st = sealer.stats();
  const nsToUs = (x: number): number => x / 1e3;
  return {
    targetPerSecond,
    insertsPerSecond: inserted / elapsed,
    inserted,
    searchesPerSecondAsked: searchRate,
    seconds: elapsed,
    searches: own.length,
    search: percentilesUs(own),
    searchWithWait: percentilesUs(withWait),
    loopDelay: { p50: nsToUs(delay.percentile(50)), p99: nsToUs(delay.percentile(99)), p999: nsToUs(delay.percentile(99.9)) },
    sealedPerSecond: st.sealed / elapsed,
    growingAtEnd: index.growingCount,
    growingMax,
  };
}

/** Seals `count` fresh items into the graph with nothing else running: items/s. */
export function sealThroughput(index: AnnIndex, gen: ClusteredVectors, dim: number, count: number, prefix: string): number {
  index.sealAll();
  const rows = gen.next(count);
  for (let i = 0; i < count; i++) index.upsert(`${prefix}${i}`, rows.subarray(i * dim, (i + 1) * dim));
  const t0 = performance.now();
  index.sealAll();
  return count / ((performance.now() - t0) / 1000);
}
