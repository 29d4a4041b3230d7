/**
 * Offline stage of the fixed/adaptive split, in two phases:
 * 1. base: the family's supervised trainer (trainers/meta-trainer.ts, kind deepfm) on the hot
 *    users' rows, each hot user with its own adaptive params (a row of the entity table); `fa.init`
 *    then starts at the mean hot user;
 * 2. meta: first-order Meta-SGD over episodic user tasks of the hot users, learning `fa.init` and
 *    the per-parameter learning rates `fa.lr` (and the fixed params too when `fixedLr` > 0; by
 *    default they stay as the base phase left them, see `fixedLr`):
 *      θ'_u = init − lr ⊙ g_u,   g_u = ∇θ L_support(u)(init)   (g_u held constant: first order;
 *      with `innerSteps` k > 1, g_u is the sum of the k steps' gradients along the inner trajectory)
 *      loss = a · L_support(init) + (1 − a) · L_query(θ'_u)     (a = 0.1: keeps init good cold)
 *    ∂loss/∂lr = −(1−a) · g_u ⊙ ∂L_query/∂θ' is exact under the first-order approximation, so the
 *    learning rates learn which adaptive parameters deserve large steps.
 * (The paper's second, online meta-training stage on streaming users is not implemented here.)
 * Checkpoints: the base phase is meta-trainer.ts's, in `<checkpointDir>/base`; every meta epoch
 * ends with an atomic `<checkpointDir>/checkpoint.bin` (backbone, init and rates, both Adam
 * states). Sampling is seeded per (seed, epoch), so a resumed run equals an uninterrupted one.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { pool, weightedBce } from '../models/ctr-model.js';
import { gatherEmb, oneHotRows, updatableIdx } from '../models/coldnas-common.js';
import type { DeepFm } from '../models/deepfm.js';
import { FixedAdaptive } from '../models/fixed-adaptive.js';
import { DenseAdam, type TensorMap } from '../models/params.js';
import { Rng } from '../models/rng.js';
import { rowsByEntity, sampleEpisodes, type EpisodeOrder, type Episodes, type UserTrainData } from './coldnas-trainer.js';
import { adamArrays, paramSetArrays, readCheckpoint, restoreAdam, restoreParamSet, restoreTable, tableArrays, writeCheckpoint } from './checkpoint.js';
import { trainMeta } from './meta-trainer.js';
import { at, defined } from '../lib/at.js';

function perUserWeights(ent: Int32Array, count: number): Float32Array {
  const c = new Float32Array(count);
  for (const e of ent) c[e] = (c[e] ?? 0) + 1;
  const users = c.filter((x) => x > 0).length;
  return Float32Array.from(ent, (e) => 1 / ((c[e] ?? 0) * Math.max(1, users)));
}

/**
 * One first-order Meta-SGD step over many user tasks at once. `adam` updates the backbone's dense
 * params (when `trainFixed`), `metaAdam` the init and rates. Returns the outer loss.
 */
