import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { bucketMetrics, priorCounts } from '../../../bench/peer-vw/evaluate.js';
import { adaptersOfSide, PEER_ADAPTERS, runThawSide } from '../../../bench/peer-vw/thaw-peer.js';
import { initBackend } from '../../../models/backend.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { SyntheticStream } from '../../../sources/synthetic.js';

await initBackend('cpu');

// A small stream with few entities, so the first half holds what the trainers need (trainers/history.ts
// HISTORY_MINIMUM: 20 hot entities, 1,000 rows): 22 items and 33 users with 20+ events.
const events: LabelledEvent[] = [];
for await (const e of new SyntheticStream({ events: 4000, users: 50, items: 35, seed: 3 })) events.push(e);
const trainN = 2000;
const labels = Uint8Array.from(events, (e) => e.label);
const metaTrain = { epochs: 1, metaEpochs: 1, searchEpochs: 1, minEvents: 20, dim: 4 };
const dir = join(tmpdir(), `thaw-peer-meta-${randomUUID()}`);
after(() => rm(dir, { recursive: true, force: true }));

test('PEER_ADAPTERS: meta-learned adapters and their none run on their side only', () => {
  const all = Object.keys(PEER_ADAPTERS);
  assert.deepEqual(adaptersOfSide(all, 'item'), ['none', 'fm-adagrad', 'none-emerg', 'emerg']);
  assert.deepEqual(adaptersOfSide(all, 'user'), ['none', 'fm-adagrad', 'none-coldnas', 'coldnas', 'none-fixed-adaptive', 'fixed-adaptive']);
});

for (const side of ['item', 'user'] as const) {
  test(`runThawSide ${side}: every meta-learned adapter and its none score every event, same cold start, releases reused`, async () => {
    const prior = priorCounts(events, side);
    const names = Object.keys(PEER_ADAPTERS).filter((n) => n !== 'fm-adagrad');
    const first = await runThawSide(events, prior, { side, adapters: names, trainN, batchSize: 200, metaTrain, releaseDir: dir });
    const expected = adaptersOfSide(names, side);
    assert.deepEqual(first.runs.map((r) => r.adapter), expected);
    const kinds = side === 'item' ? ['emerg'] : ['coldnas', 'fixed-adaptive'];
    assert.deepEqual(first.releases.map((r) => r.kind), kinds);
    for (const info of first.releases) {
      assert.equal(info.reused, false);
      assert.ok(info.hotEntities > 0 && info.trainRows >= 20 * info.hotEntities, JSON.stringify(info));
    }
    const byName = new Map(first.runs.map((r) => [r.adapter, r]));
    for (const r of first.runs) {
      assert.ok(r.scores.every((s) => Number.isFinite(s) && s > 0 && s < 1), `${r.adapter}: scores in (0, 1)`);
      const m = bucketMetrics(r.scores, labels, prior, trainN);
      assert.ok(Number.isFinite(m['1-5'].auc) && m['1-5'].n > 0, `${r.adapter}: early AUC ${m['1-5'].auc}`);
    }
    for (const kind of kinds) {
      const adapted = byName.get(kind)!;
      const frozen = byName.get(`none-${kind}`)!;
      assert.equal(adapted.release, frozen.release, `${kind} and its none run on the same release`);
      assert.match(adapted.release, new RegExp(`^peer-${kind}/`));
      // Never-seen entities are scored from the same initial state; later ones differ (adaptation).
      let differ = 0;
      for (let j = 0; j < events.length; j++) {
        if (prior[j] === 0) assert.ok(Math.abs(adapted.scores[j]! - frozen.scores[j]!) < 1e-4, `${kind} at ${j}: cold-start score differs from its none`);
        else if (Math.abs(adapted.scores[j]! - frozen.scores[j]!) > 1e-6) differ++;
      }
      assert.ok(differ > 0, `${kind} never moved away from its frozen baseline`);
    }
    // Same prefix and options: the releases are reused, the scores identical.
    const again = await runThawSide(events, prior, { side, adapters: kinds, trainN, batchSize: 200, metaTrain, releaseDir: dir });
    assert.ok(again.releases.every((r) => r.reused));
    for (const r of again.runs) assert.deepEqual([...r.scores], [...byName.get(r.adapter)!.scores]);
  });
}
