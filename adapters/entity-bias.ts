/**
 * The bias terms every meta-learned adapter (adapters/emerg.ts, coldnas.ts, fixed-adaptive.ts) adds
 * to its model's logit, as the two-sided FM does (models/fm.ts):
 *
 *   z = z_model(the entity's own parameters) + b_own + b_other
 *
 * - b_own is state[0], the entity's bias, and state[1] its variance (the entity's VIEW, which the
 *   other side's workers may read: models/meta-state.ts). A new entity starts at b = 0 with the
 *   release's prior variance for its side; after each event the bias filter (models/bias-filter.ts)
 *   moves it on the prequential prediction p of the whole logit, with the release's drift. The
 *   model's own per-entity parameters learn from the same p, as before.
 * - b_other is the other side's entity's bias as that side's worker last wrote it (`batch.others`,
 *   view[0]: the FM partner's bias, in its logit space), or 0 when the other entity is cold or the
 *   cross-side read is off. Why 0 and not the FM's prior bias: the meta adapter does not hold the
 *   FM release, and the FM's prior biases are the mean hot entity's, near 0 (ML-100K, FM on the first
 *   20 %: user 0.017, item 0.050 against w0 −0.059), so an entity's first read moves its score by
 *   less than that.
 * - The filter's other variance is view[1], or the other side's prior variance from the release
 *   when the other entity is cold (or the read is off): an unknown other bias shares the residual.
 *
 * The meta models already know the other side's ID (models/event-layout.ts field 1, a hashed row
 * trained on the history), so for entities the history held, b_other repeats what the model knows;
 * `crossSide` turns the read off (evaluation/README.md measures both on a validation split).
 */
import { ConfigError, ThawError } from '../lib/errors.js';
import { filterBias } from '../models/bias-filter.js';
import type { BiasFilterPrior } from '../models/meta-state.js';
import type { Side } from '../schemas/types.js';
import type { AdapterBatch } from './types.js';

/** What a meta adapter reads of the other side: its entity's bias (`bias`) or nothing (`off`). */
export type CrossSide = 'bias' | 'off';
export const CROSS_SIDES: readonly CrossSide[] = ['bias', 'off'];

/** Default `crossSide` of the meta adapters (chosen on a validation split: evaluation/README.md). */
export const META_CROSS_SIDE: CrossSide = 'bias';

/** The bias options every meta adapter takes (adapters' option interfaces extend it). */
export interface EntityBiasOptions {
  /**
   * Prior variance of a new entity's bias (logit²), overriding the release's `biasFilter` (chosen
   * on the history by the trainer). 0 freezes the bias at 0. @default the release's
   */
  biasVariance?: number;
  /** Variance the bias gains per event (logit²), overriding the release's. @default the release's */
  biasDrift?: number;
  /**
   * `bias`: the other side's entity's fresh bias enters the logit (the cross-side read); `off`:
   * only this side's bias. @default 'bias' (META_CROSS_SIDE)
   */
  crossSide?: CrossSide;
}

function nonNegative(key: string, value: number | undefined, dflt: number): number {
  const v = value ?? dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(key, `must be a finite number >= 0, got ${String(value)}`);
  return v;
}

/** One side's bias terms (see the file comment); stateless across entities. */
export class EntityBias {
  /** This side's prior variance and drift (options over the release's). */
  readonly variance: number;
  readonly drift: number;
  /** The other side's prior variance (a cold other entity's). */
  readonly otherVariance: number;
  readonly crossSide: CrossSide;
  private readonly adapter: string;

  /**
   * @param adapter the adapter's name (option keys and errors say `<adapter>.<key>`)
   * @param prior the release's `biasFilter`
   */
  constructor(adapter: string, side: Side, prior: BiasFilterPrior, opts: EntityBiasOptions = {}) {
    this.adapter = adapter;
    const other: Side = side === 'user' ? 'item' : 'user';
    this.variance = nonNegative(`${adapter}.biasVariance`, opts.biasVariance, prior[side].variance);
    this.drift = nonNegative(`${adapter}.biasDrift`, opts.biasDrift, prior[side].drift);
    this.otherVariance = prior[other].variance;
    const cross = opts.crossSide ?? META_CROSS_SIDE;
    if (!CROSS_SIDES.includes(cross)) throw new ConfigError(`${adapter}.crossSide`, `must be ${CROSS_SIDES.map((c) => `'${c}'`).join(' or ')}, got ${String(cross)}`);
    this.crossSide = cross;
  }

  /** Writes a new entity's view into `state`: b = 0 with this side's prior variance. */
  init(state: Float32Array): void {
    state[0] = 0;
    state[1] = this.variance;
  }

  /** The other side's bias for event j (0 when cold or when the read is off). */
  otherBias(others: AdapterBatch['others'], j: number): number {
    if (this.crossSide === 'off') return 0;
    return others?.[j]?.[0] ?? 0;
  }

  /** The variance of the other side's bias for event j (its prior when cold or when the read is off). */
  otherVarianceOf(others: AdapterBatch['others'], j: number): number {
    if (this.crossSide === 'off') return this.otherVariance;
    return others?.[j]?.[1] ?? this.otherVariance;
  }

  /** b_own + b_other of event j, whose entity's state is `state`. */
  offset(state: Float32Array, others: AdapterBatch['others'], j: number): number {
    return (state[0] ?? 0) + this.otherBias(others, j);
  }

  /** One filter step of `state`'s bias after event j was predicted `p` with label `label`. */
  learn(state: Float32Array, p: number, label: number, others: AdapterBatch['others'], j: number): void {
    filterBias(state, p, label, this.otherVarianceOf(others, j), this.drift);
  }

  /** Throws MODEL_ERROR unless `others` and `baseline`, when given, cover every event of `batch`. */
  checkBatch(batch: AdapterBatch): void {
    const n = batch.events.length;
    if (batch.others !== undefined && batch.others.length !== n) {
      throw new ThawError('MODEL_ERROR', `${this.adapter}: ${n} events but ${batch.others.length} other-side views`);
    }
    if (batch.baseline !== undefined && batch.baseline.length < n) {
      throw new ThawError('MODEL_ERROR', `${this.adapter}: baseline holds ${batch.baseline.length} scores for ${n} events`);
    }
  }
}
