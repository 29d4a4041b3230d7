import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LabelledEvent } from '../../../schemas/types.js';
import { trainFmRanker } from '../../../evaluation/retrieval/fm-ranker.js';

test('the FM ranker keeps its hot entities: a user who liked everything outscores one who liked nothing, on the same item', async () => {
  const events: LabelledEvent[] = [];
  let t = 0;
  for (let round = 0; round < 40; round++) {
    for (let u = 0; u < 30; u++) {
      const item = `i${(u + round) % 20}`;
      // u0 likes everything, u1 nothing, the others alternate; the same features for every user.
      const label = u === 0 ? 1 : u === 1 ? 0 : (u + round) % 2 === 0 ? 1 : 0;
      events.push({ eventId: `e${t}`, timeMs: t++, userId: `u${u}`, itemId: item, label, userFeatures: { gender: ['F'] }, itemFeatures: { genres: ['g'] } });
    }
  }
  const items = Array.from({ length: 21 }, (_, i) => ({ id: `i${i}`, features: { genres: ['g'] }, cold: i === 20 }));
  const ranker = await trainFmRanker(events, items, { epochs: 3 });
  const out = new Float32Array(2);
  ranker.score('u0', { gender: ['F'] }, [3, 20], out);
  const lover = [...out];
  ranker.score('u1', { gender: ['F'] }, [3, 20], out);
  const hater = [...out];
  assert.ok(lover.every((p) => p > 0 && p < 1) && hater.every((p) => p > 0 && p < 1));
  assert.ok((lover[0] ?? 0) > (hater[0] ?? 1) + 0.2, `lover ${lover[0]} vs hater ${hater[0]} on a known item`);
  assert.ok((lover[1] ?? 0) > (hater[1] ?? 1) + 0.2, `and on a brand-new item (its side's prior): ${lover[1]} vs ${hater[1]}`);
});
