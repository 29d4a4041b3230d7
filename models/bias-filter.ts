/**
 * The bias filter: an entity's bias b as a random walk tracked by a Kalman filter under logistic
 * loss (the Laplace / extended-Kalman step of Bayesian online logistic regression, as in
 * AdPredictor). The entity's view holds b and its variance s:
 *
 *   s ← s + drift                          (the bias may have moved since the last event)
 *   h = max(p(1 − p), MIN_CURVATURE)        (curvature of the log loss at the prediction p)
 *   d = 1 + h·(s + s_other)                 (the other side's bias is uncertain too: it shares the residual)
 *   b ← b − (p − y)·s/d,   s ← s − h·s²/d
 *
 * Why not a learning rate: the step s/d starts at the prior variance (how far entities' biases
 * spread, learned from the history) and shrinks as evidence accumulates, so an entity's first
 * events move it by what they are worth and no more, while `drift` keeps a long-lived entity able
 * to follow a change. Both sides use the same rule; each worker updates only its own side's view,
 * reading the other side's variance as that worker last wrote it.
 */
import { VIEW_BIAS, VIEW_VARIANCE } from './fm.js';

/** Lower bound of the curvature p(1 − p), so a confident wrong prediction still moves the bias. */
export const MIN_CURVATURE = 0.01;

/**
 * One filter step on `view` (in place) after an event predicted `p` with label `y`; `otherVariance`
 * is the other side's bias variance as read.
 */
export function filterBias(view: Float32Array, p: number, y: number, otherVariance: number, drift: number): void {
  const s = (view[VIEW_VARIANCE] ?? 0) + drift;
  const h = Math.max(p * (1 - p), MIN_CURVATURE);
  const d = 1 + h * (s + otherVariance);
  view[VIEW_BIAS] = (view[VIEW_BIAS] ?? 0) - ((p - y) * s) / d;
  view[VIEW_VARIANCE] = s - (h * s * s) / d;
}
