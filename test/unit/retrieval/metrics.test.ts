import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ndcgAtK, recallAtK } from '../../../retrieval/metrics.js';
import { topK } from '../../../retrieval/exact-search.js';

test('recall@K counts the relevant items in the first K, over all relevant items', () => {
  const ranked = [5, 3, 9, 1, 7];
  const relevant = new Set([3, 7, 42]);
  assert.equal(recallAtK(ranked, relevant, 1), 0);
  assert.equal(recallAtK(ranked, relevant, 2), 1 / 3);
  assert.equal(recallAtK(ranked, relevant, 5), 2 / 3);
  assert.equal(recallAtK(ranked, relevant, 100), 2 / 3, 'K past the list end reads the whole list');
  assert.equal(recallAtK(ranked, new Set(), 5), 0);
});

test('NDCG@K by hand: hits at ranks 2 and 5 among 3 relevant items', () => {
  const ranked = [5, 3, 9, 1, 7];
  const relevant = new Set([3, 7, 42]);
  const dcg = 1 / Math.log2(3) + 1 / Math.log2(6);
  const idcg = 1 + 1 / Math.log2(3) + 1 / Math.log2(4);
  assert.ok(Math.abs(ndcgAtK(ranked, relevant, 5) - dcg / idcg) < 1e-12);
  // With K = 2 the ideal list has 2 hits and the actual one has 1 at rank 2.
  assert.ok(Math.abs(ndcgAtK(ranked, relevant, 2) - 1 / Math.log2(3) / (1 + 1 / Math.log2(3))) < 1e-12);
  assert.equal(ndcgAtK([3, 7, 42], relevant, 3), 1, 'a perfect list');
});

test('exact top-K keeps the best scores first, ties to the lower index, and skips exclusions', () => {
  const scores = Float32Array.from([0.5, 2, -1, 2, 0.7, 3]);
  assert.deepEqual([...topK(scores, 3)], [5, 1, 3]);
  assert.deepEqual([...topK(scores, 3, new Set([5, 1]))], [3, 4, 0]);
  assert.deepEqual([...topK(scores, 10)], [5, 1, 3, 4, 0, 2]);
  assert.deepEqual([...topK(scores, 0)], []);
  // Against a full sort on random scores.
  const many = Float32Array.from({ length: 500 }, (_, i) => (Math.sin(i * 12.9898) * 43758.5453) % 1);
  const expected = [...many.keys()].sort((a, b) => (many[b] ?? 0) - (many[a] ?? 0) || a - b).slice(0, 50);
  assert.deepEqual([...topK(many, 50)], expected);
});
