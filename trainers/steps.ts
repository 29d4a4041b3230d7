/**
 * One optimisation step of each kind the trainers run. Each takes gradients with respect to the
 * gathered embedding rows (never through a gather into the tables) and applies sparse updates.
 */
import * as tf from '@tensorflow/tfjs';
import type { CtrModel, EntityParams, ForwardInputs, RowBatch } from '../models/ctr-model.js';
import { gatherRows, pool, weightedBce } from '../models/ctr-model.js';
import type { EmbeddingTable } from '../models/embedding-table.js';
import { firstRowPerEntity } from '../models/entity-init.js';
import type { DenseAdam, TensorMap } from '../models/params.js';
import { at, defined } from '../lib/at.js';

/** Table row ids of a batch's slots, with -1 for padding so they get no update. */
function updatableIdx(b: RowBatch): Int32Array {
  const idx = Int32Array.from(b.featIdx);
  for (let i = 0; i < idx.length; i++) if (b.featW[i] === 0) idx[i] = -1;
  return idx;
}

function toGradMap(names: readonly string[], grads: tf.Tensor[]): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  names.forEach((n, i) => m.set(n, at(grads, i, 'grads').dataSync() as Float32Array));
  return m;
}

export interface SupervisedStepOptions {
  /** Dense params to train. */
  trainable: readonly string[];
  /** Also update the feature table. */
  trainTable: boolean;
}

/**
 * Plain supervised step on hot rows: item-ID embeddings come from `idTable` (row = b.entity);
 * EmerG generates each row's graph inside the step, so its graph hypernetwork trains here too.
 */
export function supervisedStep(model: CtrModel, b: RowBatch, idTable: EmbeddingTable, adam: DenseAdam, opts: SupervisedStepOptions): number {
  const s = model.slots;
  const w = model.width;
  const names = [...opts.trainable];
  const out = tf.tidy(() => {
    const fixed = model.dense.tensors();
    const emb = tf.tensor3d(model.table.gather(b.featIdx), [b.n, s, w]);
    const id = tf.tensor2d(idTable.gather(b.entity), [b.n, w]);
    const fw = tf.tensor2d(b.featW, [b.n, s]);
    const pm = model.poolingTensor();
    const y = tf.tensor1d(b.label);
    const rw = tf.fill<tf.Rank.R1>([b.n], 1 / b.n);
    const f = (...t: tf.Tensor[]): tf.Scalar => {
      const p: TensorMap = { ...fixed };
      names.forEach((n, i) => (p[n] = at(t, i, 't')));
      const x: ForwardInputs = { pooled: pool(t[names.length] as tf.Tensor3D, fw, pm), id: t[names.length + 1] as tf.Tensor2D };
      return weightedBce(model.head(p, x), y, rw);
    };
    const xs = [...names.map((n) => defined(fixed[n], 'fixed[n]')), emb, id];
    const { value, grads } = tf.valueAndGrads(f)(xs);
    return [value, ...grads];
  });
  const [value, ...grads] = out;
  adam.apply(model.dense, toGradMap(names, grads));
  if (opts.trainTable) model.table.applyGradients(updatableIdx(b), at(grads, names.length, 'grads').dataSync() as Float32Array);
  idTable.applyGradients(b.entity, at(grads, names.length + 1, 'grads').dataSync() as Float32Array);
  const loss = defined(value, 'value').dataSync()[0] ?? NaN;
  for (const t of out) t.dispose();
  return loss;
}

export interface MetaStepOptions {
  /** Dense params updated by the outer Adam. */
  trainable: readonly string[];
  /** Also update the feature table in the outer step. */
  trainTable: boolean;
  /** Inner SGD learning rate on the item params. */
  innerLr: number;
  /** Inner learning rate of the item graph as a multiple of innerLr. @default 1 */
  graphLrScale?: number;
  /** Inner SGD steps on the support rows. @default 1 */
  innerSteps?: number;
  /** Weight of the support (cold) loss; the query (warm) loss gets 1 − this. @default 0.1 */
  supportWeight?: number;
}

/**
 * One episodic meta-step over many tasks at once (one task per entity 0..count-1; support and
 * query rows of entity e carry entity = e). Item params start from the generators; a
 * first-order inner SGD step on the item params only (per-entity mean loss), then the outer loss
 * 0.1·support(generated) + 0.9·query(adapted) is differentiated with respect to the shared
 * params, generators included (the inner update is a constant shift, as in first-order MAML).
 */
