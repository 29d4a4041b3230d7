/**
 * The `fixed-adaptive` adapter (user side), after "meta parameter partition" (arXiv 1912.04108) on
 * the model of models/fixed-adaptive.ts: the fixed, user-invariant part (feature table, FM/MLP
 * weights, global bias) is shared and frozen; each user owns the adaptive part, its ID embedding
 * and first-order weight, learned online by Meta-SGD with the release's meta-learned
 * initialisation `fa.init` and per-parameter learning rates `fa.lr`.
 *
 * State layout (Float32Array, D + 3 floats; models/meta-state.ts): the user's bias view, then the
 * user's adaptive params, the user-ID row of the DeepFM backbone:
 *   0          b   user bias (logit), the bias filter's mean
 *   1          s   its variance
 *   [2, D+2)   user embedding (FM pairwise term and MLP input of field 0)
 *   D+2        user first-order weight (the model's own per-user bias, learned by Meta-SGD)
 *
 * - The logit is the backbone's plus the user's bias b and the item's bias as the item side's
 *   worker last wrote it (adapters/entity-bias.ts: the cross-side read and the bias filter); the
 *   Meta-SGD step and the bias filter both learn from that whole logit's prediction.
 * - The baseline (`batch.baseline`, for the worker's safeguard) is the score at `fa.init`, bias 0,
 *   no cross-side read: what the `none` over the release scores.
 * - A user never seen starts at `fa.init`, whatever its features: the initialisation is what the
 *   offline meta-training optimised the first steps from.
 * - A user without profile features is still scored and adapted: the EventEncoder gives missing
 *   fields zero-weight padding (pooled embedding 0), so the adaptive part carries the user alone.
 * - Each event is one Meta-SGD step on that event's log loss: θ ← θ − lrScale · fa.lr ⊙ ∇θ loss,
 *   taken after scoring (the logged score is the pre-adaptation one). The adapter never writes the
 *   shared parameters; only the batch's states change.
 * - No decay of the step with the user's count: the state holds the D+1 params the release
 *   declares (stateLayout), not a count, and the Meta-SGD rates were meta-trained as constant.
 *
 * Small waves (≤ `fastMaxRows`) run a plain-JS copy of the forward and of the backward to the
 * user's D+1 values (adapters/fast/fixed-adaptive.ts): the fixed cost of a TensorFlow.js call
 * dominates them (numbers there).
 *
 * Batching: one forward and one backward for a whole AdapterBatch. Each row is its own user and
 * its logit z depends on that user's params only, so the backward of Σ z gives every row's ∂z/∂θ
 * at once, and the log-loss gradient is (σ(z) − y) · ∂z/∂θ, with σ(z) the logged score.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError, ThawError } from '../lib/errors.js';
import { sliceBatch, type ForwardInputs, type RowBatch } from '../models/ctr-model.js';
import { EventEncoder, type EventLayout } from '../models/event-layout.js';
import type { FixedAdaptive } from '../models/fixed-adaptive.js';
import { sigmoid } from '../models/fm.js';
import { fixedAdaptiveStateSize, META_OWN, UNRECORDED_BIAS_FILTER, type BiasFilterPrior } from '../models/meta-state.js';
import type { LabelledEvent, Side } from '../schemas/types.js';
import type { Adapter, AdapterBatch } from './types.js';
import { EntityBias, type EntityBiasOptions } from './entity-bias.js';
import { FixedAdaptiveFastPath } from './fast/fixed-adaptive.js';
import { checkBatch, checkUserLayout, DEFAULT_CHUNK_ROWS, nonNegativeInt, positiveInt } from './user-common.js';

/**
 * Default `fastMaxRows`, measured (wasm, bench/adapters/per-call.ts --hand, loaded 2-core host):
 * since the hand path takes the first hidden layer's non-user inputs from cached per-(table row,
 * field) products (kernels.ts RowProjections), it beats the tf path's forward + valueAndGrads at
 * every wave size: 0.05 vs 2.1 ms for 1 event, 0.98 vs 2.6 ms for 32, 44.8 vs 60.8 ms for 1024,
 * 202 vs 294 ms for 4096. So every chunk (≤ chunkRows, default 4096) takes it; set it lower (or 0)
 * for a backend where tf wins large waves (native, GPU).
 */
