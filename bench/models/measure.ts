/**
 * The measurements of the model benchmark, each time-bounded (a step cap and a seconds cap, the
 * first one reached ends it) after untimed warm-up steps, so a slow backend cannot blow the budget.
 * All take data from bench/models/fixtures.ts and models built here with the library's defaults.
 */
import * as tf from '@tensorflow/tfjs';
import type { CtrModel, EntityParams, RowBatch } from '../../models/ctr-model.js';
import { gatherRows, selectRows, sliceBatch } from '../../models/ctr-model.js';
import { ColdNas, userStateUpdate, type ColdNasUserState } from '../../models/coldnas.js';
import { DeepFm } from '../../models/deepfm.js';
import { EmbeddingTable } from '../../models/embedding-table.js';
import { Emerg } from '../../models/emerg.js';
import { FixedAdaptive } from '../../models/fixed-adaptive.js';
import { idGeneratorParams } from '../../models/meta-embedding.js';
import { bundleCtr, bundleUser, ONNX_FILE } from '../../models/onnx/bundle.js';
import { DenseAdam } from '../../models/params.js';
import { metaStep, supervisedStep } from '../../trainers/steps.js';
import { OnnxRunner, type FeedTensor } from '../../serving/onnx-runner.js';
import type { BenchData } from './fixtures.js';
import { at as atIndex, defined } from '../../lib/at.js';

export interface Budget {
  /** Step cap. */
  steps: number;
  /** Seconds cap. */
  seconds: number;
  /** Untimed steps first (JIT, kernel compilation, allocator). */
  warmup: number;
}

export interface Rate {
  steps: number;
  seconds: number;
  /** Examples (rows, events) processed per second. */
  perSec: number;
}

