import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../../models/backend.js';
import { selectRows } from '../../../models/ctr-model.js';
import { FixedAdaptive, FIXED_ADAPTIVE_PARTITION } from '../../../models/fixed-adaptive.js';
import { DenseAdam } from '../../../models/params.js';
import { Rng } from '../../../models/rng.js';
import { rowsByEntity, sampleEpisodes } from '../../../trainers/coldnas-trainer.js';
import { fixedAdaptiveMetaStep, trainFixedAdaptive } from '../../../trainers/fixed-adaptive-trainer.js';
import { TINY_LAYOUT, TINY_VOCAB, tinyBatch } from './tiny-data.js';

await initBackend('cpu');

const make = (): FixedAdaptive => new FixedAdaptive({ layout: TINY_LAYOUT, vocab: TINY_VOCAB, dim: 4, hidden: [8, 6], seed: 4, initLr: 0.5 });

test('the declared partition: fixed = the backbone, adaptive = the user ID row, meta = init and rates', () => {
  const m = make();
  const part = m.partitionJson();
  assert.deepEqual(part.fixed, ['table', ...m.backbone.dense.names()]);
  assert.equal(
    part.adaptive.reduce((a, p) => a + p.size, 0),
    m.adaptiveSize,
  );
  assert.equal(m.adaptiveSize, m.backbone.width);
  assert.deepEqual(m.meta.names(), [...FIXED_ADAPTIVE_PARTITION.meta]);
});

test('one batched adaptation step over many users equals stepping each user alone, with per-parameter rates', () => {
  const m = make();
  const rng = new Rng(3);
  rng.fillUniform(m.meta.get('fa.lr').data, 1).forEach((v, i, a) => (a[i] = Math.abs(v)));
  m.meta.get('fa.lr').data[0] = 0; // a frozen adaptive parameter stays at its init
  const count = 4;
  const b = tinyBatch(30, count, 7);
  const users = m.initUsers(count);
  rng.fillUniform(users, 0.3);
  const batched = users.slice();
  m.adaptStep(b, batched, count, 2);
  const ps = m.adaptiveSize;
  for (let u = 0; u < count; u++) {
    const rows = [...b.entity.keys()].filter((i) => b.entity[i] === u);
    const alone = { ...selectRows(b, rows), entity: new Int32Array(rows.length) };
    const mine = users.slice(u * ps, u * ps + ps);
    m.adaptStep(alone, mine, 1, 2);
    for (let k = 0; k < ps; k++) assert.ok(Math.abs(mine[k]! - batched[u * ps + k]!) < 1e-5, `user ${u} param ${k}`);
    assert.equal(batched[u * ps], users[u * ps]);
    assert.notEqual(batched[u * ps + 1], users[u * ps + 1]);
  }
});

test('the offline meta step learns the fixed trunk, the init and the per-parameter rates; training lowers the query loss', async () => {
  const m = make();
  const data = tinyBatch(400, 8, 13);
  const ep = sampleEpisodes(data, rowsByEntity(data, 8), [0, 1, 2, 3], [10], 10, new Rng(2));
  const before = { lr: m.meta.get('fa.lr').data.slice(), init: m.meta.get('fa.init').data.slice(), w0: m.backbone.dense.get('fm.w0').data.slice() };
  fixedAdaptiveMetaStep(m, ep, new DenseAdam(0.01), new DenseAdam(0.01));
  assert.notDeepEqual(m.meta.get('fa.lr').data, before.lr);
  assert.notDeepEqual(m.meta.get('fa.init').data, before.init);
  assert.notDeepEqual(m.backbone.dense.get('fm.w0').data, before.w0);

  const hot = { layout: TINY_LAYOUT, vocabSize: TINY_VOCAB, hot: data, hotUserCount: 8 };
  const lossAfter = async (epochs: number): Promise<number> => {
    const { model } = await trainFixedAdaptive(hot, { seed: 1, epochs, usersPerStep: 4, supportRows: 10, queryRows: 10, dim: 4, baseEpochs: 0, fixedLr: 0.01 });
    const users = model.initUsers(8);
    // Training loss of the adapted users (the tiny data's labels depend on the user only).
    model.adaptStep(data, users, 8);
    return model.userGradients(data, users, 8).loss;
  };
  const l0 = await lossAfter(0);
  const l1 = await lossAfter(15);
  assert.ok(l1 < l0, `query loss ${l0} → ${l1}`);
});