export const FIXED_ADAPTIVE_FAST_MAX_ROWS = DEFAULT_CHUNK_ROWS;

/** Default `lrScale`: the release's meta-learned rates as they are. */
export const FIXED_ADAPTIVE_LR_SCALE = 1;

/** Options of the `fixed-adaptive` adapter (the bias options: adapters/entity-bias.ts). */
export interface FixedAdaptiveAdapterOptions extends EntityBiasOptions {
  /**
   * Multiplier of the release's meta-learned per-parameter rates `fa.lr` (dimensionless). 0 turns
   * adaptation off (every user stays at `fa.init`: the no-adaptation baseline of the same release). @default 1
   */
  lrScale?: number;
  /** Rows per forward/backward pass; larger waves are computed in chunks of this many rows (bounds memory). @default 4096 */
  chunkRows?: number;
  /**
   * Waves of at most this many rows run the plain-JS forward and backward
   * (adapters/fast/fixed-adaptive.ts, same results to 1e-5) instead of TensorFlow.js, whose fixed
   * per-call cost dominates small waves; 0 always uses TensorFlow.js. The worker's
   * `predictThenAdaptSequence` steps one event at a time: any value > 0 runs all of it on the
   * plain-JS path, 0 on TensorFlow.js. @default 4096 (FIXED_ADAPTIVE_FAST_MAX_ROWS = DEFAULT_CHUNK_ROWS: every chunk)
   */
  fastMaxRows?: number;
}

export class FixedAdaptiveAdapter implements Adapter {
  readonly name = 'fixed-adaptive';
  readonly side: Side = 'user';
  readonly stateSize: number;
  readonly viewSize = META_OWN;
  readonly hasBaseline = true;
  readonly release: string;
  readonly model: FixedAdaptive;
  readonly encoder: EventEncoder;
  /** lrScale · fa.lr, per adaptive parameter. */
  private readonly lr: Float32Array;
  private readonly init: Float32Array;
  private readonly chunk: number;
  private readonly fastMax: number;
  private readonly fast: FixedAdaptiveFastPath;
  /** The user's bias and the cross-side read. */
  readonly bias: EntityBias;

  /**
   * @param model the release's model; its backbone's dense params and the meta params are frozen
   *   here (ParamSet.freeze), so the model must not be trained afterwards (trainers work on a copy)
   * @param biasFilter the release's `architecture.biasFilter` (@default UNRECORDED_BIAS_FILTER: biases frozen at 0)
   */
  constructor(model: FixedAdaptive, layout: EventLayout, release: string, opts: FixedAdaptiveAdapterOptions = {}, biasFilter: BiasFilterPrior = UNRECORDED_BIAS_FILTER) {
    const scale = opts.lrScale ?? FIXED_ADAPTIVE_LR_SCALE;
    if (!Number.isFinite(scale) || scale < 0) throw new ConfigError('fixed-adaptive.lrScale', `must be a finite number >= 0, got ${String(opts.lrScale)}`);
    this.chunk = positiveInt('fixed-adaptive.chunkRows', opts.chunkRows, DEFAULT_CHUNK_ROWS);
    this.fastMax = nonNegativeInt('fixed-adaptive.fastMaxRows', opts.fastMaxRows, FIXED_ADAPTIVE_FAST_MAX_ROWS);
    this.bias = new EntityBias('fixed-adaptive', 'user', biasFilter, opts);
    this.encoder = new EventEncoder(layout);
    checkUserLayout('fixed-adaptive', layout, this.encoder.fieldLayout, model.backbone.layout, model.table.rows);
    // The release's weights never change here: their tensors are created once, not per call.
    model.backbone.dense.freeze();
    model.meta.freeze();
    this.fast = new FixedAdaptiveFastPath(model.backbone);
    this.model = model;
    this.release = release;
    this.stateSize = fixedAdaptiveStateSize(model.adaptiveSize);
    this.init = Float32Array.from(model.meta.get('fa.init').data);
    this.lr = Float32Array.from(model.meta.get('fa.lr').data, (r) => scale * r);
  }