export function fixedAdaptiveMetaStep(
  model: FixedAdaptive,
  ep: Episodes,
  adam: DenseAdam,
  metaAdam: DenseAdam,
  opts: { supportWeight?: number; trainFixed?: boolean; innerSteps?: number } = {},
): number {
  const { support, query, count } = ep;
  const a = opts.supportWeight ?? 0.1;
  const trainFixed = opts.trainFixed ?? true;
  const bb: DeepFm = model.backbone;
  const ps = model.adaptiveSize;
  const s = model.slots;
  // k inner steps; first order: θ'_u = init − lr ⊙ Σ_j g_u,j with the step gradients g_u,j held constant.
  const g = new Float32Array(count * ps);
  const users = model.initUsers(count);
  const lrs = model.meta.get('fa.lr').data;
  for (let step = 0; step < (opts.innerSteps ?? 1); step++) {
    const gj = model.userGradients(support, users, count).grads;
    for (let i = 0; i < gj.length; i++) {
      g[i] = (g[i] ?? 0) + (gj[i] ?? 0);
      users[i] = (users[i] ?? 0) - (lrs[i % ps] ?? 0) * (gj[i] ?? 0);
    }
  }
  const names = trainFixed ? bb.dense.names() : [];
  const metaNames = ['fa.init', 'fa.lr'];
  const withS = support.n > 0 && a > 0;
  const out = tf.tidy(() => {
    const fixed: TensorMap = { ...bb.dense.tensors(), ...model.meta.tensors() };
    const pm = bb.poolingTensor();
    const embQ = gatherEmb(bb.table, query, s);
    const embS = gatherEmb(bb.table, support, s);
    const fwQ = tf.tensor2d(query.featW, [query.n, s]);
    const fwS = tf.tensor2d(support.featW, [support.n, s]);
    const yS = tf.tensor1d(support.label);
    const yQ = tf.tensor1d(query.label);
    const wS = tf.tensor1d(perUserWeights(support.entity, count));
    const wQ = tf.tensor1d(perUserWeights(query.entity, count));
    const G = tf.tensor2d(g, [count, ps]);
    const onehotQ = tf.tensor2d(oneHotRows(query.entity, count), [query.n, count]);
    const all = [...names, ...metaNames];
    const fn = (...t: tf.Tensor[]): tf.Scalar => {
      const p: TensorMap = { ...fixed };
      all.forEach((n, i) => (p[n] = at(t, i, 't')));
      const init = defined(p['fa.init'], "p['fa.init']").reshape([1, ps]);
      const adapted = init.sub<tf.Tensor2D>(G.mul(defined(p['fa.lr'], "p['fa.lr']").reshape([1, ps])));
      const idQ = onehotQ.matMul(adapted) as tf.Tensor2D;
      const lq = weightedBce(bb.head(p, { pooled: pool(t[all.length] as tf.Tensor3D, fwQ, pm), id: idQ }), yQ, wQ);
      if (!withS) return lq;
      const idS = init.tile<tf.Tensor2D>([support.n, 1]);
      const ls = weightedBce(bb.head(p, { pooled: pool(t[all.length + 1] as tf.Tensor3D, fwS, pm), id: idS }), yS, wS);
      return ls.mul(a).add<tf.Scalar>(lq.mul(1 - a));
    };
    const xs = [...all.map((n) => defined(fixed[n], 'fixed[n]')), embQ, ...(withS ? [embS] : [])];
    const { value, grads } = tf.valueAndGrads(fn)(xs);
    return [value, ...grads];
  });
  const [value, ...grads] = out;
  const toMap = (ns: string[], offset: number): Map<string, Float32Array> => {
    const m = new Map<string, Float32Array>();
    ns.forEach((n, i) => m.set(n, at(grads, offset + i, 'grads').dataSync() as Float32Array));
    return m;
  };
  if (trainFixed) adam.apply(bb.dense, toMap(names, 0));
  metaAdam.apply(model.meta, toMap(metaNames, names.length));
  if (trainFixed) {
    const k = names.length + metaNames.length;
    const idxQ = updatableIdx(query);
    const idxS = withS ? updatableIdx(support) : new Int32Array(0);
    const gq = at(grads, k, 'grads').dataSync() as Float32Array;
    const gs = withS ? (at(grads, k + 1, 'grads').dataSync() as Float32Array) : new Float32Array(0);
    const idx = new Int32Array(idxQ.length + idxS.length);
    idx.set(idxQ);
    idx.set(idxS, idxQ.length);
    const gAll = new Float32Array(gq.length + gs.length);
    gAll.set(gq);
    gAll.set(gs, gq.length);
    bb.table.applyGradients(idx, gAll);
  }
  const loss = defined(value, 'value').dataSync()[0] ?? NaN;
  for (const t of out) t.dispose();
  return loss;
}

