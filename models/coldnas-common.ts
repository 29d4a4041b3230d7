/**
 * Pieces shared by the user cold-start models (ColdNAS and the fixed/adaptive split): the
 * feature table (typed array, sparse updates), the flattened field embeddings of a row, an MLP
 * predictor, and the small dense matrices that gather per-user values to rows and pool rows per
 * user. Per-row gathers and per-user pooling are matMuls with 0/1 (or 1/n) matrices rather than
 * tf.gather / unsortedSegmentSum, whose gradients the wasm backend lacks.
 *
 * Field 0 of the layout is the user ID; these models do not embed it (ColdNAS represents a user
 * by its history, the fixed/adaptive split by its adaptive parameters), so the predictor input is
 * the F-1 pooled non-ID fields, flattened.
 */
import * as tf from '@tensorflow/tfjs';
import { ThawError } from '../lib/errors.js';
import type { FieldLayout, RowBatch } from './ctr-model.js';
import { pool, poolingMatrix } from './ctr-model.js';
import type { EmbeddingTable } from './embedding-table.js';
import type { ParamSet, TensorMap } from './params.js';
import type { Rng } from './rng.js';
import { defined } from '../lib/at.js';

/** LeakyReLU slope, as PyTorch's default (the official ColdNAS code uses F.leaky_relu). */
export const LEAKY = 0.01;

/** Flattened pooled non-ID field embeddings [n, (F-1)·D] from gathered slot rows emb [n, S, D]. */
export function flatFields(emb: tf.Tensor3D, b: RowBatch, layout: FieldLayout, pm: Float32Array): tf.Tensor2D {
  const s = layout.slotField.length;
  const f1 = layout.fieldNames.length - 1;
  const pooled = pool(emb, tf.tensor2d(b.featW, [b.n, s]), tf.tensor2d(pm, [f1, s]));
  return pooled.reshape([b.n, f1 * emb.shape[2]]);
}

/** Gathered slot rows of a batch as a tensor [n, S, D] (a leaf: gradients are taken with respect to it). */
export function gatherEmb(table: EmbeddingTable, b: RowBatch, slots: number): tf.Tensor3D {
  return tf.tensor3d(table.gather(b.featIdx), [b.n, slots, table.dim]);
}

/** Table row ids of a batch's slots, -1 for padding (no update). */
export function updatableIdx(b: RowBatch): Int32Array {
  const idx = Int32Array.from(b.featIdx);
  for (let i = 0; i < idx.length; i++) if (b.featW[i] === 0) idx[i] = -1;
  return idx;
}

/** [n, count] one-hot of each row's entity: rowsOf(values [count, k]) = oneHot · values. */
export function oneHotRows(entity: Int32Array, count: number): Float32Array {
  const m = new Float32Array(entity.length * count);
  for (let i = 0; i < entity.length; i++) {
    const e = entity[i] ?? 0;
    if (e < 0 || e >= count) throw new ThawError('MODEL_ERROR', `row entity ${e} outside [0, ${count})`);
    m[i * count + e] = 1;
  }
  return m;
}

/** [count, n] per-entity mean pooling matrix (an entity without rows gets a zero row, i.e. mean 0). */
export function meanPoolMatrix(entity: Int32Array, count: number): Float32Array {
  const n = entity.length;
  const c = new Float32Array(count);
  for (const e of entity) c[e] = (c[e] ?? 0) + 1;
  const m = new Float32Array(count * n);
  for (let i = 0; i < n; i++) {
    const e = entity[i] ?? 0;
    m[e * n + i] = 1 / (c[e] ?? 0);
  }
  return m;
}

/** Adds a dense layer `${prefix}.w${i}` [in, out] (Glorot) and `${prefix}.b${i}` [out] (zeros). */
export function addLayer(dense: ParamSet, rng: Rng, prefix: string, i: number | string, fanIn: number, fanOut: number): void {
  dense.add(`${prefix}.w${i}`, [fanIn, fanOut], rng.glorot(fanIn, fanOut));
  dense.add(`${prefix}.b${i}`, [fanOut], new Float32Array(fanOut));
}

export function dense(p: TensorMap, prefix: string, i: number | string, x: tf.Tensor2D): tf.Tensor2D {
  return x.matMul(p[`${prefix}.w${i}`] as tf.Tensor2D).add(defined(p[`${prefix}.b${i}`], 'p[`${prefix}.b${i}`]'));
}

/** Checks the shared constructor options of the user-side models. */
export function checkDims(layout: FieldLayout, dim: number, hidden: readonly number[]): void {
  poolingMatrix(layout);
  if (!Number.isInteger(dim) || dim <= 0) throw new ThawError('MODEL_ERROR', `dim must be a positive integer, got ${dim}`);
  if (hidden.length === 0 || hidden.some((h) => !Number.isInteger(h) || h <= 0)) throw new ThawError('MODEL_ERROR', `hidden must be positive integers, got [${hidden.join(',')}]`);
}
