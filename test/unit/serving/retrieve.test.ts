import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnnIndex } from '../../../retrieval/index/ann-index.js';
import { DualEncoder } from '../../../retrieval/towers.js';
import { RetrievalService } from '../../../serving/retrieve.js';

test('indexItem: a new item is indexed from an event or a profile; a known one only when its profile changes its vector', async () => {
  const encoder = new DualEncoder({ dim: 8, itemBuckets: 512, userBuckets: 64, seed: 2 });
  const service = new RetrievalService(encoder, new Set(['trained']), await AnnIndex.create({ dim: 8 }));
  assert.equal(service.indexItem('a', { genre: ['x'] }, 'event'), true);
  assert.equal(service.indexItem('a', { genre: ['y'] }, 'event'), false, 'an event never re-indexes');
  assert.deepEqual(service.index.vectorOf('a'), service.itemVector('a', { genre: ['x'] }));
  assert.equal(service.indexItem('a', { genre: ['x'] }, 'profile'), false, 'same vector: unchanged');
  service.index.sealAll();
  assert.equal(service.indexItem('a', { genre: ['y'] }, 'profile'), true, 'a changed profile re-indexes');
  assert.deepEqual(service.index.vectorOf('a'), service.itemVector('a', { genre: ['y'] }));
  assert.equal(service.index.stats().items, 1);
  assert.equal(service.index.stats().tombstones, 1, 'the old graph node waits for the seal');
  assert.equal(service.indexItem('b', { genre: ['y'] }, 'profile'), true);
  // The encoder's trained ids use their id row: not the feature-only vector.
  assert.notDeepEqual(service.itemVector('trained', { genre: ['y'] }), service.itemVector('untrained', { genre: ['y'] }));
  assert.deepEqual(service.counts, { indexed: 3, unchanged: 2, retrieved: 0 });
});
