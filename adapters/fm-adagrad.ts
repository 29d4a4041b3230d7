/**
 * The `fm-adagrad` adapter: each entity of one side owns an FM feature of its own, a vector e (k)
 * and a bias b, on top of the frozen shared FM; both are learned online by Adagrad on log loss,
 * one step per event. Adagrad's per-coordinate step sizes shrink as an entity accumulates
 * gradient, so the first few events move a cold entity fast and later ones fine-tune it.
 *
 * State layout (Float32Array, 2k + 2 floats):
 *   [0, k)        e   entity vector
 *   k             b   entity bias
 *   [k+1, 2k+1)   Ge  Adagrad sum of squared gradients of e
 *   2k+1          Gb  Adagrad sum of squared gradients of b
 */
import type { LabelledEvent, Side } from '../schemas/types.js';
import type { Adapter, AdapterBatch } from './types.js';
import { ConfigError, ThawError } from '../lib/errors.js';
import { encodeEventInto, eventFeatureCount } from '../models/features.js';
import { sigmoid, type FactorizationMachine } from '../models/fm.js';

/** Options of the `fm-adagrad` adapter. */
export interface FmAdagradOptions {
  /** Adagrad learning rate of the entity vector e (dimensionless). @default 0.1 */
  learningRate?: number;
  /** Adagrad learning rate of the entity bias b. @default 0.2 */
  biasLearningRate?: number;
  /** L2 penalty pulling e and b back towards their initial values, per event. @default 0.001 */
  l2?: number;
  /**
   * Initial Adagrad accumulator (G at count 0). Larger is more cautious on the very first events:
   * the first step is about learningRate·g/√(G0 + g²). @default 0.1
   */
  initialAccumulator?: number;
  /** Where a cold entity starts: the release's learned cold vector and bias, or zeros. @default 'release' */
  init?: 'release' | 'zero';
}

/** Defaults of FmAdagradOptions. */
export const FM_ADAGRAD_DEFAULTS = { learningRate: 0.1, biasLearningRate: 0.2, l2: 0.001, initialAccumulator: 0.1, init: 'release' } as const;

function positive(key: string, value: number | undefined, dflt: number, allowZero = false): number {
  const v = value ?? dflt;
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new ConfigError(key, `must be a finite number ${allowZero ? '>= 0' : '> 0'}, got ${String(value)}`);
  }
  return v;
}

export class FmAdagradAdapter implements Adapter {
  readonly name = 'fm-adagrad';
  readonly side: Side;
  readonly stateSize: number;
  readonly release: string;
  private readonly model: FactorizationMachine;
  private readonly lr: number;
  private readonly lrB: number;
  private readonly l2: number;
  private readonly g0: number;
  private readonly e0: Float32Array;
  private readonly b0: number;
  // Scratch reused across events: feature rows and Σv. No allocation per event.
  private idx = new Int32Array(64);
  private readonly s: Float32Array;

  constructor(side: Side, model: FactorizationMachine, opts: FmAdagradOptions = {}) {
    // The shared FM was trained next to entity vectors of one side: adapting the other side with it
    // would pair vectors with a model that never saw them.
    if (model.side !== side) {
      throw new ThawError('RELEASE_INCOMPATIBLE', `fm-adagrad: release ${model.release} was trained for ${model.side} vectors, not ${side}`);
    }
    this.side = side;
    this.model = model;
    this.release = model.release;
    this.stateSize = 2 * model.k + 2;
    const d = FM_ADAGRAD_DEFAULTS;
    this.lr = positive('fm-adagrad.learningRate', opts.learningRate, d.learningRate);
    this.lrB = positive('fm-adagrad.biasLearningRate', opts.biasLearningRate, d.biasLearningRate, true);
    this.l2 = positive('fm-adagrad.l2', opts.l2, d.l2, true);
    this.g0 = positive('fm-adagrad.initialAccumulator', opts.initialAccumulator, d.initialAccumulator);
    const init = opts.init ?? d.init;
    if (init !== 'release' && init !== 'zero') throw new ConfigError('fm-adagrad.init', `must be 'release' or 'zero', got ${String(init)}`);
    this.e0 = init === 'release' ? Float32Array.from(model.entityInit) : new Float32Array(model.k);
    this.b0 = init === 'release' ? model.entityBiasInit : 0;
    this.s = new Float32Array(model.k);
  }

  initialState(_event: LabelledEvent): Float32Array {
    const k = this.model.k;
    const st = new Float32Array(this.stateSize);
    st.set(this.e0, 0);
    st[k] = this.b0;
    st.fill(this.g0, k + 1);
    return st;
  }

  predict(batch: AdapterBatch): Float32Array {
    this.checkBatch(batch);
    const out = new Float32Array(batch.events.length);
    for (let j = 0; j < batch.events.length; j++) out[j] = sigmoid(this.logitOf(batch.events[j]!, batch.states[j]!));
    return out;
  }

  predictThenAdapt(batch: AdapterBatch): Float32Array {
    this.checkBatch(batch);
    const k = this.model.k;
    const s = this.s;
    const out = new Float32Array(batch.events.length);
    for (let j = 0; j < batch.events.length; j++) {
      const ev = batch.events[j]!;
      const st = batch.states[j]!;
      // logitOf leaves Σv in this.s: the gradient of z w.r.t. e, reused below.
      const p = sigmoid(this.logitOf(ev, st));
      out[j] = p;
      const err = p - ev.label; // ∂logloss/∂z
      for (let f = 0; f < k; f++) {
        const e = st[f]!;
        const g = err * s[f]! + this.l2 * (e - this.e0[f]!);
        const G = st[k + 1 + f]! + g * g;
        st[k + 1 + f] = G;
        st[f] = e - (this.lr * g) / Math.sqrt(G);
      }
      if (this.lrB > 0) {
        const b = st[k]!;
        const gb = err + this.l2 * (b - this.b0);
        const Gb = st[2 * k + 1]! + gb * gb;
        st[2 * k + 1] = Gb;
        st[k] = b - (this.lrB * gb) / Math.sqrt(Gb);
      }
    }
    return out;
  }

  private logitOf(ev: LabelledEvent, st: Float32Array): number {
    const count = eventFeatureCount(ev);
    if (count > this.idx.length) this.idx = new Int32Array(count * 2);
    const m = this.model;
    const n = encodeEventInto(ev, m.buckets, this.idx);
    // e is the first k floats of the state; pass the state itself (logit reads only e[0..k)).
    return m.logit(this.idx, st, st[m.k]!, n, this.s);
  }

  private checkBatch(batch: AdapterBatch): void {
    if (batch.states.length !== batch.events.length) {
      throw new ThawError('MODEL_ERROR', `fm-adagrad: ${batch.events.length} events but ${batch.states.length} states`);
    }
    for (const st of batch.states) {
      if (st.length !== this.stateSize) throw new ThawError('STATE_CORRUPT', `fm-adagrad: state has ${st.length} floats, expected ${this.stateSize}`);
    }
  }
}
