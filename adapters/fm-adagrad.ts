/**
 * The `fm-adagrad` adapter: each entity of one side owns its FM feature, a vector e (k) and a bias
 * b, on top of the shared FM (models/fm.ts), which holds both sides' entities: the event's score
 * uses this entity's state AND the other side's entity as its worker last wrote it (the cross-side
 * read, `batch.others`), so an item worker scores a user who appeared a minute ago with what the
 * user worker has learned of them since.
 *
 * Learning, one step per event, on this side's entity only (models/fm-entity.ts, which also gives
 * the state layout; its first k + 2 floats are the VIEW the other side's workers read):
 * - b by the bias filter (models/bias-filter.ts): a Kalman step whose size starts at the release's
 *   prior variance for this side and shrinks with evidence, with the release's drift, plus a
 *   session part that fades from event to event;
 * - e by Adagrad on log loss, pulled towards the prior vector by `l2`.
 */
import type { LabelledEvent, Side } from '../schemas/types.js';
import type { Adapter, AdapterBatch } from './types.js';
import { ConfigError, ThawError } from '../lib/errors.js';
import { encodeEventInto, eventFeatureCount, userFeatureCount } from '../models/features.js';
import { sigmoid, viewSize, VIEW_VECTOR, type FactorizationMachine } from '../models/fm.js';
import { fmStateSize, initialFmState, learnFmEntity, type FmEntityRule } from '../models/fm-entity.js';

/** Options of the `fm-adagrad` adapter. */
export interface FmAdagradOptions {
  /** Adagrad learning rate of the entity vector e (dimensionless). @default 0.1 */
  learningRate?: number;
  /** L2 penalty pulling e back towards the prior vector, per event. @default 0.001 */
  l2?: number;
  /**
   * Initial Adagrad accumulator of e (G at count 0). Larger is more cautious on the very first
   * events: the first step is about learningRate·g/√(G0 + g²). @default 0.1
   */
  initialAccumulator?: number;
  /**
   * Prior variance of a new entity's bias (logit²), overriding the release's (which the trainer
   * chose on the history). 0 freezes the bias at the prior. @default the release's
   */
  biasVariance?: number;
  /** Variance the bias gains per event (logit²), overriding the release's. @default the release's */
  biasDrift?: number;
  /** Share of the session bias kept per event, in [0, 1), overriding the release's. @default the release's */
  sessionDecay?: number;
  /** Variance the session bias gains per event (logit²), 0 = none, overriding the release's. @default the release's */
  sessionVariance?: number;
  /** Where a cold entity starts: the release's prior, or zeros. @default 'release' */
  init?: 'release' | 'zero';
}

/** Defaults of FmAdagradOptions (the bias settings default to the release's). */
export const FM_ADAGRAD_DEFAULTS = { learningRate: 0.1, l2: 0.001, initialAccumulator: 0.1, init: 'release' } as const;

function nonNegative(key: string, value: number | undefined, dflt: number, allowZero = false): number {
  const v = value ?? dflt;
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new ConfigError(key, `must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${String(value)}`);
  }
  return v;
}

export { fmStateSize };

function fraction(key: string, value: number | undefined, dflt: number): number {
  const v = value ?? dflt;
  if (!(Number.isFinite(v) && v >= 0 && v < 1)) throw new ConfigError(key, `must be a number in [0, 1), got ${String(value)}`);
  return v;
}

/** The learning rule of `side`'s entities: the options over the release's bias prior. */
export function fmEntityRule(side: Side, model: FactorizationMachine, opts: FmAdagradOptions = {}): FmEntityRule {
  const d = FM_ADAGRAD_DEFAULTS;
  return {
    learningRate: nonNegative('fm-adagrad.learningRate', opts.learningRate, d.learningRate),
    l2: nonNegative('fm-adagrad.l2', opts.l2, d.l2, true),
    initialAccumulator: nonNegative('fm-adagrad.initialAccumulator', opts.initialAccumulator, d.initialAccumulator),
    biasVariance: nonNegative('fm-adagrad.biasVariance', opts.biasVariance, model.priors[side].biasVariance, true),
    biasDrift: nonNegative('fm-adagrad.biasDrift', opts.biasDrift, model.priors[side].biasDrift, true),
    session: {
      decay: fraction('fm-adagrad.sessionDecay', opts.sessionDecay, model.priors[side].sessionDecay),
      variance: nonNegative('fm-adagrad.sessionVariance', opts.sessionVariance, model.priors[side].sessionVariance, true),
    },
  };
}

