import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketMetrics, priorCounts } from '../../../bench/peer-vw/evaluate.js';
import type { LabelledEvent } from '../../../schemas/types.js';

const ev = (userId: string, itemId: string, label: 0 | 1): LabelledEvent => ({ eventId: `${userId}-${itemId}`, timeMs: 0, userId, itemId, label, userFeatures: {}, itemFeatures: {} });

test('priorCounts counts earlier events of the same entity per side', () => {
  const events = [ev('1', 'a', 1), ev('1', 'b', 0), ev('2', 'a', 1), ev('1', 'a', 0)];
  assert.deepEqual([...priorCounts(events, 'user')], [0, 1, 0, 2]);
  assert.deepEqual([...priorCounts(events, 'item')], [0, 0, 1, 2]);
});

test('bucketMetrics: window, buckets, 1-5 pooled, AUC with ties, log loss', () => {
  // Position 0 is before the window and would break AUC if counted.
  const scores = [0.99, 0.8, 0.2, 0.5, 0.5, 0.9, 0.1];
  const labels = [0, 1, 0, 1, 0, 1, 0];
  const prior = [1, 1, 2, 4, 4, 60, 60];
  const m = bucketMetrics(scores, labels, prior, 1);
  assert.equal(m['1-2'].n, 2);
  assert.equal(m['1-2'].auc, 1);
  assert.equal(m['3-5'].auc, 0.5); // one tie: counts 1/2
  assert.equal(m['1-5'].n, 4);
  assert.equal(m['1-5'].auc, (1 + 1 + 1 + 0.5) / 4);
  assert.equal(m['51+'].n, 2);
  assert.equal(m['0'].n, 0);
  assert.ok(Number.isNaN(m['0'].auc));
  assert.ok(Math.abs(m['51+'].logLoss - -(Math.log(0.9) + Math.log(0.9)) / 2) < 1e-12);
  assert.ok(Math.abs(m['51+'].meanScore - 0.5) < 1e-12);
  assert.throws(() => bucketMetrics([0.5, NaN], [1, 0], [0, 0], 0), RangeError);
});
