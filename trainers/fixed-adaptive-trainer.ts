/**
 * Offline stage of the fixed/adaptive split: meta-train the fixed params (trunk and feature
 * table), the adaptive params' initialisation `fa.init` and their per-parameter learning rates
 * `fa.lr` (Meta-SGD) over episodic user tasks of the hot users, first-order:
 *   θ'_u = init − lr ⊙ g_u,   g_u = ∇θ L_support(u)(init)   (g_u held constant: first order)
 *   loss = a · L_support(init) + (1 − a) · L_query(θ'_u)   (a = 0.1: the cold term keeps init good)
 * Adam on everything. ∂loss/∂lr = −(1−a) · g_u ⊙ ∂L_query/∂θ' is exact under the first-order
 * approximation, so the learning rates learn which adaptive parameters deserve large steps.
 * Before that, an optional supervised base phase (each hot user with its own adaptive params)
 * gives the fixed trunk and table as many gradient steps as the DeepFM baseline gets.
 * (The paper's second, online meta-training stage on streaming users is not implemented here.)
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { RowBatch } from '../models/ctr-model.js';
import { selectRows, sliceBatch, weightedBce } from '../models/ctr-model.js';
import { EmbeddingTable } from '../models/embedding-table.js';
import { gatherEmb, oneHotRows, updatableIdx } from '../models/coldnas-common.js';
import { FixedAdaptive } from '../models/fixed-adaptive.js';
import { DenseAdam, type TensorMap } from '../models/params.js';
import { Rng } from '../models/rng.js';
import { rowsByEntity, sampleEpisodes, type Episodes, type UserTrainData } from './coldnas-trainer.js';

/** One first-order Meta-SGD step over many user tasks at once. Returns the outer loss. */
export function fixedAdaptiveMetaStep(model: FixedAdaptive, ep: Episodes, adam: DenseAdam, supportWeight = 0.1): number {
  const { support, query, count } = ep;
  const ps = model.adaptiveSize;
  const s = model.slots;
  const g = model.userGradients(support, model.initUsers(count), count).grads;
  const names = model.dense.names();
  const perUser = (ent: Int32Array): Float32Array => {
    const c = new Float32Array(count);
    for (const e of ent) c[e] = c[e]! + 1;
    const users = c.filter((x) => x > 0).length;
    return Float32Array.from(ent, (e) => 1 / (c[e]! * Math.max(1, users)));
  };
  const out = tf.tidy(() => {
    const fixed = model.dense.tensors();
    const embS = gatherEmb(model.table, support, s);
    const embQ = gatherEmb(model.table, query, s);
    const yS = tf.tensor1d(support.label);
    const yQ = tf.tensor1d(query.label);
    const wS = tf.tensor1d(perUser(support.entity));
    const wQ = tf.tensor1d(perUser(query.entity));
    const G = tf.tensor2d(g, [count, ps]);
    const onehotQ = tf.tensor2d(oneHotRows(query.entity, count), [query.n, count]);
    const fn = (...t: tf.Tensor[]): tf.Scalar => {
      const p: TensorMap = { ...fixed };
      names.forEach((n, i) => (p[n] = t[i]!));
      const init = p['fa.init']!.reshape([1, ps]);
      const adapted = init.sub(G.mul(p['fa.lr']!.reshape([1, ps]))) as tf.Tensor2D;
      const lq = weightedBce(model.logits(p, t[names.length] as tf.Tensor3D, query, onehotQ.matMul(adapted) as tf.Tensor2D), yQ, wQ);
      if (support.n === 0 || supportWeight === 0) return lq;
      const thetaS = init.tile([support.n, 1]) as tf.Tensor2D;
      const ls = weightedBce(model.logits(p, t[names.length + 1] as tf.Tensor3D, support, thetaS), yS, wS);
      return ls.mul(supportWeight).add(lq.mul(1 - supportWeight)) as tf.Scalar;
    };
    const { value, grads } = tf.valueAndGrads(fn)([...names.map((n) => fixed[n]!), embQ, embS]);
    return [value, ...grads];
  });
  const [value, ...grads] = out;
  const gm = new Map<string, Float32Array>();
  names.forEach((n, i) => gm.set(n, grads[i]!.dataSync() as Float32Array));
  adam.apply(model.dense, gm);
  const idxQ = updatableIdx(query);
  const idxS = updatableIdx(support);
  const idx = new Int32Array(idxQ.length + idxS.length);
  idx.set(idxQ);
  idx.set(idxS, idxQ.length);
  const gq = grads[names.length]!.dataSync() as Float32Array;
  const gs = grads[names.length + 1]!.dataSync() as Float32Array;
  const gAll = new Float32Array(gq.length + gs.length);
  gAll.set(gq);
  gAll.set(gs, gq.length);
  model.table.applyGradients(idx, gAll);
  const loss = value!.dataSync()[0] ?? NaN;
  for (const t of out) t.dispose();
  return loss;
}

