/**
 * A brand-new item produced on Kafka (its profile, or its first labelled event) becomes retrievable
 * through POST /v1/retrieve for a user whose vector is close to it: the real indexer consumes real
 * topics (its own, created here) into a retrieval snapshot loaded from disk.
 *
 * The user's vector: a fresh encoder's history map is the identity, and a user without features is
 * the normalised mean of their history's vectors; a history of one catalogue item whose features
 * equal the new item's (neither trained on, so both vectors come from features alone) gives the
 * user exactly the new item's vector.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { silentLogger } from '../../../lib/log.js';
import { AnnIndex } from '../../../retrieval/index/ann-index.js';
import { saveRetrievalSnapshot } from '../../../retrieval/index/encoder-snapshot.js';
import { DualEncoder } from '../../../retrieval/towers.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { defaultSerde } from '../../../streams/serde.js';
import { RetrievalIndexer } from '../../../serving/retrieve-indexer.js';
import { registerRetrievalRoutes } from '../../../serving/retrieve-routes.js';
import { registerRetrievalMetrics } from '../../../serving/retrieve-metrics.js';
import { Registry } from 'prom-client';
import { RetrievalService } from '../../../serving/retrieve.js';
import { conn, uniqueName, waitFor } from '../streams/helpers.js';

const DIM = 16;
const NEW_FEATURES = { genre: ['g-rare'], title: ['zebra', 'quartet'] };
const EVENT_FEATURES = { genre: ['g-other'], title: ['walrus'] };

interface Answer {
  ids: string[];
  scores: number[];
  indexItems: number;
}

void test('a new item produced on Kafka is retrievable through /v1/retrieve; bad requests name their field', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'thaw-retrieve-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A snapshot: a fresh encoder and 300 catalogue items, two of them anchors sharing a new item's features.
  const encoder = new DualEncoder({ dim: DIM, itemBuckets: 4096, userBuckets: 256, seed: 5 });
  const index = await AnnIndex.create({ dim: DIM });
  const out = new Float32Array(DIM);
  const add = (id: string, features: Record<string, string[]>): void => {
    encoder.itemForward(encoder.itemInput(id, features), false, out, 0);
    index.upsertSealed(id, out);
  };
  for (let i = 0; i < 300; i++) add(`i${i}`, { genre: [`g${i % 12}`], title: [`w${i % 37}`, `w${(i * 7) % 41}`] });
  add('anchor-profile', NEW_FEATURES);
  add('anchor-event', EVENT_FEATURES);
  saveRetrievalSnapshot(dir, encoder, [], index);

  const service = await RetrievalService.load(dir);
  service.start();
  t.after(() => service.stop());
  const profileTopic = uniqueName('retrieve-profiles');
  const eventTopic = uniqueName('retrieve-events');
  await ensureTopics(conn, [
    { topic: profileTopic, partitions: 2 },
    { topic: eventTopic, partitions: 2 },
  ]);
  t.after(() => deleteTopics(conn, [profileTopic, eventTopic]));
  const indexer = new RetrievalIndexer({ kafka: conn, service, profileTopic, eventTopic, groupPrefix: uniqueName('retrieve-group'), logger: silentLogger });
  await indexer.start();
  t.after(() => indexer.stop());

  const app = Fastify({ logger: false });
  const registry = new Registry();
  registerRetrievalRoutes(app, service, silentLogger, undefined, { observe: registerRetrievalMetrics(registry, service) });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  t.after(() => app.close());
  const retrieve = async (body: unknown): Promise<{ status: number; json: unknown }> => {
    const res = await fetch(`${address}/v1/retrieve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: await res.json() };
  };
  const forUser = async (anchor: string): Promise<Answer> => {
    const res = await retrieve({ user: { id: 'u1', history: [anchor] }, k: 5 });
    assert.equal(res.status, 200);
    return res.json as Answer;
  };

  // Before: the new items are not there.
  const before = await forUser('anchor-profile');
  assert.equal(before.ids.length, 5);
  assert.ok(!before.ids.includes('brand-new-item'));
  assert.ok(!before.ids.includes('anchor-profile'), 'the history is excluded');

  const producer = new EventProducer({ kafka: conn });
  await producer.connect();
  t.after(() => producer.close());
  const serde = defaultSerde();
  const now = Date.now();
  await producer.send(profileTopic, [
    { key: 'u9', value: serde.encodeProfile({ side: 'user', entityId: 'u9', timeMs: now, features: { age: ['30'] } }) },
    { key: 'brand-new-item', value: serde.encodeProfile({ side: 'item', entityId: 'brand-new-item', timeMs: now, features: NEW_FEATURES }) },
  ]);
  let answer: Answer = before;
  await waitFor('brand-new-item retrievable', async () => (answer = await forUser('anchor-profile')).ids.includes('brand-new-item'), 60_000);
  assert.equal(answer.ids[0], 'brand-new-item', 'the closest item to the user');
  assert.ok(Math.abs((answer.scores[0] ?? 0) - 1) < 1e-5, `score ${answer.scores[0]}`);
  assert.equal(answer.ids.filter((id) => id === 'brand-new-item').length, 1);
  assert.equal(answer.indexItems, 303);

  // Its first labelled event indexes an item without a profile.
  await producer.send(eventTopic, [
    { key: 'brand-new-2', value: serde.encodeLabelled({ eventId: 'e1', timeMs: now, userId: 'u1', itemId: 'brand-new-2', label: 1, userFeatures: {}, itemFeatures: EVENT_FEATURES }) },
  ]);
  await waitFor('brand-new-2 retrievable', async () => (answer = await forUser('anchor-event')).ids.includes('brand-new-2'), 60_000);
  assert.equal(answer.ids[0], 'brand-new-2');
  assert.equal(indexer.counts.ignored, 1, 'the user profile is not indexed');

  // Sealed or not, it stays found once.
  service.index.sealAll();
  answer = await forUser('anchor-profile');
  assert.equal(answer.ids[0], 'brand-new-item');
  assert.equal(answer.ids.filter((id) => id === 'brand-new-item').length, 1);
  const metrics = await registry.metrics();
  assert.match(metrics, /thaw_retrieval_index_items\{part="sealed"\} 304\n/);
  assert.match(metrics, /thaw_retrieval_index_items\{part="growing"\} 0\n/);
  assert.match(metrics, /thaw_retrieval_index_writes\{outcome="indexed"\} 2\n/);
  const count = /thaw_serve_retrieve_seconds_count (\d+)/.exec(metrics)?.[1];
  assert.ok(Number(count) >= 4, `retrievals observed: ${count}`);

  // Bad input: 400 naming the field.
  for (const [body, field] of [
    [{ user: { id: 'u1' } }, 'k'],
    [{ user: { id: 'u1' }, k: 0 }, 'k'],
    [{ user: { id: 'u1', history: 'x' }, k: 3 }, 'user.history'],
    [{ user: { id: 7 }, k: 3 }, 'user.id'],
    [{ user: { id: 'u1', features: { genre: [1] } }, k: 3 }, 'user.features.genre[0]'],
    [{ user: { id: 'u1' }, k: 3, extra: 1 }, 'extra'],
  ] as const) {
    const res = await retrieve(body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal((res.json as { error: { field: string; code: string } }).error.field, field);
    assert.equal((res.json as { error: { code: string } }).error.code, 'REQUEST_INVALID');
  }
});