test('k inner steps in the meta step: the query loss is the loss after k adaptation steps from the init', () => {
  const m = make();
  const data = tinyBatch(300, 6, 21);
  const ep = sampleEpisodes(data, rowsByEntity(data, 6), [0, 1, 2, 3, 4, 5], [10], 10, new Rng(5));
  for (const k of [1, 3]) {
    const users = m.initUsers(ep.count);
    m.adaptStep(ep.support, users, ep.count, k);
    const expected = m.userGradients(ep.query, users, ep.count).loss;
    // supportWeight 0: the outer loss is the query loss alone; a zero-rate Adam leaves the model unchanged.
    const got = fixedAdaptiveMetaStep(m, ep, new DenseAdam(1e-12), new DenseAdam(1e-12), { supportWeight: 0, trainFixed: false, innerSteps: k });
    assert.ok(Math.abs(got - expected) < 1e-5, `k=${k}: ${got} vs ${expected}`);
  }
});

test('time-ordered episodes: the support is consecutive rows of the user, the query comes after it', () => {
  const data = tinyBatch(200, 4, 9);
  const slots = data.featIdx.length / data.n;
  for (let i = 0; i < data.n; i++) data.featIdx[i * slots] = i; // tag each row with its index (the sampler never reads features)
  const rowsOf = rowsByEntity(data, 4);
  const rng = new Rng(11);
  for (let trial = 0; trial < 5; trial++) {
    const ep = sampleEpisodes(data, rowsOf, [0, 1, 2, 3], [5], 6, rng, 'time');
    const positions = (b: typeof data, u: number): number[] => [...b.entity.keys()].filter((i) => b.entity[i] === u).map((i) => rowsOf[u]!.indexOf(b.featIdx[i * slots]!));
    for (let u = 0; u < 4; u++) {
      const s = positions(ep.support, u);
      const q = positions(ep.query, u);
      assert.equal(s.length, 5);
      assert.equal(q.length, 6);
      for (let j = 1; j < s.length; j++) assert.equal(s[j], s[0]! + j, 'consecutive support rows');
      for (const qj of q) assert.ok(qj >= s[0]! + 5, `query row ${qj} after the support ${s[0]}..${s[0]! + 4}`);
    }
  }
});

test('the meta phase trains the feature table at fixedLr, not at the base phase rate', async () => {
  const data = tinyBatch(400, 8, 13);
  const hot = { layout: TINY_LAYOUT, vocabSize: TINY_VOCAB, hot: data, hotUserCount: 8 };
  const opts = { seed: 2, usersPerStep: 4, supportRows: 10, queryRows: 10, dim: 4, baseEpochs: 1, lr: 0.05 };
  const base = await trainFixedAdaptive(hot, { ...opts, epochs: 0 });
  const meta = await trainFixedAdaptive(hot, { ...opts, epochs: 3, fixedLr: 1e-7 });
  const a = base.model.table.data;
  const b = meta.model.table.data;
  let moved = 0;
  for (let i = 0; i < a.length; i++) moved = Math.max(moved, Math.abs(a[i]! - b[i]!));
  // Lazy Adam moves a row by about lr per step: 6 steps at 1e-7, where the base rate 0.05 would move it by ~0.1.
  assert.ok(moved > 0 && moved < 1e-5, `table moved by ${moved}`);
  assert.equal(meta.model.table.lr, 0.05, 'the base rate is restored after the meta phase');
});
