/**
 * A new item tower (a new retrieval snapshot in the served directory) rebuilds the index: every item
 * whose features the service holds is re-encoded by the new tower, the old towers and index serve
 * until the swap, items indexed during the rebuild are not lost, and a broken snapshot leaves the
 * one in use serving.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { AnnIndex } from '../../../retrieval/index/ann-index.js';
import { saveRetrievalSnapshot } from '../../../retrieval/index/encoder-snapshot.js';
import { DualEncoder } from '../../../retrieval/towers.js';
import type { Features } from '../../../schemas/types.js';
import { RetrievalReloader } from '../../../serving/retrieve-reload.js';
import { RetrievalService } from '../../../serving/retrieve.js';

const DIM = 8;
const features = (i: number): Features => ({ genre: [`g${i % 4}`], title: [`w${i % 9}`] });

/** A snapshot of `encoder` whose index holds items `from`..`to` - 1, encoded from their features. */
async function writeSnapshot(dir: string, encoder: DualEncoder, from: number, to: number): Promise<void> {
  const index = await AnnIndex.create({ dim: DIM });
  const out = new Float32Array(DIM);
  for (let i = from; i < to; i++) {
    encoder.itemForward(encoder.itemInput(`i${i}`, features(i)), false, out, 0);
    index.upsertSealed(`i${i}`, out);
  }
  saveRetrievalSnapshot(dir, encoder, [], index);
}

function vectorBy(encoder: DualEncoder, id: string, f: Features): Float32Array {
  const out = new Float32Array(DIM);
  encoder.itemForward(encoder.itemInput(id, f), false, out, 0);
  return out;
}

void test('a new item tower: items re-encoded from their features, old index serving until the swap, nothing indexed meanwhile lost', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'thaw-rebuild-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const oldTower = new DualEncoder({ dim: DIM, itemBuckets: 512, userBuckets: 32, seed: 1 });
  await writeSnapshot(dir, oldTower, 0, 30);
  const service = await RetrievalService.load(dir, { sealMinItems: 1 });
  service.start();
  t.after(() => service.stop());
  // The Kafka indexer's view: profiles of items 0..39 (30..39 new since the snapshot).
  for (let i = 0; i < 40; i++) service.indexItem(`i${i}`, features(i), 'profile');
  const reloader = new RetrievalReloader({ dir, service, pollMs: 0, rebuild: { chunk: 4, sealBudgetMs: 1 } });
  await reloader.start();
  assert.equal(await reloader.check(), undefined, 'the same snapshot: nothing to do');

  // A new tower, whose snapshot holds items 0..19 only.
  const newTower = new DualEncoder({ dim: DIM, itemBuckets: 512, userBuckets: 32, seed: 2 });
  await writeSnapshot(dir, newTower, 0, 20);
  const oldIndex = service.index;
  const oldEncoder = service.encoder;
  const rebuilding = reloader.check();
  while (!service.rebuilding) await nextTurn();
  await nextTurn();
  assert.equal(service.encoder, oldEncoder, 'the old towers serve while the rebuild runs');
  assert.equal(service.index, oldIndex);
  // Indexed during the rebuild: a brand-new item and a changed profile.
  service.indexItem('late', features(7), 'profile');
  service.indexItem('i3', features(5), 'profile');
  const result = await rebuilding;
  assert.ok(result !== undefined);
  assert.notEqual(service.encoder, oldEncoder);
  assert.deepEqual(service.encoder.itemTable, newTower.itemTable, 'the new towers serve');
  assert.notEqual(service.index, oldIndex);
  assert.deepEqual([result.snapshotItems, result.oldItems, result.newItems], [20, 41, 41]);
  assert.equal(result.unchanged, 20, 'the snapshot already held 0..19 with these vectors');
  assert.equal(result.reencoded, 42, 'all 40, then the two indexed during the rebuild');
  for (let i = 0; i < 40; i++) {
    const f = i === 3 ? features(5) : features(i);
    assert.deepEqual(service.index.vectorOf(`i${i}`), vectorBy(newTower, `i${i}`, f), `i${i}`);
  }
  assert.deepEqual(service.index.vectorOf('late'), vectorBy(newTower, 'late', features(7)));
  assert.equal(service.index.growingCount, 2, 'sealed before the swap, but for the two indexed during the rebuild (searched exactly, sealed after)');
  // Search under the new tower equals exact search over the new vectors (scores: equal vectors tie).
  const ids = [...Array.from({ length: 40 }, (_, i) => `i${i}`), 'late'];
  const user = service.userVector({ age: ['30'] }, []);
  const exact = ids
    .map((id) => (service.index.vectorOf(id) ?? new Float32Array(DIM)).reduce((sum, x, j) => sum + x * (user[j] ?? 0), 0))
    .sort((a, b) => b - a)
    .slice(0, 10);
  const hits = service.retrieve({ features: { age: ['30'] }, history: [], k: 10 });
  assert.equal(hits.ids.length, 10);
  hits.scores.forEach((score, r) => assert.ok(Math.abs(score - (exact[r] ?? NaN)) < 1e-5, `rank ${r}: ${score} vs ${exact[r]}`));
  assert.equal(reloader.counts.rebuilds, 1);

  // A broken snapshot: logged and counted; the one in use keeps serving.
  writeFileSync(join(dir, 'encoder', 'meta.json'), '{"format": 99}');
  assert.equal(await reloader.check(), undefined);
  assert.equal(reloader.counts.failed, 1);
  assert.deepEqual(service.encoder.itemTable, newTower.itemTable);
  await reloader.stop();
});
