/**
 * The fixed / adaptive parameter split ("meta parameter partition", arXiv 1912.04108) for user
 * cold-start. The model's parameters are declared in two parts (FIXED_ADAPTIVE_PARTITION):
 * - fixed (user-invariant, shared, meta-learned offline): the feature table and the MLP trunk;
 * - adaptive (one copy per user, learned online): the user vector u (D values, fed to the trunk
 *   next to the field embeddings) and the last layer (H weights + 1 bias) on the trunk's output.
 * The adaptive part has a meta-learned initialisation `fa.init` and per-parameter learning rates
 * `fa.lr` (Meta-SGD): a new user starts at `fa.init` and each SGD step moves parameter k by
 * −fa.lr[k] · gradient[k] of the user's mean loss on its new rows.
 *
 * Batched entry points: `predict` for many rows with per-user adaptive params, and `adaptStep`
 * for many users at once (gather per-row params into one [n, P] tensor, one forward/backward,
 * scatter-add the row gradients back per user, weighted so each user steps on its own mean loss).
 */
import * as tf from '@tensorflow/tfjs';
import { ThawError } from '../lib/errors.js';
import type { FieldLayout, RowBatch } from './ctr-model.js';
import { gatherRows, perEntityMeanWeights, poolingMatrix, scatterAdd, sliceBatch, weightedBce } from './ctr-model.js';
import { addLayer, checkDims, dense, flatFields, gatherEmb, LEAKY } from './coldnas-common.js';
import { EmbeddingTable } from './embedding-table.js';
import { ParamSet, type TensorMap } from './params.js';
import { Rng } from './rng.js';

/** The declared partition, by parameter name (the release manifest records it). */
export const FIXED_ADAPTIVE_PARTITION = {
  fixed: ['table', 'fa.w0', 'fa.b0', 'fa.w1', 'fa.b1'],
  adaptive: ['user', 'out.w', 'out.b'],
  meta: ['fa.init', 'fa.lr'],
} as const;

export interface FixedAdaptiveOptions {
  layout: FieldLayout;
  /** Feature-table rows. */
  vocab: number;
  /** Embedding size D (also the user vector's size). @default 16 */
  dim?: number;
  /** Trunk hidden sizes (two layers). @default [64, 32] */
  hidden?: readonly [number, number];
  /** Initial per-parameter learning rate of the adaptive part. @default 0.3 */
  initLr?: number;
  /** Seed of the initialisers. @default 7788 */
  seed?: number;
  /** Adam learning rate of the feature table. @default 0.001 */
  tableLr?: number;
}

export class FixedAdaptive {
  readonly kind = 'fixed-adaptive' as const;
  readonly layout: FieldLayout;
  readonly dim: number;
  readonly hidden: readonly [number, number];
  readonly table: EmbeddingTable;
  /** Fixed trunk params and the meta params `fa.init`, `fa.lr`. */
  readonly dense = new ParamSet();
  /** Adaptive values per user P = D + H + 1: [u (D) | out.w (H) | out.b (1)]. */
  readonly adaptiveSize: number;
  private readonly pm: Float32Array;

  constructor(opts: FixedAdaptiveOptions) {
    this.layout = opts.layout;
    this.dim = opts.dim ?? 16;
    this.hidden = opts.hidden ?? [64, 32];
    checkDims(this.layout, this.dim, this.hidden);
    this.pm = poolingMatrix(this.layout);
    const rng = new Rng(opts.seed ?? 7788);
    this.table = new EmbeddingTable({ rows: opts.vocab, dim: this.dim, lr: opts.tableLr ?? 0.001 }).init(rng, 0.01);
    let fanIn = this.layout.fieldNames.length * this.dim;
    this.hidden.forEach((h, i) => {
      addLayer(this.dense, rng, 'fa', i, fanIn, h);
      fanIn = h;
    });
    const h = this.hidden[1];
    this.adaptiveSize = this.dim + h + 1;
    const init = new Float32Array(this.adaptiveSize);
    rng.fillUniform(init.subarray(0, this.dim), 0.01);
    init.set(rng.glorot(h, 1), this.dim);
    this.dense.add('fa.init', [this.adaptiveSize], init);
    this.dense.add('fa.lr', [this.adaptiveSize], new Float32Array(this.adaptiveSize).fill(opts.initLr ?? 0.3));
  }

  get slots(): number {
    return this.layout.slotField.length;
  }

  /** Names of the fixed dense params (trunk). */
  fixedParams(): string[] {
    return this.dense.names().filter((n) => n !== 'fa.init' && n !== 'fa.lr');
  }

