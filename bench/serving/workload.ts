/**
 * The serving bench's workload, shared by the bench (which writes the states) and the load
 * generator child (which builds the request bodies from the same seed):
 *
 * - `users` users `u<n>` and `items` items `i<n>` have fm-adagrad states in Redis; a request's user
 *   is Zipf-skewed over the users, its `candidates` candidates Zipf-skewed over the items, so a few
 *   hot entities appear in most requests (the in-process cache's hits) and a long tail does not;
 * - a share `unseen` of the user and candidate ids were never written (`n<random>`): cold states;
 * - the bench's writer keeps re-writing states of entities drawn the same way while it runs (the
 *   workers' updates): "fresh" entities whose cached view goes stale and is read again.
 */
import { randomBytes } from 'node:crypto';

export interface Workload {
  users: number;
  items: number;
  candidates: number;
  /** Share of user and candidate ids never written (0..1). */
  unseen: number;
  /** Zipf exponent of the user and candidate draws. */
  zipf: number;
  seed: number;
}

/** A small seeded generator (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Draws ranks 0..n-1 with P(r) ∝ 1 / (r + 1)^s (inverse CDF over a precomputed table). */
export function zipfSampler(n: number, s: number, rand: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let r = 0; r < n; r++) {
    sum += 1 / Math.pow(r + 1, s);
    cdf[r] = sum;
  }
  return () => {
    const x = rand() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] ?? 0) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** `count` distinct request bodies of the workload (JSON, UTF-8). */
export function requestBodies(w: Workload, count: number): Buffer[] {
  const rand = rng(w.seed);
  const user = zipfSampler(w.users, w.zipf, rand);
  const item = zipfSampler(w.items, w.zipf, rand);
  const unseenId = (): string => `n${randomBytes(6).toString('hex')}`;
  const out: Buffer[] = [];
  for (let r = 0; r < count; r++) {
    const candidates = [];
    for (let c = 0; c < w.candidates; c++) {
      const id = rand() < w.unseen ? unseenId() : `i${item()}`;
      candidates.push({ id, features: { cat: [`c${Math.floor(rand() * 50)}`] } });
    }
    const userId = rand() < w.unseen ? unseenId() : `u${user()}`;
    out.push(Buffer.from(JSON.stringify({ requestId: `r${r}`, user: { id: userId, features: { age: [`a${Math.floor(rand() * 6)}`], geo: [`g${Math.floor(rand() * 40)}`] } }, candidates })));
  }
  return out;
}