export function metaStep(model: CtrModel, support: RowBatch, query: RowBatch, count: number, adam: DenseAdam, opts: MetaStepOptions): { loss: number; innerLoss: number } {
  const s = model.slots;
  const w = model.width;
  const gs = model.graphSize;
  const f = model.numFields;
  const genId = model.generateIdEmb?.bind(model);
  const genGraph = model.generateGraph?.bind(model);
  // Initial item params (values) from the generators: one representative row per entity.
  const reps = firstRowPerEntity(support, count);
  const ent: EntityParams = { count, idEmb: new Float32Array(count * w), graph: new Float32Array(count * gs) };
  tf.tidy(() => {
    const p = model.dense.tensors();
    const pooled = model.pooledOf(support);
    const ids = genId !== undefined ? (genId(p, pooled).dataSync() as Float32Array) : new Float32Array(support.n * w);
    const graphs = genGraph !== undefined && gs > 0 ? (genGraph(p, pooled).dataSync() as Float32Array) : new Float32Array(0);
    for (let e = 0; e < count; e++) {
      const r = reps[e] ?? 0;
      if (r < 0) continue;
      ent.idEmb.set(ids.subarray(r * w, r * w + w), e * w);
      if (graphs.length > 0) ent.graph.set(graphs.subarray(r * gs, r * gs + gs), e * gs);
    }
  });
  const start = { idEmb: ent.idEmb.slice(), graph: ent.graph.slice() };
  let innerLoss = NaN;
  for (let k = 0; k < (opts.innerSteps ?? 1); k++) innerLoss = model.adaptStep(support, ent, opts.innerLr, { graph: gs > 0, graphLrScale: opts.graphLrScale ?? 1 });
  const dId = new Float32Array(count * w);
  const dGraph = new Float32Array(count * gs);
  for (let i = 0; i < dId.length; i++) dId[i] = (ent.idEmb[i] ?? 0) - (start.idEmb[i] ?? 0);
  for (let i = 0; i < dGraph.length; i++) dGraph[i] = (ent.graph[i] ?? 0) - (start.graph[i] ?? 0);

  const names = [...opts.trainable];
  const a = opts.supportWeight ?? 0.1;
  const out = tf.tidy(() => {
    const fixed = model.dense.tensors();
    const pm = model.poolingTensor();
    const embS = tf.tensor3d(model.table.gather(support.featIdx), [support.n, s, w]);
    const embQ = tf.tensor3d(model.table.gather(query.featIdx), [query.n, s, w]);
    const fwS = tf.tensor2d(support.featW, [support.n, s]);
    const fwQ = tf.tensor2d(query.featW, [query.n, s]);
    const yS = tf.tensor1d(support.label);
    const yQ = tf.tensor1d(query.label);
    const rwS = tf.fill<tf.Rank.R1>([support.n], 1 / support.n);
    const rwQ = tf.fill<tf.Rank.R1>([query.n], 1 / query.n);
    const shiftId = tf.tensor2d(gatherRows(dId, w, query.entity), [query.n, w]);
    const shiftGraph = gs > 0 ? tf.tensor3d(gatherRows(dGraph, gs, query.entity), [query.n, f, f]) : undefined;
    const side = (p: TensorMap, pooled: tf.Tensor3D, n: number, shift: boolean): ForwardInputs => {
      let id = genId !== undefined ? genId(p, pooled) : tf.zeros<tf.Rank.R2>([n, w]);
      if (shift) id = id.add(shiftId);
      const x: ForwardInputs = { pooled, id };
      if (genGraph !== undefined && gs > 0) {
        let g = genGraph(p, pooled);
        if (shift && shiftGraph !== undefined) g = g.add(shiftGraph);
        x.graph = g;
      }
      return x;
    };
    const fn = (...t: tf.Tensor[]): tf.Scalar => {
      const p: TensorMap = { ...fixed };
      names.forEach((n, i) => (p[n] = at(t, i, 't')));
      const pooledS = pool(t[names.length] as tf.Tensor3D, fwS, pm);
      const pooledQ = pool(t[names.length + 1] as tf.Tensor3D, fwQ, pm);
      const ls = weightedBce(model.head(p, side(p, pooledS, support.n, false)), yS, rwS);
      const lq = weightedBce(model.head(p, side(p, pooledQ, query.n, true)), yQ, rwQ);
      return ls.mul(a).add<tf.Scalar>(lq.mul(1 - a));
    };
    const xs = [...names.map((n) => defined(fixed[n], 'fixed[n]')), embS, embQ];
    const { value, grads } = tf.valueAndGrads(fn)(xs);
    return [value, ...grads];
  });
  const [value, ...grads] = out;
  adam.apply(model.dense, toGradMap(names, grads));
  if (opts.trainTable) {
    // One sparse step over the rows of both sides (a row in both gets its summed gradient).
    const idxS = updatableIdx(support);
    const idxQ = updatableIdx(query);
    const idx = new Int32Array(idxS.length + idxQ.length);
    idx.set(idxS);
    idx.set(idxQ, idxS.length);
    const gS = at(grads, names.length, 'grads').dataSync() as Float32Array;
    const gQ = at(grads, names.length + 1, 'grads').dataSync() as Float32Array;
    const g = new Float32Array(gS.length + gQ.length);
    g.set(gS);
    g.set(gQ, gS.length);
    model.table.applyGradients(idx, g);
  }
  const res = { loss: defined(value, 'value').dataSync()[0] ?? NaN, innerLoss: innerLoss };
  for (const t of out) t.dispose();
  return res;
}
