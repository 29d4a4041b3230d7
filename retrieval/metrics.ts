/**
 * Ranking metrics of one user's retrieved list against that user's relevant items (binary relevance).
 *
 * - recall@K = |relevant ∩ top K| / |relevant| (not divided by min(K, |relevant|)).
 * - NDCG@K = DCG@K / IDCG@K with DCG = Σ over hits at 0-based rank r < K of 1 / log2(r + 2), and IDCG the
 *   DCG of min(K, |relevant|) hits at the top.
 * Both are 0 for an empty relevant set (callers skip such users).
 */

/** Fraction of `relevant` found in the first `k` entries of `ranked`. */
export function recallAtK(ranked: ArrayLike<number>, relevant: ReadonlySet<number>, k: number): number {
  if (relevant.size === 0) return 0;
  let hits = 0;
  const n = Math.min(k, ranked.length);
  for (let r = 0; r < n; r++) if (relevant.has(ranked[r] ?? -1)) hits++;
  return hits / relevant.size;
}

/** Normalised discounted cumulative gain of the first `k` entries of `ranked`. */
export function ndcgAtK(ranked: ArrayLike<number>, relevant: ReadonlySet<number>, k: number): number {
  if (relevant.size === 0) return 0;
  let dcg = 0;
  const n = Math.min(k, ranked.length);
  for (let r = 0; r < n; r++) if (relevant.has(ranked[r] ?? -1)) dcg += 1 / Math.log2(r + 2);
  let idcg = 0;
  const ideal = Math.min(k, relevant.size);
  for (let r = 0; r < ideal; r++) idcg += 1 / Math.log2(r + 2);
  return dcg / idcg;
}