export class FmAdagradAdapter implements Adapter {
  readonly name = 'fm-adagrad';
  readonly side: Side;
  readonly stateSize: number;
  readonly viewSize: number;
  readonly hasBaseline = true;
  readonly release: string;
  private readonly model: FactorizationMachine;
  private readonly rule: FmEntityRule;
  /** This side's initial state, and both sides' cold views (the baseline's, and the other side's default). */
  private readonly initial: Float32Array;
  private readonly coldOwn: Float32Array;
  private readonly coldOther: Float32Array;
  // Scratch reused across events: feature rows, S = Σv, and a padded copy of a short other view.
  private idx = new Int32Array(64);
  private readonly s: Float32Array;
  private readonly padded: Float32Array;

  constructor(side: Side, model: FactorizationMachine, opts: FmAdagradOptions = {}) {
    if (side !== 'user' && side !== 'item') throw new ConfigError('side', `must be user or item, got ${String(side)}`);
    this.side = side;
    this.model = model;
    this.release = model.release;
    const k = model.k;
    this.stateSize = fmStateSize(k);
    this.viewSize = viewSize(k);
    this.rule = fmEntityRule(side, model, opts);
    const init = opts.init ?? FM_ADAGRAD_DEFAULTS.init;
    if (init !== 'release' && init !== 'zero') throw new ConfigError('fm-adagrad.init', `must be 'release' or 'zero', got ${String(init)}`);
    const other: Side = side === 'user' ? 'item' : 'user';
    this.coldOwn = model.coldView(side);
    this.coldOther = model.coldView(other);
    this.initial = initialFmState(k, init === 'release' ? this.coldOwn : new Float32Array(this.viewSize), this.rule);
    this.s = new Float32Array(k);
    this.padded = new Float32Array(this.viewSize);
  }

  initialState(_event: LabelledEvent): Float32Array {
    return Float32Array.from(this.initial);
  }

  predict(batch: AdapterBatch): Float32Array {
    this.checkBatch(batch);
    const out = new Float32Array(batch.events.length);
    batch.events.forEach((ev, j) => {
      const own = batch.states[j] ?? this.initial;
      out[j] = sigmoid(this.logitOf(ev, own, this.otherOf(batch, j)));
    });
    return out;
  }

  predictThenAdapt(batch: AdapterBatch): Float32Array {
    this.checkBatch(batch);
    const out = new Float32Array(batch.events.length);
    const { baseline } = batch;
    batch.events.forEach((ev, j) => {
      const own = batch.states[j];
      if (own === undefined) return;
      const other = this.otherOf(batch, j);
      // featureLogit leaves S = Σv in this.s: the baseline and the learning step reuse it.
      const zFeatures = this.featureLogit(ev);
      const p = sigmoid(zFeatures + this.entityLogit(own, other));
      out[j] = p;
      if (baseline !== undefined) baseline[j] = sigmoid(zFeatures + this.entityLogit(this.coldOwn, this.coldOther));
      learnFmEntity(this.model.k, own, other, this.coldOwn, this.s, p, ev.label, this.rule);
    });
    return out;
  }

  /** The other side's view of event j, or its cold view; a view without a vector is padded with the cold vector. */
  private otherOf(batch: AdapterBatch, j: number): Float32Array {
    const v = batch.others?.[j];
    if (v === undefined) return this.coldOther;
    if (v.length >= this.viewSize) return v;
    this.padded.set(this.coldOther);
    this.padded.set(v.subarray(0, Math.min(v.length, VIEW_VECTOR)));
    return this.padded;
  }

  private featureLogit(ev: LabelledEvent): number {
    const count = eventFeatureCount(ev);
    if (count > this.idx.length) this.idx = new Int32Array(count * 2);
    const n = encodeEventInto(ev, this.model.buckets, this.idx);
    return this.model.featureLogit(this.idx, n, userFeatureCount(ev), this.s);
  }

  private entityLogit(own: Float32Array, other: Float32Array): number {
    return this.side === 'user' ? this.model.entityLogit(this.s, own, other) : this.model.entityLogit(this.s, other, own);
  }

  private logitOf(ev: LabelledEvent, own: Float32Array, other: Float32Array): number {
    return this.featureLogit(ev) + this.entityLogit(own, other);
  }

  private checkBatch(batch: AdapterBatch): void {
    if (batch.states.length !== batch.events.length) {
      throw new ThawError('MODEL_ERROR', `fm-adagrad: ${batch.events.length} events but ${batch.states.length} states`);
    }
    if (batch.others !== undefined && batch.others.length !== batch.events.length) {
      throw new ThawError('MODEL_ERROR', `fm-adagrad: ${batch.events.length} events but ${batch.others.length} other-side views`);
    }
    if (batch.baseline !== undefined && batch.baseline.length < batch.events.length) {
      throw new ThawError('MODEL_ERROR', `fm-adagrad: baseline holds ${batch.baseline.length} scores for ${batch.events.length} events`);
    }
    for (const st of batch.states) {
      if (st.length !== this.stateSize) throw new ThawError('STATE_CORRUPT', `fm-adagrad: state has ${st.length} floats, expected ${this.stateSize}`);
    }
  }
}
