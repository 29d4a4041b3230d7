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

/**
 * The bias of an entity in two parts, a LASTING bias b (a random walk, as above) and a SESSION
 * bias f that fades: before each of the entity's events f ← ρ·f and its variance grows by q (an
 * AR(1) process: f has variance q/(1 − ρ²) when nothing is known). A user's mood of the evening, a
 * burst of clicks on a trending item: what a few recent events say more loudly than the long run.
 * Both take the event's residual in proportion to their variances (a Kalman step on b + f with a
 * diagonal covariance); ρ and q are chosen on the history like the variance and the drift
 * (trainers/bias-fit.ts), and q = 0 turns the session part off.
 */
export interface SessionBias {
  /** ρ: share of the session bias kept from one of the entity's events to the next, in [0, 1). */
  decay: number;
  /** q: variance the session bias gains per event (logit²); 0 = no session part. */
  variance: number;
}

/** Variance of the session bias of an entity never seen: the AR(1)'s stationary variance (0 when off). */
export function sessionPriorVariance(session: SessionBias): number {
  return session.variance > 0 ? session.variance / (1 - session.decay * session.decay) : 0;
}

/**
 * Positions, in an entity state, of the two parts of its bias: `[b, s, f, s_f]` from `at`. The
 * state's view then holds their sum (VIEW_BIAS = b + f, VIEW_VARIANCE = s + s_f), prepared for the
 * entity's next event, which is what the other side's workers read and the prediction uses.
 */
export const BIAS_PARTS = 4;

/**
 * One step of the two-part filter on the parts at `state[at..at+4)` after an event predicted `p`
 * with label `y` (see SessionBias), then the view's bias and variance at VIEW_BIAS / VIEW_VARIANCE.
 */
export function filterBiasParts(state: Float32Array, at: number, p: number, y: number, otherVariance: number, drift: number, session: SessionBias): void {
  const s = (state[at + 1] ?? 0) + drift;
  const sf = state[at + 3] ?? 0;
  const h = Math.max(p * (1 - p), MIN_CURVATURE);
  const d = 1 + h * (s + sf + otherVariance);
  const g = p - y;
  const b = (state[at] ?? 0) - (g * s) / d;
  const sPost = s - (h * s * s) / d;
  let f = (state[at + 2] ?? 0) - (g * sf) / d;
  let sfPost = sf - (h * sf * sf) / d;
  // Ready for the entity's next event: the session bias fades and gains variance.
  f *= session.decay;
  sfPost = session.decay * session.decay * sfPost + session.variance;
  state[at] = b;
  state[at + 1] = sPost;
  state[at + 2] = f;
  state[at + 3] = sfPost;
  state[VIEW_BIAS] = b + f;
  state[VIEW_VARIANCE] = sPost + sfPost;
}

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