export interface FixedAdaptiveTrainerOptions {
  /** Seed of initialisers and sampling. @default 7788 */
  seed?: number;
  /** Supervised epochs of the base phase over the hot rows. @default 3 */
  baseEpochs?: number;
  /** Epochs of the meta phase (each: one task per hot user). @default 40 */
  epochs?: number;
  /** Users per meta step. @default 16 */
  usersPerStep?: number;
  /** Support rows per task (the online warm batch size). @default 20 */
  supportRows?: number;
  /** Query rows per task. @default 20 */
  queryRows?: number;
  /** How tasks draw support and query rows (see EpisodeOrder in coldnas-trainer.ts). @default 'random' */
  episodeOrder?: EpisodeOrder;
  /** Adam learning rate of the base phase. @default 0.005 */
  lr?: number;
  /**
   * Adam learning rate of the fixed params (dense and table) in the meta phase; 0 freezes them after
   * the base phase. The table used to keep the base phase's rate here whatever this said, which
   * explains at least part of the former "0.0005 overfits" (measured on test rows); since that fix,
   * 1e-4 ties 0 on validation users (evaluation/README.md, user side), hence 0. @default 0
   */
  fixedLr?: number;
  /** Adam learning rate of `fa.init` and `fa.lr`. @default 0.01 */
  metaLr?: number;
  /** Initial per-parameter inner learning rate. @default 0.3 */
  initLr?: number;
  /**
   * Where `fa.init` starts the meta phase: 'mean' = the mean hot user of the base phase, 'zero' =
   * all zeros (a user with no ID signal, as fine-tuning's near-zero random start). @default 'mean'
   */
  initFrom?: 'mean' | 'zero';
  /** Weight a of the support (cold) loss. @default 0.1 */
  supportWeight?: number;
  /** Inner Meta-SGD steps per task (use the warm-up's steps per batch). @default 1 */
  innerSteps?: number;
  /** Embedding size D. @default 16 */
  dim?: number;
  /** Directory for checkpoints (base phase in `base/`, meta phase in checkpoint.bin); none when unset. */
  checkpointDir?: string;
  /** Continue from the checkpoints in checkpointDir when present. @default false */
  resume?: boolean;
  /** Stop after this many epochs (base and meta counted together) in this call (to test resume); unset = run to the end. */
  stopAfterEpochs?: number;
  logger?: Logger;
}

export interface FixedAdaptiveTrainResult {
  model: FixedAdaptive;
  /** Epochs done so far, base and meta together (below the total only with stopAfterEpochs). */
  epochsDone: number;
  examplesPerSec: number;
}

