import { test } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend } from '../../../models/backend.js';
import type { RowBatch } from '../../../models/ctr-model.js';
import { buildValidationSplit, formatValidationTable, runValidation } from '../../../evaluation/validation.js';
import type { ProtocolSplit } from '../../../evaluation/warmup-protocol.js';
import { TINY_LAYOUT, TINY_VOCAB, tinyBatch } from '../models/tiny-data.js';

await initBackend('cpu');

const empty: RowBatch = { n: 0, featIdx: new Int32Array(0), featW: new Float32Array(0), label: new Float32Array(0), entity: new Int32Array(0) };
// 10 hot items: items 0..7 have 90 rows, items 8 and 9 only 30 (too few to be validation items).
function split(withWarmC: boolean): ProtocolSplit {
  const big = tinyBatch(720, 8, 3);
  const small = tinyBatch(60, 2, 4);
  const s = big.featIdx.length / big.n;
  const hot: RowBatch = {
    n: 780,
    featIdx: Int32Array.from([...big.featIdx, ...small.featIdx]),
    featW: Float32Array.from([...big.featW, ...small.featW]),
    label: Float32Array.from([...big.label, ...small.label]),
    entity: Int32Array.from([...big.entity, ...Array.from(small.entity, (e) => e + 8)]),
  };
  assert.equal(hot.featIdx.length, 780 * s);
  return {
    layout: TINY_LAYOUT,
    vocabSize: TINY_VOCAB,
    hotItems: Array.from({ length: 10 }, (_, i) => 100 + i),
    coldItems: [500],
    hot,
    warmA: empty,
    warmB: empty,
    ...(withWarmC ? { warmC: empty } : {}),
    test: empty,
  };
}

test('the validation split holds out hot items by seed, K rows per warm batch, the rest test; no row lost or shared', () => {
  const base = split(true);
  const v = buildValidationSplit(base, { seed: 1, fraction: 0.3, k: 20 });
  assert.equal(v.validationHot.length, 3);
  assert.ok(
    v.validationHot.every((h) => h < 8),
    'only items with enough rows are held out',
  );
  assert.deepEqual(
    v.coldItems,
    v.validationHot.map((h) => 100 + h),
  );
  assert.deepEqual(
    [...v.trainHot, ...v.validationHot].sort((a, b) => a - b),
    [...Array(10).keys()],
  );
  for (const b of [v.warmA, v.warmB, v.warmC!]) {
    assert.equal(b.n, 3 * 20);
    assert.deepEqual(
      [0, 1, 2].map((e) => b.entity.filter((x) => x === e).length),
      [20, 20, 20],
    );
  }
  assert.equal(v.test.n, 3 * 30);
  assert.equal(v.hot.n + 3 * 90, 780);
  assert.ok(Math.max(...v.hot.entity) === v.hotItems.length - 1);
  // Labels travel with their rows: the label sums add up.
  const sum = (b: RowBatch): number => b.label.reduce((a, x) => a + x, 0);
  assert.equal(sum(v.hot) + sum(v.warmA) + sum(v.warmB) + sum(v.warmC!) + sum(v.test), sum(base.hot));
  // Deterministic by seed, and another seed picks other items.
  assert.deepEqual(buildValidationSplit(base, { seed: 1, fraction: 0.3, k: 20 }).validationHot, v.validationHot);
  const others = [2, 3, 4, 5].map((seed) => buildValidationSplit(base, { seed, fraction: 0.3, k: 20 }).validationHot.join());
  assert.ok(others.some((o) => o !== v.validationHot.join()));
  // Without a warm-c batch (Meta-Embedding's splits) the test rows start after two batches.
  const two = buildValidationSplit(split(false), { seed: 1, fraction: 0.3, k: 20 });
  assert.equal(two.warmC, undefined);
  assert.equal(two.test.n, 3 * 50);
  assert.throws(() => buildValidationSplit(base, { fraction: 0.9, k: 20 }), /validation-fraction/);
});

test('runValidation trains on the training items only and reports the protocol per grid point', async () => {
  const { rows, split: v } = await runValidation(split(true), {
    kind: 'deepfm',
    seed: 3,
    fraction: 0.3,
    grid: [
      { lr: 0.1, steps: 1 },
      { lr: 0.5, steps: 2 },
    ],
    train: { baseEpochs: 1, batchSize: 64, dim: 4 },
  });
  assert.equal(v.coldItems.length, 3);
  assert.equal(rows.length, 2 * 2 * 4);
  for (const r of rows) assert.ok(r.auc >= 0 && r.auc <= 1 && Number.isFinite(r.f1), JSON.stringify(r));
  // deepfm never adapts; finetune does, and its rate matters.
  const at = (lr: number, model: string, phase: string): number => rows.find((r) => r.lr === lr && r.model === model && r.phase === phase)!.auc;
  assert.equal(at(0.1, 'deepfm', 'warm-c'), at(0.1, 'deepfm', 'cold'));
  assert.notEqual(at(0.5, 'finetune', 'warm-c'), at(0.5, 'finetune', 'cold'));
  const table = formatValidationTable(rows);
  assert.match(table, /warm mean/);
  assert.equal(table.split('\n').length, 1 + 4);
});
