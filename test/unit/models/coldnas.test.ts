import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../../models/backend.js';
import { ColdNas, COLDNAS_OPS, userStateUpdate, type ColdNasUserState } from '../../../models/coldnas.js';
import { DenseAdam } from '../../../models/params.js';
import { Rng } from '../../../models/rng.js';
import { coldNasStep, rowsByEntity, sampleEpisodes, trainColdNas } from '../../../trainers/coldnas-trainer.js';
import { TINY_LAYOUT, TINY_VOCAB, tinyBatch } from './tiny-data.js';

await initBackend('cpu');

// In the tiny layout field 0 plays the user ID (the entity): ColdNAS does not embed it.
const make = (structure?: ConstructorParameters<typeof ColdNas>[0]['structure']): ColdNas =>
  new ColdNas({ layout: TINY_LAYOUT, vocab: TINY_VOCAB, dim: 4, hidden: [8, 6, 4], contextDim: 12, seed: 3, ...(structure === undefined ? {} : { structure }) });

test('the O(1) running-mean user state equals the batch mean-pooled encoding to 1e-6', () => {
  const model = make();
  // Larger weights than the initialisers' so the encodings are far from zero.
  const rng = new Rng(5);
  for (const n of model.dense.names()) rng.fillUniform(model.dense.get(n).data, 0.5);
  rng.fillUniform(model.table.data, 0.5);
  const count = 4;
  const b = tinyBatch(37, count, 21);
  const batch = model.batchStates(b, count);
  const enc = model.encodeInteractions(b);
  const c = model.contextDim;
  const states: ColdNasUserState[] = Array.from({ length: count }, () => model.emptyState());
  for (let i = 0; i < b.n; i++) states[b.entity[i]!] = userStateUpdate(states[b.entity[i]!]!, enc.subarray(i * c, i * c + c));
  let maxAbs = 0;
  for (let e = 0; e < count; e++) {
    assert.equal(states[e]!.count, batch[e]!.count);
    for (let k = 0; k < c; k++) maxAbs = Math.max(maxAbs, Math.abs(states[e]!.mean[k]! - batch[e]!.mean[k]!));
  }
  assert.ok(maxAbs < 1e-6, `max |incremental − batch| = ${maxAbs}`);
  assert.ok(Math.max(...batch[0]!.mean.map(Math.abs)) > 1e-2, 'encodings are not trivially zero');
  // Predictions from either state agree too, and an update does not mutate its input.
  const test_ = tinyBatch(12, count, 22);
  const p1 = model.predict(test_, states);
  const p2 = model.predict(test_, batch);
  for (let i = 0; i < p1.length; i++) assert.ok(Math.abs(p1[i]! - p2[i]!) < 1e-5);
  const before = states[0]!.mean.slice();
  userStateUpdate(states[0]!, enc.subarray(0, c));
  assert.deepEqual(states[0]!.mean, before);
});

test('a user history changes its predictions (the modulation is live), a cold user gets the bias-only modulation', () => {
  const model = make({ ops: ['add', 'multiply', 'max', 'min'] });
  const rng = new Rng(8);
  for (const n of model.dense.names()) rng.fillUniform(model.dense.get(n).data, 0.5);
  const b = tinyBatch(20, 2, 4);
  const states = model.batchStates(b, 2);
  const q = tinyBatch(10, 2, 5);
  const cold = model.predict(q, [model.emptyState(), model.emptyState()]);
  const warm = model.predict(q, states);
  assert.ok(cold.some((p, i) => Math.abs(p - warm[i]!) > 1e-4));
  assert.deepEqual(
    model.structureJson().positions.map((p) => p.op),
    ['add', 'multiply', 'max', 'min'],
  );
});

test('search: weight steps never move the architecture logits, arch steps move only them', () => {
  const model = make();
  const data = tinyBatch(200, 5, 9);
  const rowsOf = rowsByEntity(data, 5);
  const rng = new Rng(1);
  const ep = sampleEpisodes(data, rowsOf, [0, 1, 2], [0, 5, 10], 5, rng);
  const alpha0 = model.arch.get('cn.alpha').data.slice();
  const w0 = model.dense.get('cn.w0').data.slice();
  const t0 = model.table.data.slice();
  coldNasStep(model, ep, new DenseAdam(0.01), 'weights');
  assert.deepEqual(model.arch.get('cn.alpha').data, alpha0);
  assert.notDeepEqual(model.dense.get('cn.w0').data, w0);
  assert.notDeepEqual(model.table.data, t0);
  const w1 = model.dense.get('cn.w0').data.slice();
  const t1 = model.table.data.slice();
  coldNasStep(model, ep, new DenseAdam(0.01), 'arch');
  assert.notDeepEqual(model.arch.get('cn.alpha').data, alpha0);
  assert.deepEqual(model.dense.get('cn.w0').data, w1);
  assert.deepEqual(model.table.data, t1);
});

test('trainColdNas searches on held-out validation users and returns a fixed structure', async () => {
  const data = { layout: TINY_LAYOUT, vocabSize: TINY_VOCAB, hot: tinyBatch(400, 8, 13), hotUserCount: 8 };
  const res = await trainColdNas(data, { seed: 2, searchEpochs: 2, epochs: 1, usersPerStep: 4, supportSizes: [0, 5, 10], queryRows: 5, dim: 4 });
  assert.equal(res.structure.ops.length, 4);
  for (const op of res.structure.ops) assert.ok((COLDNAS_OPS as readonly string[]).includes(op));
  assert.equal(res.validationUsers.length, 2);
  assert.equal(res.alpha.length, 16);
  assert.deepEqual(res.model.structure, res.structure);
  // The chosen op per position is the argmax of the searched logits.
  res.structure.ops.forEach((op, pos) => {
    const row = res.alpha.slice(pos * 4, pos * 4 + 4);
    assert.equal(COLDNAS_OPS[row.indexOf(Math.max(...row))], op);
  });
});

test('an all-cold episode (no support rows at all) still trains: regression for the empty support batch', () => {
  const model = make({ ops: ['add', 'add', 'add', 'add'] });
  const data = tinyBatch(60, 3, 9);
  const ep = sampleEpisodes(data, rowsByEntity(data, 3), [0, 1], [0], 5, new Rng(1));
  assert.equal(ep.support.n, 0);
  const w0 = model.dense.get('cn.w0').data.slice();
  const loss = coldNasStep(model, ep, new DenseAdam(0.01), 'weights');
  assert.ok(Number.isFinite(loss));
  assert.notDeepEqual(model.dense.get('cn.w0').data, w0);
});
