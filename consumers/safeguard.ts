/**
 * The safeguard: adaptation that never does much worse than no adaptation, learned from the
 * adapter's own predict-then-learn loss.
 *
 * For every event the adapter gives two scores: the adapted one (p_a, its state and the other side's
 * read) and its baseline (p_0, the same release with both entities cold: its own `none`). The
 * safeguard scores the event with a mixture of the two, per warm-up bucket (the entity's prior
 * count: 0, 1-2, 3-5, …):
 *
 *   score = π_0·p_0 + π_a·p_a,   π_e ∝ exp(−η·L_e)
 *
 * where L_e is the discounted log loss that expert e, RECALIBRATED, had on the bucket's earlier
 * events: each expert's logit goes through a per-bucket Platt scaling σ(a·z + c) learned online
 * (Adagrad on the log loss), so the two are judged by how well they rank, not by how well they are
 * calibrated (an adaptation that ranks better but is over-confident keeps its lift), while the
 * score itself mixes the raw probabilities (a calibration moving over time would reorder events
 * across time: the safeguard must not cost AUC where the adapter equals its baseline). After the
 * event is scored, each L_e takes its loss on it. With the calibrated experts this is the
 * aggregating algorithm for log loss at rate η ≤ 1: over any stretch of a bucket the mixture of
 * the calibrated experts loses at most ln 2 / η nats more than the better one, so a harmful adapter
 * is switched off within tens of a bucket's events, while a good one keeps its lift. The discount
 * (`horizon`) lets it follow an adapter that gets better or worse as the stream moves.
 * Mixing only these two (not intermediate trusts) is deliberate: a share of the baseline blended
 * into the adapted logit lowers the log loss of an over-confident adapter but mixes the baseline's
 * ranking into its own, which costs AUC (measured: about 1 point on MovieLens-100K's early users).
 *
 * State: per (adapter scope, partition), BUCKETS × 10 floats (L_0, L_a; a, c of each expert and
 * their Adagrad sums), folded over the partition's events in offset order and written atomically with the
 * entity states (consumers/processor.ts): crash and restart give the same scores as an uninterrupted run.
 */
import { BUCKETS, bucketOf, type PredictionRow } from '../analytics/types.js';
import type { EntityState } from '../model-store/types.js';
import { ConfigError } from '../lib/errors.js';

/** Floats per bucket: the two experts' discounted losses, then per expert its Platt scale and offset and their Adagrad sums. */
const PER_BUCKET = 10;
const LOSS = [0, 1] as const;
/** Offset of expert e's calibration block (a, c, Σg_a², Σg_c²). */
const CALIB = [2, 6] as const;

/** Options of the safeguard. */
export interface SafeguardOptions {
  /**
   * Events of a bucket after which an old loss weighs 1/e of a new one (the discount of L_α):
   * longer remembers more, shorter follows change faster. @default 2000
   */
  horizon?: number;
  /**
   * Head start of the adaptation, nats: before any event the baseline starts with this loss, so a
   * new worker trusts its adapter until its own events say otherwise. @default 2
   */
  priorNats?: number;
  /**
   * η of the mixture, in (0, 1]: weights ∝ exp(−η·L). 1 is the Bayes mixture; smaller needs more
   * evidence to move, so noise between two close experts does not flip the weights, while a
   * harmful adapter (worse by nats per event) is still switched off within tens of events; the
   * loss bound over the better expert is ln 2 / η nats per bucket. @default 0.25
   */
  learningRate?: number;
  /** Adagrad learning rate of each expert's per-bucket Platt scaling (the judge's calibration). @default 0.05 */
  calibrationRate?: number;
}

export const SAFEGUARD_DEFAULTS = { horizon: 2000, priorNats: 2, learningRate: 0.25, calibrationRate: 0.05 } as const;

const CLIP = 1e-7;
const logit = (p: number): number => {
  const q = Math.min(1 - CLIP, Math.max(CLIP, p));
  return Math.log(q / (1 - q));
};
const sigmoid = (z: number): number => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));
const clip = (p: number): number => Math.min(1 - CLIP, Math.max(CLIP, p));

export class Safeguard {
  /** Floats of a safeguard state. */
  readonly stateSize = BUCKETS.length * PER_BUCKET;
  private readonly discount: number;
  private readonly priorNats: number;
  private readonly rate: number;
  private readonly eta: number;

  constructor(opts: SafeguardOptions = {}) {
    const horizon = opts.horizon ?? SAFEGUARD_DEFAULTS.horizon;
    if (!Number.isFinite(horizon) || horizon < 1) throw new ConfigError('safeguard.horizon', `must be a number of events >= 1, got ${String(opts.horizon)}`);
    const prior = opts.priorNats ?? SAFEGUARD_DEFAULTS.priorNats;
    if (!Number.isFinite(prior) || prior < 0) throw new ConfigError('safeguard.priorNats', `must be a number >= 0, got ${String(opts.priorNats)}`);
    const rate = opts.calibrationRate ?? SAFEGUARD_DEFAULTS.calibrationRate;
    if (!Number.isFinite(rate) || rate < 0) throw new ConfigError('safeguard.calibrationRate', `must be a number >= 0, got ${String(opts.calibrationRate)}`);
    this.discount = Math.exp(-1 / horizon);
    this.priorNats = prior;
    this.rate = rate;
    const eta = opts.learningRate ?? SAFEGUARD_DEFAULTS.learningRate;
    if (!Number.isFinite(eta) || eta <= 0 || eta > 1) throw new ConfigError('safeguard.learningRate', `must be a number in (0, 1], got ${String(opts.learningRate)}`);
    this.eta = eta;
  }

