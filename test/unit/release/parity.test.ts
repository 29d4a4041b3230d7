/**
 * Parity of each exported `model.onnx` (run by the real onnxruntime-node) with the TypeScript /
 * TensorFlow.js forward of the same definition, on random inputs: max |Δprob| ≤ 1e-5.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { CtrModel, EntityParams, FieldLayout, RowBatch } from '../../../models/ctr-model.js';
import { DeepFm } from '../../../models/deepfm.js';
import { Emerg } from '../../../models/emerg.js';
import { FactorizationMachine, mulberry32, sigmoid } from '../../../models/fm.js';
import { exportDeepFmOnnx } from '../../../models/onnx/deepfm.js';
import { exportEmergOnnx } from '../../../models/onnx/emerg.js';
import { exportFmOnnx } from '../../../models/onnx/fm.js';
import { exportColdNasOnnx, exportFixedAdaptiveOnnx } from '../../../models/onnx/user-models.js';
import { ColdNas, type ColdNasStructure } from '../../../models/coldnas.js';
import { FixedAdaptive } from '../../../models/fixed-adaptive.js';
import type { ParamSet } from '../../../models/params.js';
import type { EmbeddingTable } from '../../../models/embedding-table.js';
import { OnnxRunner, padRows } from '../../../serving/onnx-runner.js';

const TOL = 1e-5;
const rand = mulberry32(42);
const uniform = (scale: number): number => (rand() * 2 - 1) * scale;
const floats = (n: number, scale: number): Float32Array => Float32Array.from({ length: n }, () => uniform(scale));

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

// item ID (field 0), user (1), genres bag of 3 slots (2), year (3), occupation (4); item fields 2 and 3.
const LAYOUT: FieldLayout = {
  fieldNames: ['item', 'user', 'genre', 'year', 'occupation'],
  slotField: Int32Array.from([1, 2, 2, 2, 3, 4]),
  itemFields: [2, 3],
};
const VOCAB = 50;

function randomBatch(n: number, entities: number): RowBatch {
  const s = LAYOUT.slotField.length;
  const featIdx = new Int32Array(n * s);
  const featW = new Float32Array(n * s);
  for (let i = 0; i < n; i++) {
    const bag = 1 + Math.floor(rand() * 3); // 1..3 genres, the rest padding
    for (let j = 0; j < s; j++) {
      const isBag = j >= 1 && j <= 3;
      const pad = isBag && j - 1 >= bag;
      featIdx[i * s + j] = pad ? 0 : Math.floor(rand() * VOCAB);
      featW[i * s + j] = pad ? 0 : isBag ? 1 / bag : 1;
    }
  }
  return { n, featIdx, featW, label: new Float32Array(n), entity: Int32Array.from({ length: n }, () => Math.floor(rand() * entities)) };
}

/** Randomises dense params and table well beyond their init scale, so every term matters. */
function scramble(model: { dense: ParamSet; table: EmbeddingTable }): void {
  for (const name of model.dense.names()) {
    const p = model.dense.get(name).data;
    for (let i = 0; i < p.length; i++) p[i] = uniform(0.4);
  }
  const t = model.table.data;
  for (let i = 0; i < t.length; i++) t[i] = uniform(0.5);
}

async function onnxCtr(bytes: Uint8Array, model: CtrModel, b: RowBatch, ent: EntityParams, outputs: string[]): Promise<Record<string, Float32Array>> {
  const runner = await OnnxRunner.load(bytes);
  try {
    const id = new Float32Array(b.n * model.width);
    const graph = new Float32Array(b.n * model.graphSize);
    for (let i = 0; i < b.n; i++) {
      const e = b.entity[i]!;
      id.set(ent.idEmb.subarray(e * model.width, (e + 1) * model.width), i * model.width);
      graph.set(ent.graph.subarray(e * model.graphSize, (e + 1) * model.graphSize), i * model.graphSize);
    }
    const feeds = {
      feat_idx: { data: b.featIdx, dims: [b.n, model.slots] },
      feat_w: { data: b.featW, dims: [b.n, model.slots] },
      entity_id: { data: id, dims: [b.n, model.width] },
      ...(model.graphSize > 0 ? { entity_graph: { data: graph, dims: [b.n, model.numFields, model.numFields] } } : {}),
    };
    return await runner.run(b.n, feeds, outputs);
  } finally {
    await runner.close();
  }
}

function randomEntities(model: CtrModel, count: number): EntityParams {
  return { count, idEmb: floats(count * model.width, 0.5), graph: floats(count * model.graphSize, 0.6) };
}