/** Runs `step` (returning the examples it processed) `warmup` times untimed, then until a cap. */
export async function timed(budget: Budget, step: () => number | Promise<number>): Promise<Rate> {
  for (let i = 0; i < budget.warmup; i++) await step();
  let rows = 0;
  let steps = 0;
  const t0 = process.hrtime.bigint();
  let sec = 0;
  while (steps < budget.steps && sec < budget.seconds) {
    rows += await step();
    steps++;
    sec = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  return { steps, seconds: sec, perSec: rows / Math.max(sec, 1e-9) };
}

export type CtrKind = 'deepfm' | 'metaemb' | 'emerg';
export type ModelName = CtrKind | 'coldnas' | 'fixed-adaptive';

export function makeCtr(kind: CtrKind, d: BenchData): DeepFm | Emerg {
  return kind === 'emerg' ? new Emerg({ layout: d.layout, vocab: d.vocabSize }) : new DeepFm({ layout: d.layout, vocab: d.vocabSize, withGenerator: kind === 'metaemb' });
}

/** Base (supervised) training rows/s, batches of 256 as trainers/meta-trainer.ts. */
export async function trainSupervised(kind: 'deepfm' | 'emerg', d: BenchData, budget: Budget): Promise<Rate> {
  const model = makeCtr(kind, d);
  const idTable = new EmbeddingTable({ rows: d.hotItems, dim: model.width, lr: 0.005 });
  const adam = new DenseAdam(0.005);
  const idGen = new Set(idGeneratorParams());
  const trainable = model.dense.names().filter((n) => !idGen.has(n));
  let from = 0;
  return timed(budget, () => {
    if (from + 256 > d.train.n) from = 0;
    const b = sliceBatch(d.train, from, from + 256);
    from += 256;
    supervisedStep(model, b, idTable, adam, { trainable, trainTable: true });
    return b.n;
  });
}

/** Episodic meta-training rows/s: 16 tasks × (20 support + 20 query) rows per step, as the meta phase. */
export async function trainMetaSteps(kind: 'metaemb' | 'emerg', d: BenchData, budget: Budget): Promise<Rate> {
  const model = makeCtr(kind, d);
  const adam = new DenseAdam(0.001);
  const trainable = kind === 'emerg' ? model.dense.names() : idGeneratorParams();
  // Rows grouped by hot item, so tasks can take 20 + 20 rows of one item.
  const byItem = Array.from({ length: d.hotItems }, () => [] as number[]);
  for (let i = 0; i < d.train.n; i++) atIndex(byItem, d.train.entity[i] ?? 0).push(i);
  const items = byItem.map((r, e) => ({ r, e })).filter((x) => x.r.length >= 40);
  let at = 0;
  return timed(budget, () => {
    const sRows: number[] = [];
    const qRows: number[] = [];
    const sEnt: number[] = [];
    const qEnt: number[] = [];
    for (let t = 0; t < 16; t++) {
      const it = atIndex(items, at++ % items.length);
      it.r.slice(0, 20).forEach((r) => (sRows.push(r), sEnt.push(t)));
      it.r.slice(20, 40).forEach((r) => (qRows.push(r), qEnt.push(t)));
    }
    const support = { ...selectRows(d.train, sRows), entity: Int32Array.from(sEnt) };
    const query = { ...selectRows(d.train, qRows), entity: Int32Array.from(qEnt) };
    metaStep(model, support, query, 16, adam, { trainable, trainTable: kind === 'emerg', innerLr: 0.3 });
    return support.n + query.n;
  });
}

/** `size`-event micro-batches of the adapt rows, entities renumbered 0..count-1 as a worker gathers them. */
export function microBatches(rows: RowBatch, size: number): { batch: RowBatch; count: number }[] {
  const out: { batch: RowBatch; count: number }[] = [];
  for (let from = 0; from + size <= rows.n; from += size) {
    const part = sliceBatch(rows, from, from + size);
    const local = new Map<number, number>();
    const entity = new Int32Array(size);
    for (let i = 0; i < size; i++) {
      const e = part.entity[i] ?? 0;
      let l = local.get(e);
      if (l === undefined) local.set(e, (l = local.size));
      entity[i] = l;
    }
    out.push({ batch: { ...part, entity }, count: local.size });
  }
  return out;
}

export interface AdaptRate extends Rate {
  /** Distinct entities per second (entities per micro-batch × batches / s). */
  entitiesPerSec: number;
  entitiesPerBatch: number;
}

async function adaptLoop(mbs: { batch: RowBatch; count: number }[], budget: Budget, step: (mb: { batch: RowBatch; count: number }) => void): Promise<AdaptRate> {
  let k = 0;
  const r = await timed(budget, () => {
    const mb = atIndex(mbs, k++ % mbs.length);
    step(mb);
    return mb.batch.n;
  });
  // Every micro-batch has the same number of events; entities/s = batches/s × mean entities per batch.
  const perBatch = mbs.reduce((a, m) => a + m.count, 0) / mbs.length;
  return { ...r, entitiesPerSec: (r.perSec / (mbs[0]?.batch.n ?? 1)) * perBatch, entitiesPerBatch: perBatch };
}

/** Per-entity params of `count` entities, small random values (the adapt step's cost does not depend on them). */
function entityParams(model: CtrModel, count: number): EntityParams {
  const idEmb = new Float32Array(count * model.width).map(() => (Math.random() - 0.5) * 0.02);
  const graph = new Float32Array(count * model.graphSize).fill(1 / Math.max(1, model.numFields));
  return { count, idEmb, graph };
}

/** One batched `adaptStep` per micro-batch (graph too for EmerG), as the item adapters run it. */
export async function adaptCtr(kind: CtrKind, d: BenchData, mbs: { batch: RowBatch; count: number }[], budget: Budget): Promise<AdaptRate> {
  const model = makeCtr(kind, d);
  return adaptLoop(mbs, budget, (mb) => {
    model.adaptStep(mb.batch, entityParams(model, mb.count), 0.3, { graph: kind === 'emerg' });
  });
}

export function makeColdNas(d: BenchData): ColdNas {
  return new ColdNas({ layout: d.layout, vocab: d.vocabSize, structure: { ops: ['multiply', 'add', 'multiply', 'add'] } });
}

/** ColdNAS: one batched forward of the interaction encoder, then the O(C) running-mean update per event. */
export async function adaptColdNas(d: BenchData, mbs: { batch: RowBatch; count: number }[], budget: Budget): Promise<AdaptRate> {
  const model = makeColdNas(d);
  const c = model.contextDim;
  return adaptLoop(mbs, budget, (mb) => {
    const enc = model.encodeInteractions(mb.batch);
    const states: ColdNasUserState[] = Array.from({ length: mb.count }, () => model.emptyState());
    for (let i = 0; i < mb.batch.n; i++) {
      const e = mb.batch.entity[i] ?? 0;
      const prev = states[e]; // an inline check, not a call: this loop is what the row times
      if (prev === undefined) throw new RangeError(`entity ${e} outside the micro-batch's ${mb.count}`);
      states[e] = userStateUpdate(prev, enc.subarray(i * c, i * c + c));
    }
  });
}

/** Fixed/adaptive split: one Meta-SGD step on the adaptive part of every user in the micro-batch. */
export async function adaptFixedAdaptive(d: BenchData, mbs: { batch: RowBatch; count: number }[], budget: Budget): Promise<AdaptRate> {
  const model = new FixedAdaptive({ layout: d.layout, vocab: d.vocabSize });
  return adaptLoop(mbs, budget, (mb) => {
    model.adaptStep(mb.batch, model.initUsers(mb.count), mb.count, 1);
  });
}

export interface ForwardRates {
  tfjs: Rate;
  onnx: Rate;
}

/**
 * Forward-only scoring rows/s of one model: TensorFlow.js `predict` and onnxruntime-node on the
 * same release `model.onnx` (serving/onnx-runner.ts, one intra-op thread), batches of `size`
 * rows with per-row entity params gathered inside the timed step in both.
 */
export async function forward(name: ModelName, d: BenchData, size: number, budget: Budget): Promise<ForwardRates> {
  const mbs = microBatches(d.adapt, size);
  const s = d.layout.slotField.length;
  let tfStep: (mb: { batch: RowBatch; count: number }) => void;
  let onnxBytes: Uint8Array;
  let feeds: (mb: { batch: RowBatch; count: number }) => Record<string, FeedTensor>;
  if (name === 'coldnas' || name === 'fixed-adaptive') {
    const model = name === 'coldnas' ? makeColdNas(d) : new FixedAdaptive({ layout: d.layout, vocab: d.vocabSize });
    onnxBytes = defined(bundleUser(model).files[ONNX_FILE], "the bundle's ONNX file");
    if (model instanceof ColdNas) {
      const c = model.contextDim;
      const statesOf = (count: number): ColdNasUserState[] => Array.from({ length: count }, () => ({ count: 1, mean: new Float32Array(c).fill(0.01) }));
      tfStep = (mb) => void model.predict(mb.batch, statesOf(mb.count));
      feeds = (mb) => {
        const means = new Float32Array(mb.count * c).fill(0.01);
        return { user_state: { data: gatherRows(means, c, mb.batch.entity), dims: [mb.batch.n, c] } };
      };
    } else {
      const p = model.adaptiveSize;
      tfStep = (mb) => void model.predict(mb.batch, model.initUsers(mb.count));
      feeds = (mb) => ({ user_adaptive: { data: gatherRows(model.initUsers(mb.count), p, mb.batch.entity), dims: [mb.batch.n, p] } });
    }
  } else {
    const model = makeCtr(name, d);
    onnxBytes = defined(bundleCtr(model).files[ONNX_FILE], "the bundle's ONNX file");
    const f = model.numFields;
    tfStep = (mb) => void model.predict(mb.batch, entityParams(model, mb.count));
    feeds = (mb) => {
      const ent = entityParams(model, mb.count);
      const out: Record<string, FeedTensor> = { entity_id: { data: gatherRows(ent.idEmb, model.width, mb.batch.entity), dims: [mb.batch.n, model.width] } };
      if (model.graphSize > 0) out.entity_graph = { data: gatherRows(ent.graph, model.graphSize, mb.batch.entity), dims: [mb.batch.n, f, f] };
      return out;
    };
  }
  let k = 0;
  const tfjs = await timed(budget, () => {
    const mb = atIndex(mbs, k++ % mbs.length);
    tfStep(mb);
    return mb.batch.n;
  });
  const runner = await OnnxRunner.load(onnxBytes, { intraOpThreads: 1, maxBatch: size });
  try {
    k = 0;
    const onnx = await timed(budget, async () => {
      const mb = atIndex(mbs, k++ % mbs.length);
      const n = mb.batch.n;
      await runner.run(n, { feat_idx: { data: mb.batch.featIdx, dims: [n, s] }, feat_w: { data: mb.batch.featW, dims: [n, s] }, ...feeds(mb) }, ['prob']);
      return n;
    });
    return { tfjs, onnx };
  } finally {
    await runner.close();
  }
}

/** Tensors still allocated (a leak check printed with the results). */
export function liveTensors(): number {
  return tf.memory().numTensors;
}