  /** The state before any event: every bucket with the adaptation's head start and identity calibrations. */
  initialState(): Float32Array {
    const st = new Float32Array(this.stateSize);
    for (let b = 0; b < BUCKETS.length; b++) {
      st[b * PER_BUCKET + LOSS[0]] = this.priorNats;
      for (const cal of CALIB) {
        st[b * PER_BUCKET + cal] = 1;
        st[b * PER_BUCKET + cal + 2] = 1;
        st[b * PER_BUCKET + cal + 3] = 1;
      }
    }
    return st;
  }

  /**
   * The safeguarded score of one event whose entity had `priorCount` events, from the adapted score
   * and the baseline score; then folds the event into `state` (in place).
   */
  step(state: Float32Array, priorCount: number, adapted: number, baseline: number, label: number): number {
    const at = BUCKETS.indexOf(bucketOf(priorCount)) * PER_BUCKET;
    const score = this.mix(state, priorCount, adapted, baseline);
    this.judge(state, at, 0, logit(baseline), label);
    this.judge(state, at, 1, logit(adapted), label);
    return score;
  }

  /**
   * A partition's safeguard state after the first `n` rows (in offset order), each row's score mixed
   * in place (`baselines[r]`: row r's baseline score). `loaded`, the state before them (undefined: a
   * fresh one), is not modified. Count, last offset and event time are the caller's to advance.
   */
  foldRows(loaded: EntityState | undefined, rows: readonly PredictionRow[], baselines: Float32Array, n: number): EntityState {
    const st: EntityState =
      loaded === undefined
        ? { count: 0, lastOffset: -1, lastEventMs: 0, params: this.initialState() }
        : { count: loaded.count, lastOffset: loaded.lastOffset, lastEventMs: loaded.lastEventMs, params: loaded.params.slice() };
    if (st.params.length !== this.stateSize) st.params = this.initialState();
    for (let r = 0; r < n && r < rows.length; r++) {
      const row = rows[r];
      if (row !== undefined) row.score = this.step(st.params, row.priorCount, row.score, baselines[r] ?? row.score, row.label);
    }
    return st;
  }

  /**
   * The safeguarded score of an event whose entity had `priorCount` events, without folding it in
   * (`state` is not modified): what `step` returns. The scoring API (serving/) mixes with it, so a
   * served score is the worker's logged score for the same states.
   */
  mix(state: Float32Array, priorCount: number, adapted: number, baseline: number): number {
    const at = BUCKETS.indexOf(bucketOf(priorCount)) * PER_BUCKET;
    const l0 = state[at + LOSS[0]] ?? 0;
    const l1 = state[at + LOSS[1]] ?? 0;
    const w1 = 1 / (1 + Math.exp(this.eta * (l1 - l0))); // π_a = e^−ηL_a / (e^−ηL_0 + e^−ηL_a)
    return (1 - w1) * baseline + w1 * adapted;
  }

  /** Expert e's calibrated loss on the event into its discounted sum, then one Adagrad step of its calibration. */
  private judge(state: Float32Array, at: number, e: 0 | 1, z: number, label: number): void {
    const cal = at + CALIB[e];
    const a = state[cal] ?? 1;
    const c = state[cal + 1] ?? 0;
    const p = clip(sigmoid(a * z + c));
    state[at + LOSS[e]] = this.discount * (state[at + LOSS[e]] ?? 0) + (label === 1 ? -Math.log(p) : -Math.log(1 - p));
    if (this.rate === 0) return;
    const g = p - label;
    const ga = (state[cal + 2] ?? 1) + g * z * (g * z);
    const gc = (state[cal + 3] ?? 1) + g * g;
    state[cal + 2] = ga;
    state[cal + 3] = gc;
    // The scale stays positive: a calibration must not reverse an expert's ranking.
    state[cal] = Math.max(1e-3, a - (this.rate * g * z) / Math.sqrt(ga));
    state[cal + 1] = c - (this.rate * g) / Math.sqrt(gc);
  }

  /** The weight each bucket gives the adaptation now (π_a), for metrics and reports. */
  trust(state: Float32Array): Record<string, number> {
    const out: Record<string, number> = {};
    BUCKETS.forEach((bucket, b) => {
      const l0 = state[b * PER_BUCKET + LOSS[0]] ?? 0;
      const l1 = state[b * PER_BUCKET + LOSS[1]] ?? 0;
      out[bucket] = 1 / (1 + Math.exp(this.eta * (l1 - l0)));
    });
    return out;
  }
}