describe('ONNX parity with the TypeScript forward (onnxruntime-node)', () => {
  it('fm: prob within 1e-5 for random rows and user and item views', async () => {
    const fm = FactorizationMachine.create({ buckets: 500, k: 8, initStd: 0.3, seed: 3 });
    for (let i = 0; i < fm.w.length; i++) fm.w[i] = uniform(0.5);
    fm.w0 = -0.3;
    const n = 64;
    const k = fm.k;
    const rows = Array.from({ length: n }, () => Int32Array.from({ length: 1 + Math.floor(rand() * 12) }, () => Math.floor(rand() * fm.buckets)));
    const users = floats(n * (k + 2), 0.5);
    const items = floats(n * (k + 2), 0.5);
    const at = (views: Float32Array, i: number): Float32Array => views.subarray(i * (k + 2), (i + 1) * (k + 2));
    const expected = Float32Array.from(rows, (r, i) => sigmoid(fm.logit(r, r.length, r.length, at(users, i), at(items, i))));
    const runner = await OnnxRunner.load(exportFmOnnx(fm), { maxBatch: 20 }); // also exercises chunking
    try {
      const got = await runner.scoreFm(padRows(rows), users, items);
      const d = maxAbsDiff(got, expected);
      assert.ok(d <= TOL, `max |Δ| ${d}`);
      // Not vacuous: scores spread out and depend on the entity inputs.
      assert.ok(Math.max(...got) - Math.min(...got) > 0.1);
      const zeroEnt = await runner.scoreFm(padRows(rows), new Float32Array(n * (k + 2)), items);
      assert.ok(maxAbsDiff(got, zeroEnt) > 0.01);
    } finally {
      await runner.close();
    }
  });

  it('fm with a cross term: prob within 1e-5, and the crosses move the scores', async () => {
    const fm = FactorizationMachine.create({ buckets: 500, k: 4, initStd: 0.3, seed: 4, crossBuckets: 211 });
    for (let i = 0; i < fm.c.length; i++) fm.c[i] = uniform(0.8);
    const n = 40;
    const k = fm.k;
    const rows = Array.from({ length: n }, () => Int32Array.from({ length: 2 + Math.floor(rand() * 8) }, () => Math.floor(rand() * fm.buckets)));
    const nUser = rows.map((r) => 1 + Math.floor(rand() * (r.length - 1)));
    const users = floats(n * (k + 2), 0.5);
    const items = floats(n * (k + 2), 0.5);
    const at = (views: Float32Array, i: number): Float32Array => views.subarray(i * (k + 2), (i + 1) * (k + 2));
    const expected = Float32Array.from(rows, (r, i) => sigmoid(fm.logit(r, r.length, nUser[i] ?? 0, at(users, i), at(items, i))));
    const crosses = padRows(rows.map((r, i) => fm.crossRowsOf(r, nUser[i] ?? 0, r.length)));
    const runner = await OnnxRunner.load(exportFmOnnx(fm), { maxBatch: 16 });
    try {
      const got = await runner.scoreFm(padRows(rows), users, items, crosses);
      const d = maxAbsDiff(got, expected);
      assert.ok(d <= TOL, `max |Δ| ${d}`);
      const none = padRows(rows.map(() => new Int32Array(0)));
      assert.ok(maxAbsDiff(await runner.scoreFm(padRows(rows), users, items, none), expected) > 0.01);
      await assert.rejects(runner.scoreFm(padRows(rows), users, items), /cross rows/);
    } finally {
      await runner.close();
    }
  });

  it('deepfm: prob within 1e-5', async () => {
    const model = new DeepFm({ layout: LAYOUT, vocab: VOCAB, dim: 8, hidden: [16, 8], seed: 5 });
    scramble(model);
    const b = randomBatch(48, 10);
    const ent = randomEntities(model, 10);
    const expected = model.predict(b, ent);
    const got = await onnxCtr(exportDeepFmOnnx(model), model, b, ent, ['prob']);
    const d = maxAbsDiff(got.prob!, expected);
    assert.ok(d <= TOL, `max |Δ| ${d}`);
    assert.ok(Math.max(...expected) - Math.min(...expected) > 0.1);
  });

  it('metaemb (DeepFM + ID generator): prob and generated_id within 1e-5', async () => {
    const model = new DeepFm({ layout: LAYOUT, vocab: VOCAB, dim: 8, hidden: [16], seed: 6, withGenerator: true });
    scramble(model);
    const b = randomBatch(32, 8);
    const ent = randomEntities(model, 8);
    const expected = model.predict(b, ent);
    const got = await onnxCtr(exportDeepFmOnnx(model), model, b, ent, ['prob', 'generated_id']);
    assert.ok(maxAbsDiff(got.prob!, expected) <= TOL);
    const gen = tf.tidy(() => model.generateIdEmb!(model.dense.tensors(), model.pooledOf(b)).dataSync() as Float32Array);
    const d = maxAbsDiff(got.generated_id!, Float32Array.from(gen));
    assert.ok(d <= TOL, `generated_id max |Δ| ${d}`);
  });

  for (const [firstOrder, readout] of [
    [true, 'layers'],
    [false, 'layers'],
    [true, 'fields'],
  ] as const)
    it(`emerg (firstOrder ${firstOrder}, readout ${readout}): prob, generated_graph and generated_id within 1e-5`, async () => {
      const model = new Emerg({ layout: LAYOUT, vocab: VOCAB, dim: 8, layers: 3, genHidden: 8, seed: 7, firstOrder, readout });
      scramble(model);
      const b = randomBatch(40, 6);
      const ent = randomEntities(model, 6);
      const expected = model.predict(b, ent);
      const got = await onnxCtr(exportEmergOnnx(model), model, b, ent, ['prob', 'generated_graph', 'generated_id']);
      const d = maxAbsDiff(got.prob!, expected);
      assert.ok(d <= TOL, `prob max |Δ| ${d}`);
      assert.ok(Math.max(...expected) - Math.min(...expected) > 0.05);
      const [graph, id] = tf.tidy(() => {
        const p = model.dense.tensors();
        const pooled = model.pooledOf(b);
        return [model.generateGraph(p, pooled).dataSync() as Float32Array, model.generateIdEmb(p, pooled).dataSync() as Float32Array];
      });
      assert.ok(maxAbsDiff(got.generated_graph!, Float32Array.from(graph)) <= TOL);
      assert.ok(maxAbsDiff(got.generated_id!, Float32Array.from(id)) <= TOL);
    });

  async function onnxUser(bytes: Uint8Array, b: RowBatch, input: string, perEntity: Float32Array, width: number): Promise<Float32Array> {
    const runner = await OnnxRunner.load(bytes);
    try {
      const rows = new Float32Array(b.n * width);
      for (let i = 0; i < b.n; i++) rows.set(perEntity.subarray(b.entity[i]! * width, (b.entity[i]! + 1) * width), i * width);
      const s = LAYOUT.slotField.length;
      const res = await runner.run(b.n, {
        feat_idx: { data: b.featIdx, dims: [b.n, s] },
        feat_w: { data: b.featW, dims: [b.n, s] },
        [input]: { data: rows, dims: [b.n, width] },
      });
      return res.prob!;
    } finally {
      await runner.close();
    }
  }

  const structures: ColdNasStructure[] = [{ ops: ['max', 'min', 'multiply', 'add'] }, { ops: ['add', 'multiply', 'min', 'max'] }];
  for (const structure of structures) {
    it(`coldnas (${structure.ops.join(',')}): prob within 1e-5 with user states as inputs`, async () => {
      const model = new ColdNas({ layout: LAYOUT, vocab: VOCAB, dim: 4, hidden: [12, 8, 6], contextDim: 10, seed: 8, structure });
      scramble(model);
      const users = 7;
      const b = randomBatch(40, users);
      const states = Array.from({ length: users }, () => ({ count: 3, mean: floats(10, 1) }));
      const expected = model.predict(b, states);
      const means = new Float32Array(users * 10);
      states.forEach((st, i) => means.set(st.mean, i * 10));
      const got = await onnxUser(exportColdNasOnnx(model), b, 'user_state', means, 10);
      const d = maxAbsDiff(got, expected);
      assert.ok(d <= TOL, `max |Δ| ${d}`);
      assert.ok(Math.max(...expected) - Math.min(...expected) > 0.05);
    });
  }

  it('coldnas supernet (no structure) is refused by the exporter', () => {
    const model = new ColdNas({ layout: LAYOUT, vocab: VOCAB, dim: 4, hidden: [8, 8, 8], contextDim: 8 });
    assert.throws(() => exportColdNasOnnx(model), /structure/);
  });

  it('fixed-adaptive: prob within 1e-5 with adaptive params as inputs', async () => {
    const model = new FixedAdaptive({ layout: LAYOUT, vocab: VOCAB, dim: 6, hidden: [16, 8], seed: 9 });
    scramble(model.backbone);
    assert.equal(model.adaptiveSize, 7); // the user's ID embedding (D) and first-order weight
    const users = 5;
    const b = randomBatch(30, users);
    const theta = floats(users * model.adaptiveSize, 0.8);
    const bytes = exportFixedAdaptiveOnnx(model);
    const expected = model.predict(b, theta);
    const got = await onnxUser(bytes, b, 'user_adaptive', theta, model.adaptiveSize);
    const d = maxAbsDiff(got, expected);
    assert.ok(d <= TOL, `max |Δ| ${d}`);
    assert.ok(Math.max(...expected) - Math.min(...expected) > 0.05);
    // Not vacuous: the adaptive input moves the scores, and ONNX follows the TypeScript forward there too.
    const init = model.initUsers(users);
    const atInit = await onnxUser(bytes, b, 'user_adaptive', init, model.adaptiveSize);
    assert.ok(maxAbsDiff(got, atInit) > 0.01);
    assert.ok(maxAbsDiff(atInit, model.predict(b, init)) <= TOL);
  });
});
