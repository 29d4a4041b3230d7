import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnnIndex } from '../../../../retrieval/index/ann-index.js';
import { loadIndex, saveIndex } from '../../../../retrieval/index/snapshot.js';
import { ClusteredVectors } from '../../../../bench/retrieval/vectors.js';

const DIM = 16;

test('a snapshot (graph, growing segment, id map, tombstones) restores to bit-identical searches', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'thaw-ann-snap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const gen = new ClusteredVectors({ dim: DIM, clusters: 12, seed: 11 });
  const items = gen.next(1200);
  const index = await AnnIndex.create({ dim: DIM, efSearch: 40 });
  for (let i = 0; i < 1000; i++) index.upsertSealed(`i${i}`, items.subarray(i * DIM, (i + 1) * DIM));
  for (let i = 1000; i < 1200; i++) index.upsert(`i${i}`, items.subarray(i * DIM, (i + 1) * DIM));
  index.delete('i10');
  index.delete('i1100');
  index.upsert('i20', items.subarray(0, DIM)); // a changed vector: tombstone + growing
  saveIndex(index, dir);
  // A second save replaces the first atomically and leaves one snapshot.
  const second = saveIndex(index, dir);
  assert.deepEqual(readdirSync(dir).sort(), ['current', second.slice(dir.length + 1)].sort());
  assert.equal(readlinkSync(join(dir, 'current')), second.slice(dir.length + 1));

  const restored = await loadIndex(dir);
  assert.deepEqual(restored.stats(), index.stats());
  const queries = gen.next(40);
  for (let q = 0; q < 40; q++) {
    const query = queries.subarray(q * DIM, (q + 1) * DIM);
    const a = index.search(query, 50);
    const b = restored.search(query, 50);
    assert.deepEqual(b.ids, a.ids);
    assert.deepEqual(Buffer.from(b.scores.buffer), Buffer.from(a.scores.buffer), 'scores bit-identical');
    assert.ok(!a.ids.includes('i10') && !a.ids.includes('i1100'));
  }
  assert.deepEqual(restored.vectorOf('i20'), index.vectorOf('i20'));
  assert.equal(restored.has('i10'), false);
});

test('a missing or damaged snapshot is INDEX_CORRUPT', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'thaw-ann-snap-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await assert.rejects(loadIndex(dir), { code: 'INDEX_CORRUPT' });
  const index = await AnnIndex.create({ dim: DIM });
  index.upsert('a', new Float32Array(DIM).fill(0.25));
  const target = saveIndex(index, dir);
  writeFileSync(join(target, 'growing.f32'), Buffer.alloc(12));
  await assert.rejects(loadIndex(dir), { code: 'INDEX_CORRUPT' });
});
