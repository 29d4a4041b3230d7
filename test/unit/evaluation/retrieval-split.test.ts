import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LabelledEvent } from '../../../schemas/types.js';
import { buildRetrievalSplit } from '../../../evaluation/retrieval/split.js';

function ev(timeMs: number, userId: string, itemId: string, label: 0 | 1): LabelledEvent {
  return { eventId: `${userId}-${itemId}-${timeMs}`, timeMs, userId, itemId, label, userFeatures: { gender: ['F'] }, itemFeatures: { genres: [`g${itemId}`] } };
}

test('the temporal split: the first 80 % of events by time train, cold items are first seen after the cut', () => {
  // Given out of time order on purpose.
  const events = [
    ev(9, 'u1', 'c', 1), // test: a cold item
    ev(1, 'u1', 'a', 1),
    ev(2, 'u2', 'a', 0),
    ev(3, 'u2', 'b', 1),
    ev(4, 'u1', 'b', 0),
    ev(5, 'u3', 'a', 1),
    ev(6, 'u3', 'b', 1),
    ev(7, 'u1', 'd', 1),
    ev(8, 'u2', 'd', 1), // cut is 8 events: this is the last training event
    ev(10, 'u2', 'a', 1), // test: seen by u2 in training (label 0), so not relevant
    ev(10, 'u3', 'c', 0), // test negative
    ev(10, 'u2', 'c', 1), // test: cold item for u2
  ];
  const s = buildRetrievalSplit(events, 8 / 12);
  assert.equal(s.train.length, 8);
  const maxTrain = Math.max(...s.train.map((t) => t.timeMs));
  assert.ok(maxTrain <= s.cutMs, 'no test event before the cut');
  assert.equal(s.cutMs, 9);
  const byId = new Map(s.items.map((it, i) => [it.id, { ...it, i }]));
  assert.deepEqual(
    s.items.map((it) => [it.id, it.cold]),
    [
      ['a', false],
      ['b', false],
      ['d', false],
      ['c', true],
    ],
  );
  const u1 = s.testUsers.find((u) => u.userId === 'u1');
  const u2 = s.testUsers.find((u) => u.userId === 'u2');
  assert.ok(u1 && u2);
  assert.equal(s.testUsers.length, 2, 'u3 has no test positive');
  const idx = (id: string): number => byId.get(id)?.i ?? -1;
  assert.deepEqual([...u1.relevant], [idx('c')]);
  assert.deepEqual(u1.history, [idx('a'), idx('d')], 'training positives in time order');
  assert.deepEqual([...u1.seen].sort(), [idx('a'), idx('b'), idx('d')].sort());
  assert.deepEqual([...u2.relevant], [idx('c')], 'the item u2 saw in training is not relevant');
  assert.deepEqual(u2.history, [idx('b'), idx('d')]);
});

test('the protocol rows have exactly the documented JSON keys; popularity never retrieves a cold item', async () => {
  const { runRetrievalProtocol } = await import('../../../evaluation/retrieval/protocol.js');
  const events: LabelledEvent[] = [];
  for (let t = 0; t < 400; t++) events.push(ev(t, `u${t % 20}`, `i${t < 320 ? t % 80 : 80 + (t % 10)}`, t % 3 === 0 ? 0 : 1));
  const res = await runRetrievalProtocol(events, { models: ['popularity', 'item-feature-knn'] });
  assert.equal(res.coldItems, 10);
  assert.deepEqual(
    res.rows.map((r) => Object.keys(r)),
    Array(2).fill(['model', 'recall@10', 'recall@50', 'recall@100', 'ndcg@50', 'recall@50Cold', 'recall@50Warm']),
  );
  assert.deepEqual(
    res.rows.map((r) => r.model),
    ['popularity', 'item-feature-knn'],
  );
  assert.equal(res.rows[0]?.['recall@50Cold'], 0);
});