/**
 * One supervised step of the base phase on hot rows: every hot user has its own adaptive params
 * (a row of `userTable`, entity = hot user index); the trunk, the feature table and those rows train
 * together, as a plain model with per-user parameters would.
 */
export function fixedAdaptiveBaseStep(model: FixedAdaptive, b: RowBatch, userTable: EmbeddingTable, adam: DenseAdam): number {
  const names = model.fixedParams();
  const ps = model.adaptiveSize;
  const out = tf.tidy(() => {
    const fixed = model.dense.tensors(names);
    const emb = gatherEmb(model.table, b, model.slots);
    const theta = tf.tensor2d(userTable.gather(b.entity), [b.n, ps]);
    const y = tf.tensor1d(b.label);
    const w = tf.fill([b.n], 1 / b.n) as tf.Tensor1D;
    const fn = (...t: tf.Tensor[]): tf.Scalar => {
      const p: TensorMap = { ...fixed };
      names.forEach((n, i) => (p[n] = t[i]!));
      return weightedBce(model.logits(p, t[names.length] as tf.Tensor3D, b, t[names.length + 1] as tf.Tensor2D), y, w);
    };
    const { value, grads } = tf.valueAndGrads(fn)([...names.map((n) => fixed[n]!), emb, theta]);
    return [value, ...grads];
  });
  const [value, ...grads] = out;
  const gm = new Map<string, Float32Array>();
  names.forEach((n, i) => gm.set(n, grads[i]!.dataSync() as Float32Array));
  adam.apply(model.dense, gm);
  model.table.applyGradients(updatableIdx(b), grads[names.length]!.dataSync() as Float32Array);
  userTable.applyGradients(b.entity, grads[names.length + 1]!.dataSync() as Float32Array);
  const loss = value!.dataSync()[0] ?? NaN;
  for (const t of out) t.dispose();
  return loss;
}

export interface FixedAdaptiveTrainerOptions {
  /** Seed of initialisers and sampling. @default 7788 */
  seed?: number;
  /**
   * Supervised epochs over the hot rows before meta-training, each hot user with its own adaptive
   * params; the meta phase then starts `fa.init` at their mean. @default 2
   */
  baseEpochs?: number;
  /** Rows per base step. @default 256 */
  batchSize?: number;
  /** Epochs (each: one task per hot user). @default 40 */
  epochs?: number;
  /** Users per step. @default 16 */
  usersPerStep?: number;
  /** Support rows per task (the online warm batch size). @default 20 */
  supportRows?: number;
  /** Query rows per task. @default 20 */
  queryRows?: number;
  /** Adam learning rate of everything. @default 0.003 */
  lr?: number;
  /** Initial per-parameter inner learning rate. @default 0.3 */
  initLr?: number;
  /** Weight a of the support (cold) loss. @default 0.1 */
  supportWeight?: number;
  /** Embedding size D. @default 16 */
  dim?: number;
  logger?: Logger;
}

