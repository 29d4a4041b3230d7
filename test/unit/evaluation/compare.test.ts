import assert from 'node:assert/strict';
import { test } from 'node:test';
import { weightedAuc } from '../../../evaluation/stream/compare.js';
import { auc } from '../../../lib/metrics.js';
import { mulberry32 } from '../../../models/fm.js';

function sortedOf(scores: Float64Array): { order: Uint32Array; tieStart: Uint32Array } {
  const order = Uint32Array.from(scores.keys()).sort((a, b) => (scores[a] ?? 0) - (scores[b] ?? 0));
  const tieStart = new Uint32Array(order.length);
  for (let r = 1; r < order.length; r++) tieStart[r] = scores[order[r] ?? 0] === scores[order[r - 1] ?? 0] ? (tieStart[r - 1] ?? 0) : r;
  return { order, tieStart };
}

test('weighted AUC: unit weights give the plain AUC; weights are repeated rows; ties count one half', () => {
  const rand = mulberry32(3);
  const n = 300;
  // Rounded scores: many ties.
  const scores = Float64Array.from({ length: n }, () => Math.round(rand() * 20) / 20);
  const labels = Uint8Array.from(scores, (s) => (rand() < 0.3 + 0.4 * s ? 1 : 0));
  const s = sortedOf(scores);
  assert.ok(Math.abs(weightedAuc(s, labels, new Uint32Array(n).fill(1)) - auc(scores, labels)) < 1e-12);
  const w = Uint32Array.from({ length: n }, () => Math.floor(rand() * 3));
  const expanded: number[] = [];
  const expandedLabels: number[] = [];
  w.forEach((m, i) => {
    for (let k = 0; k < m; k++) {
      expanded.push(scores[i] ?? 0);
      expandedLabels.push(labels[i] ?? 0);
    }
  });
  assert.ok(Math.abs(weightedAuc(s, labels, w) - auc(expanded, expandedLabels)) < 1e-12);
  assert.ok(Number.isNaN(weightedAuc(s, new Uint8Array(n), w)), 'one class only');
});
