/**
 * One entity's online learning on the shared FM (models/fm.ts): the rule the `fm-adagrad` adapter
 * runs in the workers, and that the trainers replay on their replicas of entities (the offline fit
 * of the bias filter, the online trainer), so all three learn exactly alike.
 *
 * State layout (Float32Array, 2k + 2 floats); the first k + 2 are the entity's VIEW (models/fm.ts),
 * which the other side's workers read:
 *   0             b   entity bias
 *   1             s   variance of b
 *   [2, k+2)      e   entity vector
 *   [k+2, 2k+2)   Ge  Adagrad sum of squared gradients of e
 *
 * Per event, after the prediction p with S = Σv of the event's features and the other side's view:
 * - b by the bias filter (models/bias-filter.ts);
 * - e by Adagrad on log loss (∂z/∂e = S + e_other), pulled towards the prior vector by `l2`.
 */
import { filterBias } from './bias-filter.js';
import { viewSize, VIEW_VARIANCE, VIEW_VECTOR } from './fm.js';

/** How one side's entities learn. */
export interface FmEntityRule {
  /** Adagrad learning rate of e. */
  learningRate: number;
  /** Pull of e towards the prior vector, per event. */
  l2: number;
  /** Adagrad accumulator of a new entity's e. */
  initialAccumulator: number;
  /** Variance of a new entity's bias (logit²). */
  biasVariance: number;
  /** Variance the bias gains per event (logit²). */
  biasDrift: number;
}

/** Floats of an fm-adagrad state for latent dimension k. */
export function fmStateSize(k: number): number {
  return 2 * k + 2;
}

/** The state of a new entity whose prior view is `cold` (`[bias, variance, vector]`). */
export function initialFmState(k: number, cold: Float32Array, rule: FmEntityRule): Float32Array {
  const st = new Float32Array(fmStateSize(k));
  st.set(cold.subarray(0, viewSize(k)));
  st[VIEW_VARIANCE] = rule.biasVariance;
  st.fill(rule.initialAccumulator, viewSize(k));
  return st;
}

/**
 * Learns one event in place on `own` (a state, see the file comment): `s` is S of the event, `other`
 * the other side's view used in the prediction `p`, `prior` this side's prior view (the pull of e).
 */
export function learnFmEntity(k: number, own: Float32Array, other: Float32Array, prior: Float32Array, s: Float32Array, p: number, label: number, rule: FmEntityRule): void {
  const err = p - label; // ∂logloss/∂z
  const acc0 = viewSize(k);
  for (let f = 0; f < k; f++) {
    const at = VIEW_VECTOR + f;
    const e = own[at] ?? 0;
    const g = err * ((s[f] ?? 0) + (other[at] ?? 0)) + rule.l2 * (e - (prior[at] ?? 0));
    const acc = (own[acc0 + f] ?? 0) + g * g;
    own[acc0 + f] = acc;
    own[at] = e - (rule.learningRate * g) / Math.sqrt(acc);
  }
  filterBias(own, p, label, other[VIEW_VARIANCE] ?? 0, rule.biasDrift);
}
