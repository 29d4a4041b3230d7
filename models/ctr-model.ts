/**
 * What every CTR model of the family shares: the field layout, the batch of encoded rows, the
 * per-entity (item-specific) parameters, and the two batched entry points the streaming adapters
 * and the protocol use: `predict` for many (user, item) rows with each row's entity parameters,
 * and `adaptStep` for many entities at once (gather per-row entity params into one tensor, one
 * forward/backward for the whole batch, scatter the gradients back per entity).
 *
 * Field 0 is always the item ID; its embedding is NOT a table row but an entity parameter supplied
 * per row, so hot items (a table) and new items (adapted params) use the same forward.
 */
import * as tf from '@tensorflow/tfjs';
import { ThawError } from '../lib/errors.js';
import type { EmbeddingTable } from './embedding-table.js';
import type { ParamSet, TensorMap } from './params.js';
import { at, defined } from '../lib/at.js';

export interface FieldLayout {
  /** Field names, index 0 = item ID. */
  readonly fieldNames: readonly string[];
  /** For each feature slot, its field index (1..F-1); bag fields own several consecutive slots. */
  readonly slotField: Int32Array;
  /** Field indices (1..F-1) that describe the item: the input of the generators (hypernetworks). */
  readonly itemFields: readonly number[];
}

/** Encoded rows: S feature slots per row; padding slots have weight 0 (and point at row 0). */
export interface RowBatch {
  readonly n: number;
  /** n × S feature-table rows. */
  readonly featIdx: Int32Array;
  /** n × S pooling weights (1 for single-valued fields, 1/len for bags, 0 for padding). */
  readonly featW: Float32Array;
  /** n labels in {0, 1}. */
  readonly label: Float32Array;
  /** n indices into the entity parameters supplied with the batch (or the item-ID table). */
  readonly entity: Int32Array;
}

/** Item-specific parameters of `count` entities, row-major. */
export interface EntityParams {
  count: number;
  /** count × idWidth item-ID embeddings. */
  idEmb: Float32Array;
  /** count × F × F item graphs (empty for models without one). */
  graph: Float32Array;
}

export interface AdaptOptions {
  /** Also adapt the item graph (EmerG). @default true when the model has one */
  graph?: boolean;
  /** Learning rate of the graph as a multiple of `lr`. @default 1 */
  graphLrScale?: number;
}

export interface ForwardInputs {
  /** Pooled non-ID field embeddings [B, F-1, W]. */
  pooled: tf.Tensor3D;
  /** Item-ID embeddings per row [B, W]. */
  id: tf.Tensor2D;
  /** Item graphs per row [B, F, F] (EmerG only). */
  graph?: tf.Tensor3D;
}

export function numFields(layout: FieldLayout): number {
  return layout.fieldNames.length;
}

/** [F-1, S] 0/1 matrix mapping slots to their field, used to pool bag fields in one matMul. */
export function poolingMatrix(layout: FieldLayout): Float32Array {
  const f1 = numFields(layout) - 1;
  const s = layout.slotField.length;
  const m = new Float32Array(f1 * s);
  for (let j = 0; j < s; j++) {
    const f = layout.slotField[j] ?? 0;
    if (f < 1 || f > f1) throw new ThawError('MODEL_ERROR', `slot ${j} has field ${f} outside 1..${f1}`);
    m[(f - 1) * s + j] = 1;
  }
  return m;
}

/** Pools gathered slot embeddings emb [B,S,W] with weights w [B,S] into fields [B,F-1,W]. */
export function pool(emb: tf.Tensor3D, w: tf.Tensor2D, pm: tf.Tensor2D): tf.Tensor3D {
  const [b, s, width] = emb.shape;
  const weighted = emb.mul(w.expandDims(2));
  const sb = weighted.transpose([1, 0, 2]).reshape([s, b * width]);
  const f1 = pm.shape[0];
  return pm.matMul(sb).reshape([f1, b, width]).transpose<tf.Tensor3D>([1, 0, 2]);
}

/** Sum over rows of rowWeight × binary cross-entropy of logits z against labels y. */
export function weightedBce(z: tf.Tensor1D, y: tf.Tensor1D, rowWeight: tf.Tensor1D): tf.Scalar {
  const l = tf
    .relu(z)
    .sub(z.mul(y))
    .add(tf.log1p(tf.exp(tf.abs(z).neg())));
  return l.mul(rowWeight).sum();
}

/** Gathers per-row copies of entity params (width values each) for `entity` indices. */
export function gatherRows(src: Float32Array, width: number, entity: Int32Array): Float32Array {
  const out = new Float32Array(entity.length * width);
  for (let i = 0; i < entity.length; i++) {
    const e = entity[i] ?? 0;
    out.set(src.subarray(e * width, e * width + width), i * width);
  }
  return out;
}

