import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { buildWarmupSplit, K, PUBLISHED_SIZES } from '../../../evaluation/warmup-split.js';
import { auc, f1AtMean } from '../../../evaluation/metrics.js';

// MovieLens may not be redistributed: the test reads the shared copy outside the repository.
const DIR = process.env.THAW_ML100K ?? path.resolve(import.meta.dirname, '../../../../shared/data/ml-100k');

test('the MovieLens-100K warm-up split has the published sizes', () => {
  const s = buildWarmupSplit(DIR);
  assert.equal(s.hotItems.length, PUBLISHED_SIZES.hotItems);
  assert.equal(s.hot.n, PUBLISHED_SIZES.hotRows);
  assert.equal(s.coldItems.length, PUBLISHED_SIZES.coldItems);
  for (const b of [s.warmA, s.warmB, s.warmC]) assert.equal(b.n, PUBLISHED_SIZES.warmRows);
  assert.equal(s.test.n, PUBLISHED_SIZES.testRows);
  // Every new item has exactly K rows in each warm batch.
  const perItem = new Array<number>(s.coldItems.length).fill(0);
  for (const e of s.warmB.entity) perItem[e]! += 1;
  assert.ok(perItem.every((c) => c === K));
  assert.equal(s.layout.fieldNames.length, 9);
});

test('AUC and F1 at the mean on a hand-checked example', () => {
  assert.equal(auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
  assert.equal(auc([0.5, 0.5], [0, 1]), 0.5);
  // mean 0.4125: predicted positive = 0.8 only → tp 1, fn 1, fp 0 → F1 = 2/3.
  assert.ok(Math.abs(f1AtMean([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) - 2 / 3) < 1e-12);
});
