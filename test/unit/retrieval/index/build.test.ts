import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRetrievalSnapshot } from '../../../../retrieval/index/build.js';
import { RetrievalService } from '../../../../serving/retrieve.js';
import type { LabelledEvent } from '../../../../schemas/types.js';

const featuresOf = (i: number): Record<string, string[]> => ({ genre: [`g${i % 4}`], title: [`w${i}`] });

test('a built snapshot serves: every item indexed with the vector the loaded towers give it; retrieve excludes the history', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'thaw-retrieval-build-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const events: LabelledEvent[] = [];
  for (let n = 0; n < 400; n++) {
    const u = n % 20;
    const item = (u % 4) + 4 * ((Math.floor(n / 20) + u) % 10);
    events.push({ eventId: `e${n}`, timeMs: 1_000 + n, userId: `u${u}`, itemId: `i${item}`, label: n % 5 === 0 ? 0 : 1, userFeatures: { taste: [`t${u % 4}`] }, itemFeatures: featuresOf(item) });
  }
  const res = await buildRetrievalSnapshot(events, dir, { encoder: { epochs: 2, dim: 16, itemBuckets: 1024, userBuckets: 256, batchSize: 32 } });
  assert.equal(res.items, 40);
  assert.equal(res.events, 400);
  const service = await RetrievalService.load(dir);
  assert.equal(service.index.stats().items, 40);
  for (const i of [0, 13, 39]) assert.deepEqual(service.index.vectorOf(`i${i}`), service.itemVector(`i${i}`, featuresOf(i)), `i${i}: trained id row used`);
  // A brand-new item's vector comes from its features alone: not the vector of a known item with the same features.
  assert.notDeepEqual(service.itemVector('brand-new', featuresOf(0)), service.itemVector('i0', featuresOf(0)));
  const hits = service.retrieve({ features: { taste: ['t1'] }, history: ['i1', 'i5'], k: 10 });
  assert.equal(hits.ids.length, 10);
  assert.equal(new Set(hits.ids).size, 10);
  assert.ok(!hits.ids.includes('i1') && !hits.ids.includes('i5'));
  const withHistory = service.retrieve({ features: { taste: ['t1'] }, history: ['i1', 'i5'], k: 40, excludeHistory: false });
  assert.equal(withHistory.ids.length, 40);
});
