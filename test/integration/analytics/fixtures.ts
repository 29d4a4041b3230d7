/** Synthetic prediction rows with known metrics, and reference metrics computed in TypeScript. */
import { bucketOf, type CurveBucket, type CurveRow, type PredictionRow } from '../../../analytics/types.js';
import type { Side } from '../../../schemas/types.js';

/** Deterministic PRNG (mulberry32) so failures reproduce. */
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

/**
 * `count` rows over two adapters and both sides; scores rise with the prior count for adapter
 * 'fm' (a warm-up curve) and are noise-level for 'none'. Scores are Float32 values, as stored.
 */
export function syntheticRows(count: number, namespace: string, seed = 1): PredictionRow[] {
  const r = rng(seed);
  const rows: PredictionRow[] = [];
  const t0 = Date.UTC(2026, 0, 1);
  for (let i = 0; i < count; i++) {
    const adapter = i % 2 === 0 ? 'fm' : 'none';
    const side: Side = i % 4 < 2 ? 'user' : 'item';
    const priorCount = Math.floor(r() ** 2 * 80);
    const label: 0 | 1 = r() < 0.3 ? 1 : 0;
    const signal = adapter === 'fm' ? Math.min(2, 0.2 + priorCount / 20) : 0.1;
    const z = (label === 1 ? signal : 0) + (r() + r() + r() - 1.5) * 1.5 - 0.8;
    rows.push({
      eventId: `ev-${i}`,
      eventTimeMs: t0 + i * 60_000, // 20k rows span about two weeks
      side,
      entityId: `${side}-${i % 97}`,
      priorCount,
      score: Math.fround(1 / (1 + Math.exp(-z))),
      label,
      adapter,
      release: 'r1',
      namespace,
    });
  }
  return rows;
}

/** Mann–Whitney AUC (ties count 1/2), by sorting; NaN with one class. */
export function mannWhitneyAuc(scores: number[], labels: number[]): number {
  const idx = scores.map((_, i) => i).sort((a, b) => (scores[a] ?? 0) - (scores[b] ?? 0));
  let pos = 0;
  let neg = 0;
  let rankSumPos = 0;
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j < idx.length && scores[idx[j] ?? 0] === scores[idx[i] ?? 0]) j++;
    const avgRank = (i + 1 + j) / 2; // ranks i+1..j share their average
    for (let k = i; k < j; k++) {
      if (labels[idx[k] ?? 0] === 1) {
        pos++;
        rankSumPos += avgRank;
      } else neg++;
    }
    i = j;
  }
  if (pos === 0 || neg === 0) return NaN;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Curve rows computed in TypeScript, keyed `${adapter}|${side}|${bucket}`. */
export function referenceCurves(rows: readonly PredictionRow[]): Map<string, Pick<CurveRow, 'n' | 'ctr' | 'auc' | 'logLoss'>> {
  const groups = new Map<string, { scores: number[]; labels: number[] }>();
  for (const r of rows) {
    const key = `${r.adapter}|${r.side}|${bucketOf(r.priorCount)}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { scores: [], labels: [] }));
    g.scores.push(r.score);
    g.labels.push(r.label);
  }
  const out = new Map<string, Pick<CurveRow, 'n' | 'ctr' | 'auc' | 'logLoss'>>();
  for (const [key, g] of groups) {
    let ll = 0;
    g.scores.forEach((s, i) => {
      const p = Math.min(Math.max(s, 1e-7), 1 - 1e-7);
      ll -= g.labels[i] === 1 ? Math.log(p) : Math.log(1 - p);
    });
    const n = g.scores.length;
    out.set(key, { n, ctr: g.labels.reduce((a, b) => a + b, 0) / n, auc: mannWhitneyAuc(g.scores, g.labels), logLoss: ll / n });
  }
  return out;
}

export const curveKey = (r: { adapter: string; side: Side; bucket: CurveBucket }): string => `${r.adapter}|${r.side}|${r.bucket}`;