/** Scatter-adds per-row gradients back to their entity. */
export function scatterAdd(dst: Float32Array, rowGrads: Float32Array, width: number, entity: Int32Array): void {
  for (let i = 0; i < entity.length; i++) {
    const e = entity[i] ?? 0;
    for (let k = 0; k < width; k++) dst[e * width + k] = (dst[e * width + k] ?? 0) + (rowGrads[i * width + k] ?? 0);
  }
}

/** 1/(rows of the row's entity): the weight that makes the loss a per-entity mean. */
export function perEntityMeanWeights(entity: Int32Array, count: number): Float32Array {
  const n = new Float32Array(count);
  for (const e of entity) n[e] = (n[e] ?? 0) + 1;
  const w = new Float32Array(entity.length);
  for (let i = 0; i < entity.length; i++) w[i] = 1 / (n[entity[i] ?? 0] ?? 0);
  return w;
}

/** Slices rows [from, to) of a batch. */
export function sliceBatch(b: RowBatch, from: number, to: number): RowBatch {
  const s = b.featIdx.length / Math.max(1, b.n);
  return {
    n: to - from,
    featIdx: b.featIdx.subarray(from * s, to * s),
    featW: b.featW.subarray(from * s, to * s),
    label: b.label.subarray(from, to),
    entity: b.entity.subarray(from, to),
  };
}

/** Selects rows by index into a new batch. */
export function selectRows(b: RowBatch, rows: readonly number[] | Int32Array): RowBatch {
  const s = b.featIdx.length / Math.max(1, b.n);
  const featIdx = new Int32Array(rows.length * s);
  const featW = new Float32Array(rows.length * s);
  const label = new Float32Array(rows.length);
  const entity = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = at(rows, i, 'rows');
    featIdx.set(b.featIdx.subarray(r * s, r * s + s), i * s);
    featW.set(b.featW.subarray(r * s, r * s + s), i * s);
    label[i] = b.label[r] ?? 0;
    entity[i] = b.entity[r] ?? 0;
  }
  return { n: rows.length, featIdx, featW, label, entity };
}

/**
 * Base of the model family. Subclasses define `head` (the backbone on pooled fields + item
 * params) and their dense params; `predict` and `adaptStep` are shared.
 */
export abstract class CtrModel {
  abstract readonly kind: 'deepfm' | 'emerg';
  /** Embedding size D. */
  abstract readonly dim: number;
  /** Values per embedding row W (DeepFM carries its first-order weight in column D: W = D+1). */
  abstract readonly width: number;
  /** Values of an item graph (F×F) or 0. */
  abstract readonly graphSize: number;
  abstract readonly layout: FieldLayout;
  abstract readonly dense: ParamSet;
  abstract readonly table: EmbeddingTable;
  private pm: Float32Array | undefined;

  /** Logits [B] from pooled fields and per-row item params; `p` holds every dense param. */
  abstract head(p: TensorMap, x: ForwardInputs): tf.Tensor1D;

  /** Generated initial ID embeddings [B,W] from pooled fields, when the model has a generator. */
  generateIdEmb?(p: TensorMap, pooled: tf.Tensor3D): tf.Tensor2D;

  /** Generated item graphs [B,F,F] from pooled fields (EmerG). */
  generateGraph?(p: TensorMap, pooled: tf.Tensor3D): tf.Tensor3D;

  /** Names of the generator (hypernetwork) params. */
  generatorParams(): string[] {
    return [];
  }

  get numFields(): number {
    return this.layout.fieldNames.length;
  }

  get slots(): number {
    return this.layout.slotField.length;
  }

  poolingTensor(): tf.Tensor2D {
    this.pm ??= poolingMatrix(this.layout);
    return tf.tensor2d(this.pm, [this.numFields - 1, this.slots]);
  }

  /** Gathers the batch's feature rows and pools them (no gradient). */
  pooledOf(b: RowBatch, emb?: tf.Tensor3D): tf.Tensor3D {
    const e = emb ?? tf.tensor3d(this.table.gather(b.featIdx), [b.n, this.slots, this.width]);
    return pool(e, tf.tensor2d(b.featW, [b.n, this.slots]), this.poolingTensor());
  }

  /**
   * Click probabilities for rows whose item params are `ent` (row i uses entity b.entity[i]); with
   * `offset`, row i's logit gains offset[i] (terms outside the model, e.g. the adapters' biases).
   */
  predict(b: RowBatch, ent: EntityParams, chunk = 4096, offset?: Float32Array): Float32Array {
    const out = new Float32Array(b.n);
    for (let from = 0; from < b.n; from += chunk) {
      const to = Math.min(b.n, from + chunk);
      const part = sliceBatch(b, from, to);
      const probs = tf.tidy(() => {
        const p = this.dense.tensors();
        const x: ForwardInputs = {
          pooled: this.pooledOf(part),
          id: tf.tensor2d(gatherRows(ent.idEmb, this.width, part.entity), [part.n, this.width]),
        };
        if (this.graphSize > 0) x.graph = tf.tensor3d(gatherRows(ent.graph, this.graphSize, part.entity), [part.n, this.numFields, this.numFields]);
        const z = this.head(p, x);
        return tf.sigmoid(offset === undefined ? z : z.add(tf.tensor1d(offset.subarray(from, to))));
      });
      out.set(probs.dataSync(), from);
      probs.dispose();
    }
    return out;
  }

