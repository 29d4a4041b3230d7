/**
 * What the meta-learned adapters' entity states share (adapters/emerg.ts, coldnas.ts,
 * fixed-adaptive.ts): every state starts with the entity's bias VIEW `[b, variance of b]`, the
 * first two floats of an fm-adagrad view too (models/fm.ts VIEW_BIAS, VIEW_VARIANCE), which the
 * other side's workers may read; the adapter's own parameters follow. The bias is tracked by the
 * bias filter (models/bias-filter.ts) with the prior a release records per side
 * (`architecture.biasFilter`, chosen on the history by trainers/event-trainer.ts).
 *
 * The state sizes live here, not in the adapters, because the releases declare them
 * (models/onnx/bundle.ts `stateLayout`) and the online learners keep them.
 */
import { ThawError } from '../lib/errors.js';
import { SIDES, type Side } from '../schemas/types.js';

/** Floats of a meta adapter's view: `[b, variance of b]`. */
export const META_VIEW_SIZE = 2;
/** Index of the adapter's own parameters in its state (right after the view). */
export const META_OWN = META_VIEW_SIZE;

/** EmerG: view, e (W), A (F²), e0 (W), A0 (F²), the two AdaGrad-Norm accumulators. */
export function emergStateSize(width: number, graphSize: number): number {
  return META_OWN + 2 * width + 2 * graphSize + 2;
}

/** ColdNAS: view, count, running mean of the interaction encodings (C). */
export function coldNasStateSize(contextDim: number): number {
  return META_OWN + 1 + contextDim;
}

/** Fixed/adaptive split: view, the user's adaptive parameters (D + 1). */
export function fixedAdaptiveStateSize(adaptiveSize: number): number {
  return META_OWN + adaptiveSize;
}

/** The bias filter's prior of one side: variance of a new entity's bias, variance gained per event (logit²). */
export interface BiasFilterSide {
  variance: number;
  drift: number;
}

/** The bias filter's prior per side, as a meta release records it (`architecture.biasFilter`). */
export type BiasFilterPrior = Record<Side, BiasFilterSide>;

/**
 * The prior of a meta release that records none (published before releases carried one): variance 0
 * freezes every bias at 0, so the release scores as it did then, plus the cross-side read.
 */
export const UNRECORDED_BIAS_FILTER: BiasFilterPrior = { user: { variance: 0, drift: 0 }, item: { variance: 0, drift: 0 } };

/** `x` as a BiasFilterPrior; throws MODEL_ERROR naming what is wrong. */
export function checkBiasFilter(x: unknown): BiasFilterPrior {
  const bad = (why: string): never => {
    throw new ThawError('MODEL_ERROR', `biasFilter: ${why}`);
  };
  if (x === null || typeof x !== 'object') return bad('must be { user: { variance, drift }, item: { variance, drift } }');
  const out: Partial<BiasFilterPrior> = {};
  for (const side of SIDES) {
    const s = (x as Record<string, unknown>)[side] as Partial<BiasFilterSide> | undefined;
    if (s === undefined || s === null || typeof s !== 'object') return bad(`lacks ${side}`);
    const { variance, drift } = s;
    if (typeof variance !== 'number' || !(variance >= 0 && Number.isFinite(variance))) return bad(`${side}.variance must be a finite number >= 0, got ${String(variance)}`);
    if (typeof drift !== 'number' || !(drift >= 0 && Number.isFinite(drift))) return bad(`${side}.drift must be a finite number >= 0, got ${String(drift)}`);
    out[side] = { variance, drift };
  }
  return out as BiasFilterPrior;
}