export async function trainFixedAdaptive(data: UserTrainData, opts: FixedAdaptiveTrainerOptions = {}): Promise<FixedAdaptiveTrainResult> {
  const seed = opts.seed ?? 7788;
  const epochs = opts.epochs ?? 40;
  if (!Number.isInteger(epochs) || epochs < 0) throw new ConfigError('epochs', `must be a non-negative integer, got ${epochs}`);
  const baseEpochs = opts.baseEpochs ?? 3;
  if (!Number.isInteger(baseEpochs) || baseEpochs < 0) throw new ConfigError('baseEpochs', `must be a non-negative integer, got ${baseEpochs}`);
  const perStep = Math.max(1, opts.usersPerStep ?? 16);
  const k = opts.supportRows ?? 20;
  const q = opts.queryRows ?? 20;
  if (!Number.isInteger(k) || k < 1 || !Number.isInteger(q) || q < 1) throw new ConfigError('supportRows', `support and query rows must be positive integers, got ${k}, ${q}`);
  const fixedLr = opts.fixedLr ?? 0;
  const a = opts.supportWeight ?? 0.1;
  const innerSteps = opts.innerSteps ?? 1;
  if (!Number.isInteger(innerSteps) || innerSteps < 1) throw new ConfigError('innerSteps', `must be a positive integer, got ${innerSteps}`);
  if (!(a >= 0 && a < 1)) throw new ConfigError('supportWeight', `must be in [0, 1), got ${a}`);
  const stop = opts.stopAfterEpochs;
  if (stop !== undefined && !(Number.isInteger(stop) && stop >= 0)) throw new ConfigError('stopAfterEpochs', `must be a non-negative integer, got ${stop}`);
  const logger = (opts.logger ?? silentLogger).child({ trainer: 'fixed-adaptive', seed });
  const started = Date.now();
  const dir = opts.checkpointDir;
  const resume = opts.resume === true && dir !== undefined;
  const baseDir = dir === undefined ? undefined : path.join(dir, 'base');
  const ck = resume ? readCheckpoint(dir) : undefined;
  if (ck !== undefined && (ck.meta.trainer !== 'fixed-adaptive' || ck.meta.seed !== seed)) {
    throw new ThawError('STATE_CORRUPT', `checkpoint is for ${String(ck.meta.trainer)} seed ${String(ck.meta.seed)}, not fixed-adaptive seed ${seed}`);
  }
  // Epochs done before this call: the meta checkpoint's count, else the base checkpoint's.
  const baseCk = resume && ck === undefined && baseDir !== undefined ? readCheckpoint(baseDir) : undefined;
  const before = ck !== undefined ? Number(ck.meta.done) : Number(baseCk?.meta.epoch ?? 0);
  const total = baseEpochs + epochs;
  const last = stop === undefined ? total : Math.min(total, before + stop);
  // The base phase: resumed from its own checkpoint (a finished one just loads).
  const base = await trainMeta(
    { layout: data.layout, vocabSize: data.vocabSize, hot: data.hot, hotItemCount: data.hotUserCount },
    {
      kind: 'deepfm',
      seed,
      baseEpochs,
      lr: opts.lr ?? 0.005,
      dim: opts.dim ?? 16,
      logger,
      ...(baseDir === undefined ? {} : { checkpointDir: baseDir, resume }),
      stopAfterEpochs: Math.max(0, Math.min(baseEpochs, last) - Math.min(before, baseEpochs)),
    },
  );
  const model = new FixedAdaptive({ layout: data.layout, vocab: data.vocabSize, backbone: base.model as DeepFm, initLr: opts.initLr ?? 0.3 });
  let rows = (base.epochsDone - Math.min(before, baseEpochs)) * data.hot.n;
  const result = (done: number): FixedAdaptiveTrainResult => ({ model, epochsDone: done, examplesPerSec: rows / Math.max((Date.now() - started) / 1000, 1e-9) });
  if (base.epochsDone < baseEpochs) {
    if (ck !== undefined) throw new ThawError('STATE_CORRUPT', `${dir}: a meta-phase checkpoint but the base phase's in ${baseDir} is missing or incomplete`);
    return result(base.epochsDone);
  }
  const ps = model.adaptiveSize;
  if (baseEpochs > 0 && (opts.initFrom ?? 'mean') === 'mean') {
    // The meta phase starts from the mean hot user: a better cold start than a random row.
    const init = model.meta.get('fa.init').data;
    const t = base.idTable.data;
    for (let u = 0; u < data.hotUserCount; u++) for (let j = 0; j < ps; j++) init[j] = (init[j] ?? 0) + (t[u * ps + j] ?? 0) / data.hotUserCount;
  }
  const rowsOf = rowsByEntity(data.hot, data.hotUserCount);
  const users = rowsOf.map((r, u) => (r.length >= k + q ? u : -1)).filter((u) => u >= 0);
  const adam = new DenseAdam(Math.max(fixedLr, 1e-12));
  const metaAdam = new DenseAdam(opts.metaLr ?? 0.01);
  const bb = model.backbone;
  let epoch = 0;
  if (ck !== undefined) {
    restoreParamSet('dense', bb.dense, ck.arrays);
    restoreTable('table', bb.table, ck.arrays);
    restoreParamSet('meta', model.meta, ck.arrays);
    restoreAdam('adam', adam, ck.arrays);
    restoreAdam('metaAdam', metaAdam, ck.arrays);
    epoch = Number(ck.meta.done) - baseEpochs;
    logger.info('resumed from checkpoint', { epoch: Number(ck.meta.done) });
  }
  const save = (): void => {
    if (dir === undefined) return;
    const arrays = new Map<string, Float32Array>();
    paramSetArrays('dense', bb.dense, arrays);
    tableArrays('table', bb.table, arrays);
    paramSetArrays('meta', model.meta, arrays);
    adamArrays('adam', adam, arrays);
    adamArrays('metaAdam', metaAdam, arrays);
    writeCheckpoint(dir, { meta: { trainer: 'fixed-adaptive', seed, done: baseEpochs + epoch, baseEpochs, epochs }, arrays });
  };
  // The meta phase trains the table at fixedLr too (it would otherwise keep the base phase's rate,
  // 50x the default fixedLr, and overfit the episodes); the base rate is restored afterwards.
  const baseTableLr = bb.table.lr;
  if (fixedLr > 0) bb.table.lr = fixedLr;
  for (; epoch < last - baseEpochs;) {
    const rng = new Rng((seed * 1009 + epoch * 7919 + 3) >>> 0);
    const order = [...users];
    rng.shuffle(order);
    let loss = 0;
    let steps = 0;
    for (let from = 0; from < order.length; from += perStep) {
      const ep = sampleEpisodes(data.hot, rowsOf, order.slice(from, from + perStep), [k], q, rng, opts.episodeOrder ?? 'random');
      loss += fixedAdaptiveMetaStep(model, ep, adam, metaAdam, { supportWeight: a, trainFixed: fixedLr > 0, innerSteps });
      rows += ep.support.n + ep.query.n;
      steps++;
    }
    epoch++;
    const lrs = model.meta.get('fa.lr').data;
    logger.info('epoch done', { stage: 'meta', epoch, of: epochs, loss: loss / Math.max(1, steps), meanLr: lrs.reduce((x, y) => x + y, 0) / lrs.length });
    save();
    await new Promise((r) => setImmediate(r));
  }
  bb.table.lr = baseTableLr;
  return result(baseEpochs + epoch);
}