  /**
   * Per-entity gradients of each entity's mean loss over its rows with respect to its item params
   * (one forward/backward for the whole batch). Returns the mean of the per-entity losses.
   */
  entityGradients(b: RowBatch, ent: EntityParams, withGraph: boolean): { loss: number; gId: Float32Array; gGraph: Float32Array } {
    const { loss, gId, gGraph } = this.scoreAndGradients(b, ent, withGraph);
    return { loss, gId, gGraph };
  }

  /**
   * `entityGradients` plus each row's click probability from the same forward pass (the scores
   * before any step): predict-then-adapt costs one forward/backward, not a forward and then both.
   * With `offset`, row i's logit gains offset[i] (constant terms outside the model, such as the
   * adapters' biases) in both the probabilities and the loss the gradients are of.
   */
  scoreAndGradients(b: RowBatch, ent: EntityParams, withGraph: boolean, offset?: Float32Array): { probs: Float32Array; loss: number; gId: Float32Array; gGraph: Float32Array } {
    const w = this.width;
    const gs = this.graphSize;
    const useGraph = withGraph && gs > 0;
    const rowW = perEntityMeanWeights(b.entity, ent.count);
    let logits: tf.Tensor1D | undefined;
    const res = tf.tidy(() => {
      const p = this.dense.tensors();
      const pooled = this.pooledOf(b);
      const y = tf.tensor1d(b.label);
      const rw = tf.tensor1d(rowW);
      const id = tf.tensor2d(gatherRows(ent.idEmb, w, b.entity), [b.n, w]);
      const graph = gs > 0 ? tf.tensor3d(gatherRows(ent.graph, gs, b.entity), [b.n, this.numFields, this.numFields]) : undefined;
      const off = offset === undefined ? undefined : tf.tensor1d(offset.subarray(0, b.n));
      const xs: tf.Tensor[] = useGraph && graph !== undefined ? [id, graph] : [id];
      const f = (...t: tf.Tensor[]): tf.Scalar => {
        const x: ForwardInputs = { pooled, id: t[0] as tf.Tensor2D };
        const g = useGraph ? (t[1] as tf.Tensor3D) : graph;
        if (g !== undefined) x.graph = g;
        // Kept past the gradient's own tidy: the forward's logits are the pre-step scores.
        const z = this.head(p, x);
        const zo = tf.keep(off === undefined ? z : z.add<tf.Tensor1D>(off));
        logits = zo;
        return weightedBce(zo, y, rw);
      };
      const { value, grads } = tf.valueAndGrads(f)(xs);
      return [value, ...grads];
    });
    const [value, gIdRows, gGraphRows] = res;
    const probs = new Float32Array(b.n);
    if (logits !== undefined) {
      const z = logits.dataSync();
      for (let i = 0; i < b.n; i++) probs[i] = 1 / (1 + Math.exp(-(z[i] ?? 0)));
      logits.dispose();
    }
    const gId = new Float32Array(ent.count * w);
    scatterAdd(gId, defined(gIdRows, 'gIdRows').dataSync() as Float32Array, w, b.entity);
    const gGraph = new Float32Array(useGraph ? ent.count * gs : 0);
    if (useGraph && gGraphRows !== undefined) scatterAdd(gGraph, gGraphRows.dataSync() as Float32Array, gs, b.entity);
    const entities = new Set(b.entity).size;
    const loss = (defined(value, 'value').dataSync()[0] ?? 0) / Math.max(1, entities);
    for (const t of res) t.dispose();
    return { probs, loss, gId, gGraph };
  }

  /**
   * One SGD step on the item params of every entity in the batch, in place: each entity moves by
   * `lr` × the gradient of its own mean loss, exactly as if it were stepped alone.
   */
  adaptStep(b: RowBatch, ent: EntityParams, lr: number, opts: AdaptOptions = {}): number {
    const withGraph = opts.graph ?? this.graphSize > 0;
    const { loss, gId, gGraph } = this.entityGradients(b, ent, withGraph);
    for (let i = 0; i < gId.length; i++) ent.idEmb[i] = (ent.idEmb[i] ?? 0) - lr * (gId[i] ?? 0);
    const lrG = lr * (opts.graphLrScale ?? 1);
    for (let i = 0; i < gGraph.length; i++) ent.graph[i] = (ent.graph[i] ?? 0) - lrG * (gGraph[i] ?? 0);
    return loss;
  }
}