  /** Bias 0 with the prior variance, then the meta-learned initialisation `fa.init`, whatever the event's features. */
  initialState(_event: LabelledEvent): Float32Array {
    const st = new Float32Array(this.stateSize);
    this.bias.init(st);
    st.set(this.init, META_OWN);
    return st;
  }

  predict(batch: AdapterBatch): Float32Array {
    return this.run(batch, false);
  }

  /** Releases the frozen model's kept tensors (the model is this adapter's: one per release). */
  dispose(): void {
    this.model.backbone.dense.dispose();
    this.model.meta.dispose();
  }

  predictThenAdapt(batch: AdapterBatch): Float32Array {
    return this.run(batch, true);
  }

  /**
   * The whole micro-batch in one call (adapters/types.ts), repeated users included: the hand path
   * row by row in event order on the users' live states (each step needs the score of the state
   * before it, so rows stay sequential), the same numbers as the wave-by-wave calls without
   * their per-call encoding, slicing and copies. With fastMaxRows 0 it falls back to the waves'
   * tf path one event at a time (only tests do that).
   */
  predictThenAdaptSequence(batch: AdapterBatch): Float32Array {
    this.checkBatch(batch);
    const n = batch.events.length;
    const out = new Float32Array(n);
    if (n === 0) return out;
    const { others, baseline } = batch;
    if (this.fastMax === 0) {
      batch.events.forEach((event, j) => {
        const state = this.stateOf(batch, j);
        const one: AdapterBatch = {
          events: [event],
          states: [state],
          ...(others === undefined ? {} : { others: [others[j]] }),
          ...(baseline === undefined ? {} : { baseline: baseline.subarray(j, j + 1) }),
        };
        out[j] = this.run(one, true)[0] ?? 0;
      });
      return out;
    }
    const rows = this.encoder.encode(batch.events);
    if (baseline !== undefined) this.baselineInto(rows, baseline);
    const ps = this.model.adaptiveSize;
    const z = new Float64Array(1);
    const dz = new Float64Array(ps);
    for (let j = 0; j < n; j++) {
      const st = this.stateOf(batch, j);
      this.fast.row(rows, j, st, META_OWN, z, 0, dz, 0);
      const prob = sigmoid((z[0] ?? 0) + this.bias.offset(st, others, j));
      out[j] = prob;
      this.learn(st, prob, rows.label[j] ?? 0, dz, 0, others, j);
    }
    return out;
  }

  private run(batch: AdapterBatch, adapt: boolean): Float32Array {
    this.checkBatch(batch);
    const n = batch.events.length;
    const out = new Float32Array(n);
    if (n === 0) return out;
    const ps = this.model.adaptiveSize;
    const rows = this.encoder.encode(batch.events);
    for (let from = 0; from < n; from += this.chunk) {
      const to = Math.min(n, from + this.chunk);
      const part = sliceBatch(rows, from, to);
      const users = new Float32Array(part.n * ps);
      for (let j = from; j < to; j++) users.set(this.stateOf(batch, j).subarray(META_OWN), (j - from) * ps);
      const { z, dz } = this.logits(part, users, adapt);
      for (let j = from; j < to; j++) {
        const st = this.stateOf(batch, j);
        const prob = sigmoid((z[j - from] ?? 0) + this.bias.offset(st, batch.others, j));
        out[j] = prob;
        if (dz !== undefined) this.learn(st, prob, rows.label[j] ?? 0, dz, (j - from) * ps, batch.others, j);
      }
    }
    if (adapt && batch.baseline !== undefined) this.baselineInto(rows, batch.baseline);
    return out;
  }

