/**
 * Offline training of the item cold-start models on hot items:
 * 1. base: supervised epochs on hot rows (DeepFM; EmerG with its graph generated per item, so the
 *    graph hypernetwork learns from the start), item-ID embeddings in a sparse table;
 * 2. meta (metaemb, emerg): episodic epochs, one task per hot item per epoch (K support rows, K
 *    query rows sampled from its rows), many tasks per step, first-order inner SGD on the item
 *    params only, outer Adam on the shared params with loss 0.1·support + 0.9·query. Meta-Embedding
 *    trains only its generator (backbone frozen, as in the paper); so does EmerG by default (its
 *    graph and ID hypernetworks): the official code meta-trains everything, but on validation
 *    items that lost ~0.005 warm-phase AUC to the backbone's drift (evaluation/README.md).
 * Every epoch ends with an atomic checkpoint; `resume` continues after the last one, and since each
 * epoch's sampling is seeded by (seed, epoch) a resumed run equals an uninterrupted one.
 */
import { ConfigError, ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { CtrModel, FieldLayout, RowBatch } from '../models/ctr-model.js';
import { selectRows, sliceBatch } from '../models/ctr-model.js';
import { DeepFm } from '../models/deepfm.js';
import { EmbeddingTable } from '../models/embedding-table.js';
import { Emerg } from '../models/emerg.js';
import { idGeneratorParams } from '../models/meta-embedding.js';
import { DenseAdam } from '../models/params.js';
import { Rng } from '../models/rng.js';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { Progress } from './progress.js';
import { metaStep, supervisedStep } from './steps.js';
import { at } from '../lib/at.js';

export type TrainKind = 'deepfm' | 'metaemb' | 'emerg';

export interface MetaTrainerOptions {
  kind: TrainKind;
  /** Seed of initialisers and sampling. @default 7788 */
  seed?: number;
  /** Supervised epochs over the hot rows. @default 5 */
  baseEpochs?: number;
  /** Episodic epochs (one task per hot item each); ignored for deepfm. @default 30 */
  metaEpochs?: number;
  /** Rows per supervised step. @default 256 */
  batchSize?: number;
  /** Adam learning rate of dense params and tables in the base phase. @default 0.005 */
  lr?: number;
  /** Outer Adam learning rate of the meta phase. @default 0.001 */
  metaLr?: number;
  /** Inner SGD learning rate on item params (use the same at warm-up). @default 0.1 */
  innerLr?: number;
  /** Inner learning rate of EmerG's item graph as a multiple of innerLr. @default 1 */
  graphLrScale?: number;
  /** Inner SGD steps per task. @default 1 */
  innerSteps?: number;
  /**
   * What EmerG's episodic phase trains: 'all' (backbone, table and hypernetworks, as the official
   * code) or 'generators' (the hypernetworks only, backbone frozen as Meta-Embedding's; better on
   * validation items). @default 'generators'
   */
  emergMetaScope?: 'all' | 'generators';
  /** EmerG's readout tokens (EmergOptions.readout). @default 'layers' */
  emergReadout?: 'layers' | 'fields';
  /** Tasks (items) per meta-step. @default 16 */
  tasksPerStep?: number;
  /** Support and query rows per task. @default 20 */
  k?: number;
  /** L2 weight decay of dense Adam. @default 0 */
  weightDecay?: number;
  /** Embedding size D. @default 16 */
  dim?: number;
  /** Directory for checkpoint.bin; none when unset. */
  checkpointDir?: string;
  /** Continue from the checkpoint in checkpointDir when present. @default false */
  resume?: boolean;
  /** Stop after this many epochs in this call (to test resume); unset = run to the end. */
  stopAfterEpochs?: number;
  logger?: Logger;
}

export interface TrainData {
  layout: FieldLayout;
  vocabSize: number;
  /** Hot rows; entity = hot item index. */
  hot: RowBatch;
  hotItemCount: number;
}

export interface TrainResult {
  model: CtrModel;
  /** Hot items' ID embeddings. */
  idTable: EmbeddingTable;
  epochsDone: number;
  /** Training rows per second over the epochs run in this call (base + meta rows). */
  examplesPerSec: number;
}

function positive(key: string, v: number, integer = false): number {
  if (!Number.isFinite(v) || v < 0 || (integer && !Number.isInteger(v))) throw new ConfigError(key, `must be a non-negative ${integer ? 'integer' : 'number'}, got ${v}`);
  return v;
}

function tableArrays(prefix: string, t: EmbeddingTable, out: Map<string, Float32Array>): void {
  out.set(`${prefix}.data`, t.data);
  out.set(`${prefix}.slot1`, t.slot1);
  out.set(`${prefix}.slot2`, t.slot2);
  out.set(`${prefix}.step`, Float32Array.of(t.step));
}

function restoreTable(prefix: string, t: EmbeddingTable, a: Map<string, Float32Array>): void {
  for (const [k, dst] of [
    ['data', t.data],
    ['slot1', t.slot1],
    ['slot2', t.slot2],
  ] as const) {
    const src = a.get(`${prefix}.${k}`);
    if (src === undefined || src.length !== dst.length) throw new ThawError('STATE_CORRUPT', `checkpoint lacks ${prefix}.${k} of length ${dst.length}`);
    dst.set(src);
  }
  t.step = a.get(`${prefix}.step`)?.[0] ?? 0;
}

function adamArrays(prefix: string, o: DenseAdam, out: Map<string, Float32Array>): void {
  out.set(`${prefix}.step`, Float32Array.of(o.step));
  for (const [n, m] of o.m) out.set(`${prefix}.m.${n}`, m);
  for (const [n, v] of o.v) out.set(`${prefix}.v.${n}`, v);
}

function restoreAdam(prefix: string, o: DenseAdam, a: Map<string, Float32Array>): void {
  o.step = a.get(`${prefix}.step`)?.[0] ?? 0;
  for (const [k, src] of a) {
    if (k.startsWith(`${prefix}.m.`)) o.m.set(k.slice(prefix.length + 3), src.slice());
    else if (k.startsWith(`${prefix}.v.`)) o.v.set(k.slice(prefix.length + 3), src.slice());
  }
}

export function createModel(kind: TrainKind, data: TrainData, seed: number, dim: number, lr: number, readout?: 'layers' | 'fields'): CtrModel {
  if (kind === 'emerg') return new Emerg({ layout: data.layout, vocab: data.vocabSize, dim, seed, tableLr: lr, ...(readout === undefined ? {} : { readout }) });
  return new DeepFm({ layout: data.layout, vocab: data.vocabSize, dim, seed, tableLr: lr, withGenerator: kind === 'metaemb' });
}

export async function trainMeta(data: TrainData, opts: MetaTrainerOptions): Promise<TrainResult> {
  const seed = opts.seed ?? 7788;
  const baseEpochs = positive('baseEpochs', opts.baseEpochs ?? 5, true);
  const metaEpochs = opts.kind === 'deepfm' ? 0 : positive('metaEpochs', opts.metaEpochs ?? 30, true);
  const batchSize = positive('batchSize', opts.batchSize ?? 256, true);
  const lr = positive('lr', opts.lr ?? 0.005);
  const metaLr = positive('metaLr', opts.metaLr ?? 0.001);
  const innerLr = positive('innerLr', opts.innerLr ?? 0.1);
  const innerSteps = positive('innerSteps', opts.innerSteps ?? 1, true);
  const tasksPerStep = Math.max(1, positive('tasksPerStep', opts.tasksPerStep ?? 16, true));
  const k = Math.max(1, positive('k', opts.k ?? 20, true));
  const dim = Math.max(1, positive('dim', opts.dim ?? 16, true));
  const wd = positive('weightDecay', opts.weightDecay ?? 0);
  const logger = (opts.logger ?? silentLogger).child({ trainer: opts.kind, seed });

  const model = createModel(opts.kind, data, seed, dim, lr, opts.emergReadout);
  const idTable = new EmbeddingTable({ rows: data.hotItemCount, dim: model.width, lr }).init(new Rng(seed + 1), 0.01);
  const baseAdam = new DenseAdam(lr, wd);
  const metaAdam = new DenseAdam(metaLr, wd);
  let epoch = 0;
  if (opts.resume === true && opts.checkpointDir !== undefined) {
    const ck = readCheckpoint(opts.checkpointDir);
    if (ck !== undefined) {
      if (ck.meta.kind !== opts.kind || ck.meta.seed !== seed) {
        throw new ThawError('STATE_CORRUPT', `checkpoint is for ${String(ck.meta.kind)} seed ${String(ck.meta.seed)}, not ${opts.kind} seed ${seed}`);
      }
      for (const name of model.dense.names()) {
        const src = ck.arrays.get(`dense.${name}`);
        const dst = model.dense.get(name).data;
        if (src === undefined || src.length !== dst.length) throw new ThawError('STATE_CORRUPT', `checkpoint lacks dense.${name}`);
        dst.set(src);
      }
      restoreTable('table', model.table, ck.arrays);
      restoreTable('ids', idTable, ck.arrays);
      restoreAdam('baseAdam', baseAdam, ck.arrays);
      restoreAdam('metaAdam', metaAdam, ck.arrays);
      epoch = Number(ck.meta.epoch);
      logger.info('resumed from checkpoint', { epoch });
    }
  }
  const save = (): void => {
    if (opts.checkpointDir === undefined) return;
    const arrays = new Map<string, Float32Array>();
    for (const name of model.dense.names()) arrays.set(`dense.${name}`, model.dense.get(name).data);
    tableArrays('table', model.table, arrays);
    tableArrays('ids', idTable, arrays);
    adamArrays('baseAdam', baseAdam, arrays);
    adamArrays('metaAdam', metaAdam, arrays);
    writeCheckpoint(opts.checkpointDir, { meta: { kind: opts.kind, seed, epoch, baseEpochs, metaEpochs }, arrays });
  };

  const gen = new Set(model.generatorParams());
  const idGen = new Set(idGeneratorParams());
  // Base phase: the ID generator is not used (hot items have their own embeddings); EmerG's graph generator is.
  const baseTrainable = model.dense.names().filter((n) => (opts.kind === 'emerg' ? !idGen.has(n) : !gen.has(n)));
  const emergAll = (opts.emergMetaScope ?? 'generators') === 'all';
  const metaTrainable = opts.kind !== 'emerg' ? idGeneratorParams() : emergAll ? model.dense.names() : model.generatorParams();
  const totalEpochs = baseEpochs + metaEpochs;
  const lastEpoch = opts.stopAfterEpochs === undefined ? totalEpochs : Math.min(totalEpochs, epoch + opts.stopAfterEpochs);
  // Rows of each hot item, for sampling tasks.
  const rowsOf: number[][] = Array.from({ length: data.hotItemCount }, () => []);
  for (let i = 0; i < data.hot.n; i++) at(rowsOf, data.hot.entity[i] ?? 0, 'rowsOf').push(i);
  const eligible = rowsOf.map((r, e) => (r.length >= 2 * k ? e : -1)).filter((e) => e >= 0);
  const rowsPerEpoch = (e: number): number => (e < baseEpochs ? data.hot.n : eligible.length * 2 * k);
  let total = 0;
  for (let e = epoch; e < lastEpoch; e++) total += rowsPerEpoch(e);
  const progress = new Progress(logger, 'training', total);
  let rows = 0;
  const started = Date.now();
  for (; epoch < lastEpoch;) {
    const rng = new Rng((seed * 1009 + epoch * 7919) >>> 0);
    let lossSum = 0;
    let steps = 0;
    if (epoch < baseEpochs) {
      const order = Int32Array.from({ length: data.hot.n }, (_, i) => i);
      rng.shuffle(order);
      const shuffled = selectRows(data.hot, order);
      for (let from = 0; from < shuffled.n; from += batchSize) {
        const b = sliceBatch(shuffled, from, Math.min(shuffled.n, from + batchSize));
        lossSum += supervisedStep(model, b, idTable, baseAdam, { trainable: baseTrainable, trainTable: true });
        steps++;
        progress.tick(b.n, { epoch, phase: 'base' });
        rows += b.n;
      }
    } else {
      const items = [...eligible];
      rng.shuffle(items);
      for (let from = 0; from < items.length; from += tasksPerStep) {
        const group = items.slice(from, from + tasksPerStep);
        const sRows: number[] = [];
        const qRows: number[] = [];
        const sEnt: number[] = [];
        const qEnt: number[] = [];
        group.forEach((item, local) => {
          const r = [...at(rowsOf, item, 'rowsOf')];
          // Partial Fisher–Yates: 2k distinct rows of the item.
          for (let i = 0; i < 2 * k; i++) {
            const j = i + rng.int(r.length - i);
            [r[i], r[j]] = [at(r, j, 'r'), at(r, i, 'r')];
          }
          for (let i = 0; i < k; i++) {
            sRows.push(at(r, i, 'r'));
            sEnt.push(local);
            qRows.push(at(r, k + i, 'r'));
            qEnt.push(local);
          }
        });
        const support = { ...selectRows(data.hot, sRows), entity: Int32Array.from(sEnt) };
        const query = { ...selectRows(data.hot, qRows), entity: Int32Array.from(qEnt) };
        const res = metaStep(model, support, query, group.length, metaAdam, {
          trainable: metaTrainable,
          trainTable: opts.kind === 'emerg' && emergAll,
          innerLr,
          innerSteps,
          graphLrScale: opts.graphLrScale ?? 1,
        });
        lossSum += res.loss;
        steps++;
        progress.tick(support.n + query.n, { epoch, phase: 'meta' });
        rows += support.n + query.n;
      }
    }
    epoch++;
    logger.info('epoch done', { epoch, of: totalEpochs, loss: lossSum / Math.max(1, steps) });
    save();
    // Let the event loop breathe between epochs (signals, logs).
    await new Promise((r) => setImmediate(r));
  }
  const sec = (Date.now() - started) / 1000;
  return { model, idTable, epochsDone: epoch, examplesPerSec: rows / Math.max(sec, 1e-9) };
}
