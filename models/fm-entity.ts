/**
 * One entity's online learning on the shared FM (models/fm.ts): the rule the `fm-adagrad` adapter
 * runs in the workers, and that the trainers replay on their replicas of entities (the offline fit
 * of the bias filter, the online trainer), so all three learn exactly alike.
 *
 * State layout (Float32Array, 2k + 6 floats); the first k + 2 are the entity's VIEW (models/fm.ts),
 * which the other side's workers read and the prediction uses:
 *   0             bias   b + f, ready for the entity's next event
 *   1             var    s + s_f
 *   [2, k+2)      e      entity vector
 *   [k+2, 2k+2)   Ge     Adagrad sum of squared gradients of e
 *   [2k+2, 2k+6)  b, s, f, s_f   the lasting and the session bias with their variances (models/bias-filter.ts)
 *
 * Per event, after the prediction p with S = Σv of the event's features and the other side's view:
 * - the bias parts by the bias filter (filterBiasParts);
 * - e by Adagrad on log loss (∂z/∂e = S + e_other), pulled towards the prior vector by `l2`.
 */
import { BIAS_PARTS, filterBiasParts, sessionPriorVariance, type SessionBias } from './bias-filter.js';
import { viewSize, VIEW_BIAS, VIEW_VARIANCE, VIEW_VECTOR } from './fm.js';

/** How one side's entities learn. */
export interface FmEntityRule {
  /** Adagrad learning rate of e. */
  learningRate: number;
  /** Pull of e towards the prior vector, per event. */
  l2: number;
  /** Adagrad accumulator of a new entity's e. */
  initialAccumulator: number;
  /** Variance of a new entity's lasting bias (logit²). */
  biasVariance: number;
  /** Variance the lasting bias gains per event (logit²). */
  biasDrift: number;
  /** The session part of the bias. */
  session: SessionBias;
}

/** Floats of an fm-adagrad state for latent dimension k. */
export function fmStateSize(k: number): number {
  return 2 * k + 2 + BIAS_PARTS;
}

/** Where the bias parts start in a state of latent dimension k. */
function partsAt(k: number): number {
  return 2 * k + 2;
}

/** The state of a new entity whose prior view is `cold` (`[bias, variance, vector]`, only bias and vector read). */
export function initialFmState(k: number, cold: Float32Array, rule: FmEntityRule): Float32Array {
  const st = new Float32Array(fmStateSize(k));
  st.set(cold.subarray(0, viewSize(k)));
  st.fill(rule.initialAccumulator, viewSize(k), partsAt(k));
  const at = partsAt(k);
  const sf = sessionPriorVariance(rule.session);
  st[at] = cold[VIEW_BIAS] ?? 0;
  st[at + 1] = rule.biasVariance;
  st[at + 2] = 0;
  st[at + 3] = sf;
  st[VIEW_VARIANCE] = rule.biasVariance + sf;
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
  filterBiasParts(own, partsAt(k), p, label, other[VIEW_VARIANCE] ?? 0, rule.biasDrift, rule.session);
}