export async function trainFixedAdaptive(data: UserTrainData, opts: FixedAdaptiveTrainerOptions = {}): Promise<{ model: FixedAdaptive; examplesPerSec: number }> {
  const seed = opts.seed ?? 7788;
  const epochs = opts.epochs ?? 40;
  if (!Number.isInteger(epochs) || epochs < 0) throw new ConfigError('epochs', `must be a non-negative integer, got ${epochs}`);
  const perStep = Math.max(1, opts.usersPerStep ?? 16);
  const k = opts.supportRows ?? 20;
  const q = opts.queryRows ?? 20;
  if (!Number.isInteger(k) || k < 1 || !Number.isInteger(q) || q < 1) throw new ConfigError('supportRows', `support and query rows must be positive integers, got ${k}, ${q}`);
  const lr = opts.lr ?? 0.003;
  const a = opts.supportWeight ?? 0.1;
  if (!(a >= 0 && a < 1)) throw new ConfigError('supportWeight', `must be in [0, 1), got ${a}`);
  const logger = (opts.logger ?? silentLogger).child({ trainer: 'fixed-adaptive', seed });
  const model = new FixedAdaptive({ layout: data.layout, vocab: data.vocabSize, dim: opts.dim ?? 16, seed, tableLr: lr, initLr: opts.initLr ?? 0.3 });
  const baseEpochs = opts.baseEpochs ?? 2;
  if (!Number.isInteger(baseEpochs) || baseEpochs < 0) throw new ConfigError('baseEpochs', `must be a non-negative integer, got ${baseEpochs}`);
  const batchSize = Math.max(1, opts.batchSize ?? 256);
  const started = Date.now();
  let rows = 0;
  if (baseEpochs > 0) {
    const ps = model.adaptiveSize;
    const userTable = new EmbeddingTable({ rows: data.hotUserCount, dim: ps, lr });
    for (let u = 0; u < data.hotUserCount; u++) userTable.data.set(model.dense.get('fa.init').data, u * ps);
    const baseAdam = new DenseAdam(lr);
    for (let epoch = 0; epoch < baseEpochs; epoch++) {
      const rng = new Rng((seed * 1009 + epoch * 7919 + 5) >>> 0);
      const order = Int32Array.from({ length: data.hot.n }, (_, i) => i);
      rng.shuffle(order);
      const shuffled = selectRows(data.hot, order);
      let loss = 0;
      let steps = 0;
      for (let from = 0; from < shuffled.n; from += batchSize) {
        loss += fixedAdaptiveBaseStep(model, sliceBatch(shuffled, from, Math.min(shuffled.n, from + batchSize)), userTable, baseAdam);
        steps++;
      }
      rows += shuffled.n;
      logger.info('epoch done', { stage: 'base', epoch: epoch + 1, of: baseEpochs, loss: loss / Math.max(1, steps) });
      await new Promise((r) => setImmediate(r));
    }
    // The meta phase starts from the mean hot user: a good cold-start point for the init.
    const init = model.dense.get('fa.init').data;
    init.fill(0);
    for (let u = 0; u < data.hotUserCount; u++) for (let k = 0; k < ps; k++) init[k] = init[k]! + userTable.data[u * ps + k]! / data.hotUserCount;
  }
  const rowsOf = rowsByEntity(data.hot, data.hotUserCount);
  const users = rowsOf.map((r, u) => (r.length >= k + q ? u : -1)).filter((u) => u >= 0);
  const adam = new DenseAdam(lr);
  for (let epoch = 0; epoch < epochs; epoch++) {
    const rng = new Rng((seed * 1009 + epoch * 7919 + 3) >>> 0);
    const order = [...users];
    rng.shuffle(order);
    let loss = 0;
    let steps = 0;
    for (let from = 0; from < order.length; from += perStep) {
      const ep = sampleEpisodes(data.hot, rowsOf, order.slice(from, from + perStep), [k], q, rng);
      loss += fixedAdaptiveMetaStep(model, ep, adam, a);
      rows += ep.support.n + ep.query.n;
      steps++;
    }
    const lrs = model.dense.get('fa.lr').data;
    logger.info('epoch done', { stage: 'meta', epoch: epoch + 1, of: epochs, loss: loss / Math.max(1, steps), meanLr: lrs.reduce((x, y) => x + y, 0) / lrs.length });
    await new Promise((r) => setImmediate(r));
  }
  return { model, examplesPerSec: rows / Math.max((Date.now() - started) / 1000, 1e-9) };
}