  /** Logits [n] from gathered slot rows and per-row adaptive params theta [n, P]. */
  logits(p: TensorMap, emb: tf.Tensor3D, b: RowBatch, theta: tf.Tensor2D): tf.Tensor1D {
    const n = b.n;
    const d = this.dim;
    const h = this.hidden[1];
    const u = theta.slice([0, 0], [n, d]);
    const w = theta.slice([0, d], [n, h]);
    const bias = theta.slice([0, d + h], [n, 1]).reshape([n]);
    let x = tf.concat([u, flatFields(emb, b, this.layout, this.pm)], 1) as tf.Tensor2D;
    for (let i = 0; i < 2; i++) x = tf.leakyRelu(dense(p, 'fa', i, x), LEAKY);
    return x.mul(w).sum(1).add(bias) as tf.Tensor1D;
  }

  /** Adaptive params of `count` new users, each at the meta-learned initialisation (count × P). */
  initUsers(count: number): Float32Array {
    const init = this.dense.get('fa.init').data;
    const out = new Float32Array(count * this.adaptiveSize);
    for (let i = 0; i < count; i++) out.set(init, i * this.adaptiveSize);
    return out;
  }

  /** Click probabilities; row i uses the adaptive params of user b.entity[i] in `users` (count × P). */
  predict(b: RowBatch, users: Float32Array, chunk = 4096): Float32Array {
    const out = new Float32Array(b.n);
    const ps = this.adaptiveSize;
    for (let from = 0; from < b.n; from += chunk) {
      const part = sliceBatch(b, from, Math.min(b.n, from + chunk));
      const probs = tf.tidy(() => {
        const theta = tf.tensor2d(gatherRows(users, ps, part.entity), [part.n, ps]);
        return tf.sigmoid(this.logits(this.dense.tensors(this.fixedParams()), gatherEmb(this.table, part, this.slots), part, theta));
      });
      out.set(probs.dataSync() as Float32Array, from);
      probs.dispose();
    }
    return out;
  }

  /**
   * Gradients of each user's mean loss over its rows with respect to its adaptive params
   * (count × P), from one forward/backward over all rows. Returns the mean per-user loss too.
   */
  userGradients(b: RowBatch, users: Float32Array, count: number): { loss: number; grads: Float32Array } {
    const ps = this.adaptiveSize;
    if (users.length !== count * ps) throw new ThawError('MODEL_ERROR', `adaptive params: ${users.length} values for ${count} users × ${ps}`);
    const rw = perEntityMeanWeights(b.entity, count);
    const [value, g] = tf.tidy(() => {
      const p = this.dense.tensors(this.fixedParams());
      const emb = gatherEmb(this.table, b, this.slots);
      const y = tf.tensor1d(b.label);
      const w = tf.tensor1d(rw);
      const theta = tf.tensor2d(gatherRows(users, ps, b.entity), [b.n, ps]);
      const { value, grads } = tf.valueAndGrads((t: tf.Tensor) => weightedBce(this.logits(p, emb, b, t as tf.Tensor2D), y, w))([theta]);
      return [value, grads[0]!];
    });
    const grads = new Float32Array(count * ps);
    scatterAdd(grads, g!.dataSync() as Float32Array, ps, b.entity);
    const users_ = new Set(b.entity).size;
    const loss = (value!.dataSync()[0] ?? 0) / Math.max(1, users_);
    value!.dispose();
    g!.dispose();
    return { loss, grads };
  }

  /**
   * `steps` Meta-SGD steps on the adaptive params of every user in the batch, in place: user u
   * moves by −fa.lr ⊙ ∇(u's mean loss over its rows), exactly as if stepped alone.
   */
  adaptStep(b: RowBatch, users: Float32Array, count: number, steps = 1): number {
    const lr = this.dense.get('fa.lr').data;
    const ps = this.adaptiveSize;
    let loss = NaN;
    for (let s = 0; s < steps; s++) {
      const r = this.userGradients(b, users, count);
      loss = r.loss;
      for (let i = 0; i < r.grads.length; i++) users[i] = users[i]! - lr[i % ps]! * r.grads[i]!;
    }
    return loss;
  }

  /** The declared partition with sizes, as JSON for the release manifest. */
  partitionJson(): { fixed: string[]; adaptive: { name: string; size: number }[]; meta: string[] } {
    return {
      fixed: [...FIXED_ADAPTIVE_PARTITION.fixed],
      adaptive: [
        { name: 'user', size: this.dim },
        { name: 'out.w', size: this.hidden[1] },
        { name: 'out.b', size: 1 },
      ],
      meta: [...FIXED_ADAPTIVE_PARTITION.meta],
    };
  }
}
