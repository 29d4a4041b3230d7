/**
 * Per-bucket metrics of a prequential score sequence: the events are one stream in time order,
 * every method scored every event before learning it, and the bucket of an event on a side is the
 * number of interactions its user (or item) had before it, counted from the start of the stream.
 */
import { BUCKETS, bucketOf, type Bucket } from '../../analytics/types.js';
import { auc } from '../../evaluation/metrics.js';
import { meanLogLoss } from '../../evaluation/peers/select.js';
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { entityIdOf } from '../../schemas/types.js';
import { at, defined } from '../../lib/at.js';

/** The early-bucket summary: events with 1–5 prior interactions (buckets 1-2 and 3-5 pooled). */
export const EARLY = '1-5' as const;
export type BucketKey = Bucket | typeof EARLY;
export const BUCKET_KEYS: readonly BucketKey[] = [...BUCKETS, EARLY];

/** AUC and log loss of one bucket. */
export interface BucketMetrics {
  n: number;
  /** Share of positives. */
  ctr: number;
  /** Mann-Whitney AUC, ties count 1/2; NaN when the bucket has one class only. */
  auc: number;
  /** Mean predicted probability (calibration: compare with ctr). */
  meanScore: number;
  /** Mean log loss in nats, probabilities clipped to [1e-7, 1 - 1e-7]. */
  logLoss: number;
}

/** For each event, the interactions its entity on `side` had before it in `events`. */
export function priorCounts(events: readonly LabelledEvent[], side: Side): Int32Array {
  const seen = new Map<string, number>();
  const out = new Int32Array(events.length);
  events.forEach((ev, j) => {
    const id = entityIdOf(ev, side);
    const c = seen.get(id) ?? 0;
    out[j] = c;
    seen.set(id, c + 1);
  });
  return out;
}

function metricsOf(scores: number[], labels: number[]): BucketMetrics {
  const n = scores.length;
  const pos = labels.reduce((a, y) => a + y, 0);
  const sum = scores.reduce((a, p) => a + p, 0);
  return { n, ctr: n > 0 ? pos / n : NaN, meanScore: n > 0 ? sum / n : NaN, auc: auc(scores, labels), logLoss: meanLogLoss(scores, labels) };
}

/**
 * Metrics per bucket (plus the 1–5 summary) of `scores` over events `[from, scores.length)`.
 * `scores`, `labels` and `prior` are indexed by stream position. Throws on a missing (NaN) score in
 * the window: a method that skipped an event would otherwise be compared on fewer events.
 */
export function bucketMetrics(scores: ArrayLike<number>, labels: ArrayLike<number>, prior: ArrayLike<number>, from: number): Record<BucketKey, BucketMetrics> {
  const s = new Map<BucketKey, number[]>(BUCKET_KEYS.map((b) => [b, []]));
  const l = new Map<BucketKey, number[]>(BUCKET_KEYS.map((b) => [b, []]));
  for (let j = from; j < scores.length; j++) {
    const score = at(scores, j);
    if (!Number.isFinite(score)) throw new RangeError(`no score for stream position ${j}`);
    const c = at(prior, j);
    const keys: BucketKey[] = c >= 1 && c <= 5 ? [bucketOf(c), EARLY] : [bucketOf(c)];
    for (const k of keys) {
      defined(s.get(k), `scores of bucket ${k}`).push(score);
      defined(l.get(k), `labels of bucket ${k}`).push(at(labels, j));
    }
  }
  const out = {} as Record<BucketKey, BucketMetrics>;
  for (const k of BUCKET_KEYS) out[k] = metricsOf(defined(s.get(k), `scores of bucket ${k}`), defined(l.get(k), `labels of bucket ${k}`));
  return out;
}
