import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnnIndex } from '../../../../retrieval/index/ann-index.js';
import { topK } from '../../../../retrieval/exact-search.js';
import { dot4 } from '../../../../retrieval/index/growing.js';
import { ClusteredVectors } from '../../../../bench/retrieval/vectors.js';

const DIM = 16;

function row(rows: Float32Array, i: number): Float32Array {
  return rows.subarray(i * DIM, (i + 1) * DIM);
}

/** Exact top-k ids over `live` (id → vector). */
function exact(live: Map<string, Float32Array>, q: Float32Array, k: number): string[] {
  const ids = [...live.keys()];
  const all = new Float32Array(ids.length * DIM);
  ids.forEach((id, i) => all.set(live.get(id) ?? new Float32Array(DIM), i * DIM));
  const scores = new Float32Array(ids.length);
  for (let i = 0; i < ids.length; i++) scores[i] = dot4(all, i, q, DIM);
  return [...topK(scores, k)].map((i) => ids[i] ?? '');
}

function recall(found: readonly string[], truth: readonly string[]): number {
  const t = new Set(truth);
  return found.filter((id) => t.has(id)).length / truth.length;
}

test('recall@10 against exact search on a clustered set: sealed graph, growing segment, and a mix', async () => {
  const gen = new ClusteredVectors({ dim: DIM, clusters: 20, seed: 3 });
  const items = gen.next(3000);
  const queries = gen.next(50);
  for (const mode of ['sealed', 'growing', 'mixed'] as const) {
    const index = await AnnIndex.create({ dim: DIM, efSearch: 64 });
    const live = new Map<string, Float32Array>();
    for (let i = 0; i < 3000; i++) {
      const v = row(items, i);
      if (mode === 'sealed' || (mode === 'mixed' && i % 2 === 0)) index.upsertSealed(`i${i}`, v);
      else index.upsert(`i${i}`, v);
      live.set(`i${i}`, v);
    }
    let sum = 0;
    for (let q = 0; q < 50; q++) {
      const query = row(queries, q);
      const hits = index.search(query, 10);
      assert.equal(hits.ids.length, 10);
      assert.equal(new Set(hits.ids).size, 10, 'no id twice');
      for (let i = 1; i < hits.scores.length; i++) assert.ok((hits.scores[i - 1] ?? 0) >= (hits.scores[i] ?? 0), 'best first');
      sum += recall(hits.ids, exact(live, query, 10));
    }
    const mean = sum / 50;
    if (mode === 'growing') assert.equal(mean, 1, 'the growing segment is exact');
    else assert.ok(mean >= 0.95, `${mode}: recall@10 ${mean}`);
  }
});

test('an item is found whether it sits in the growing segment or in the graph, never twice, through sealing', async () => {
  const gen = new ClusteredVectors({ dim: DIM, clusters: 10, seed: 5 });
  const items = gen.next(500);
  const index = await AnnIndex.create({ dim: DIM, initialCapacity: 16 });
  for (let i = 0; i < 400; i++) index.upsertSealed(`i${i}`, row(items, i));
  for (let i = 400; i < 500; i++) index.upsert(`i${i}`, row(items, i));
  assert.deepEqual(index.stats(), { items: 500, growing: 100, sealed: 400, tombstones: 0, capacity: index.stats().capacity });
  const probe = ['i3', 'i450', 'i499'];
  const check = (): void => {
    for (const id of probe) {
      const v = index.vectorOf(id);
      assert.ok(v, `${id} live`);
      const hits = index.search(v, 20);
      assert.equal(hits.ids[0], id, `${id} is its own nearest neighbour`);
      assert.equal(hits.ids.filter((h) => h === id).length, 1, `${id} once`);
      assert.equal(new Set(hits.ids).size, hits.ids.length);
    }
  };
  check();
  while (index.growingCount > 0) {
    index.sealSome(7);
    check();
  }
  assert.equal(index.stats().sealed, 500);
  assert.ok(index.stats().capacity >= 500, 'the graph grew past its initial capacity');
});