  /**
   * One event's learning on state `st` after the prediction `prob` (of the whole logit): the
   * Meta-SGD step θ ← θ − lr ⊙ (prob − y)·∂z/∂θ (dz[at, at+P)), then the bias filter.
   */
  private learn(st: Float32Array, prob: number, label: number, dz: ArrayLike<number>, at: number, others: AdapterBatch['others'], j: number): void {
    const err = prob - label; // ∂logloss/∂z
    const ps = this.model.adaptiveSize;
    for (let k = 0; k < ps; k++) st[META_OWN + k] = (st[META_OWN + k] ?? 0) - (this.lr[k] ?? 0) * err * (dz[at + k] ?? 0);
    this.bias.learn(st, prob, label, others, j);
  }

  /**
   * The baseline of every row into out: `fa.init`, bias 0, no cross-side read, in the chunks and
   * paths `run` uses, so it equals what the `none` over the release scores (FrozenAdapter).
   */
  private baselineInto(rows: RowBatch, out: Float32Array): void {
    const ps = this.model.adaptiveSize;
    for (let from = 0; from < rows.n; from += this.chunk) {
      const to = Math.min(rows.n, from + this.chunk);
      const users = new Float32Array((to - from) * ps);
      for (let r = 0; r < to - from; r++) users.set(this.init, r * ps);
      const { z } = this.logits(sliceBatch(rows, from, to), users, false);
      for (let j = from; j < to; j++) out[j] = sigmoid(z[j - from] ?? 0);
    }
  }

  /**
   * The backbone's logits z of the rows of `part` with the users' adaptive values `users`
   * (part.n × P) and, with `wantDz`, ∂z/∂θ per row (part.n × P): the hand path up to fastMaxRows.
   */
  private logits(part: RowBatch, users: Float32Array, wantDz: boolean): { z: ArrayLike<number>; dz: ArrayLike<number> | undefined } {
    const ps = this.model.adaptiveSize;
    if (part.n <= this.fastMax) {
      const z = new Float64Array(part.n);
      const dz = wantDz ? new Float64Array(part.n * ps) : undefined;
      this.fast.run(part, users, z, dz);
      return { z, dz };
    }
    const bb = this.model.backbone;
    const res = tf.tidy(() => {
      const p = bb.dense.tensors();
      const pooled = bb.pooledOf(part);
      const id = tf.tensor2d(users, [part.n, ps]);
      const head = (x: tf.Tensor): tf.Tensor1D => bb.head(p, { pooled, id: x as tf.Tensor2D } satisfies ForwardInputs);
      if (!wantDz) return [head(id)];
      // dy = 1 per row: row i of the gradient is ∂z_i/∂θ_i (z_i depends on row i's params only).
      const { value, grads } = tf.valueAndGrads(head)([id], tf.ones([part.n]));
      return [value, ...grads];
    });
    try {
      const [zT, dzT] = res;
      const z = zT === undefined ? new Float32Array(part.n) : (zT.dataSync() as Float32Array);
      return { z, dz: wantDz && dzT !== undefined ? dzT.dataSync() : undefined };
    } finally {
      for (const t of res) t.dispose();
    }
  }

  /** State j of a checked batch. */
  private stateOf(batch: AdapterBatch, j: number): Float32Array {
    const st = batch.states[j];
    if (st === undefined) throw new ThawError('MODEL_ERROR', `fixed-adaptive: no state for event ${j}`);
    return st;
  }

  private checkBatch(batch: AdapterBatch): void {
    checkBatch('fixed-adaptive', batch, this.stateSize);
    this.bias.checkBatch(batch);
  }
}