test('deletes are honoured in both parts; a re-insert replaces the vector', async () => {
  const gen = new ClusteredVectors({ dim: DIM, clusters: 5, seed: 9 });
  const items = gen.next(200);
  const index = await AnnIndex.create({ dim: DIM });
  for (let i = 0; i < 100; i++) index.upsertSealed(`i${i}`, row(items, i));
  for (let i = 100; i < 200; i++) index.upsert(`i${i}`, row(items, i));
  assert.equal(index.delete('i5'), true);
  assert.equal(index.delete('i150'), true);
  assert.equal(index.delete('i150'), false);
  assert.equal(index.delete('nope'), false);
  for (const id of ['i5', 'i150']) {
    const q = id === 'i5' ? row(items, 5) : row(items, 150);
    assert.ok(!index.search(q, 200).ids.includes(id), `${id} deleted`);
    assert.equal(index.has(id), false);
  }
  assert.equal(index.search(row(items, 0), 500).ids.length, 198, 'every live item, no deleted one');
  // A changed vector: the old graph node is a tombstone, the new vector is found at once and after sealing.
  const moved = row(items, 150);
  index.upsert('i7', moved);
  assert.equal(index.stats().tombstones, 2);
  let hits = index.search(moved, 3);
  assert.equal(hits.ids[0], 'i7');
  assert.deepEqual(index.vectorOf('i7'), Float32Array.from(moved), 'the new vector replaced the old one');
  index.sealAll();
  hits = index.search(moved, 3);
  assert.equal(hits.ids[0], 'i7');
  assert.equal(hits.ids.filter((h) => h === 'i7').length, 1);
  assert.equal(index.stats().tombstones, 1, 'sealing revived i7’s node with its new vector');
  // A deleted id comes back.
  index.upsert('i5', row(items, 5));
  index.sealAll();
  assert.equal(index.search(row(items, 5), 1).ids[0], 'i5');
  assert.equal(index.stats().tombstones, 0);
  assert.equal(index.stats().items, 199);
});

test('bad input is refused with a stable code', async () => {
  const index = await AnnIndex.create({ dim: DIM });
  assert.throws(() => index.upsert('x', new Float32Array(3)), { code: 'USAGE' });
  assert.throws(() => index.search(new Float32Array(DIM), 0), { code: 'USAGE' });
  assert.deepEqual(index.search(new Float32Array(DIM), 5).ids, []);
  await assert.rejects(AnnIndex.create({ dim: 0 }), { code: 'CONFIG_INVALID' });
});

test('the background sealer empties the growing segment in chunks while searches run between them', async () => {
  const gen = new ClusteredVectors({ dim: DIM, clusters: 8, seed: 13 });
  const items = gen.next(600);
  const index = await AnnIndex.create({ dim: DIM, sealChunk: 16 });
  const { BackgroundSealer } = await import('../../../../retrieval/index/sealer.js');
  const sealer = new BackgroundSealer(index);
  sealer.start();
  for (let i = 0; i < 600; i++) index.upsert(`i${i}`, row(items, i));
  let searchesBetween = 0;
  while (index.growingCount > 0) {
    await new Promise((r) => setImmediate(r));
    const hits = index.search(row(items, 42), 5);
    assert.equal(hits.ids[0], 'i42');
    searchesBetween++;
  }
  sealer.stop();
  const s = sealer.stats();
  assert.equal(s.sealed, 600);
  assert.ok(s.chunks >= 600 / 16, `chunks of at most 16: ${s.chunks}`);
  assert.ok(searchesBetween >= 2);
  assert.equal(index.stats().sealed, 600);
  // Stopped: inserts stay in the growing segment.
  index.upsert('late', row(items, 0));
  await new Promise((r) => setImmediate(r));
  assert.equal(index.growingCount, 1);
});

test('a missing native library is INDEX_UNAVAILABLE, naming the fix', async () => {
  const { loadHnsw } = await import('../../../../retrieval/index/hnsw.js');
  await assert.rejects(loadHnsw('hnswlib-node-not-installed'), (err: Error & { code?: string }) => err.code === 'INDEX_UNAVAILABLE' && /npm install hnswlib-node@3/.test(err.message));
});
