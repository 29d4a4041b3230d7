/**
 * POST /v1/recommend over real HTTP, with entity states in real Redis and the item catalogue's
 * profiles on a real Kafka topic: the indexer reads the profiles (the features candidates are ranked
 * with) and indexes a brand-new item; the recommendation's top n are /v1/retrieve's k candidates
 * scored by /v1/score and sorted, for a warm user and for a user without state (the cold path).
 * A server without an index answers 503 RETRIEVAL_UNAVAILABLE. Own key prefix and topics.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FmAdagradAdapter } from '../../../adapters/fm-adagrad.js';
import { silentLogger } from '../../../lib/log.js';
import { entityKey } from '../../../model-store/keys.js';
import { createRedis } from '../../../model-store/redis.js';
import { encodeState } from '../../../model-store/state-codec.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { AnnIndex } from '../../../retrieval/index/ann-index.js';
import { saveRetrievalSnapshot } from '../../../retrieval/index/encoder-snapshot.js';
import { DualEncoder } from '../../../retrieval/towers.js';
import type { Features, LabelledEvent } from '../../../schemas/types.js';
import { ScoringPipeline } from '../../../serving/pipeline.js';
import { fixedRelease, servingRelease } from '../../../serving/release.js';
import { RetrievalIndexer } from '../../../serving/retrieve-indexer.js';
import { RetrievalService } from '../../../serving/retrieve.js';
import { startScoringServer } from '../../../serving/server.js';
import { RedisStateSource } from '../../../serving/state-source.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { defaultSerde } from '../../../streams/serde.js';
import { conn, REDIS_URL, uniqueName, waitFor } from '../streams/helpers.js';

const DIM = 16;
const ITEMS = 60;
const fm = FactorizationMachine.create({ buckets: 4096, k: 4, seed: 11, initStd: 0.3, release: 'fm/rec-int' });
const itemFeatures = (i: number): Features => ({ genre: [`g${i % 6}`], title: [`w${i % 13}`, `w${(i * 5) % 17}`] });
const NEW_FEATURES: Features = { genre: ['g-new'], title: ['okapi'] };

function learned(side: 'user' | 'item', seed: number, features: Features): Float32Array {
  const a = new FmAdagradAdapter(side, fm);
  const ev = (i: number): LabelledEvent => ({ eventId: `e${i}`, timeMs: i, userId: 'u', itemId: 'i', label: (i * seed) % 3 === 0 ? 1 : 0, userFeatures: { age: ['40'] }, itemFeatures: features });
  const st = a.initialState(ev(0));
  for (let i = 0; i < 3 + (seed % 4); i++) a.predictThenAdapt({ events: [ev(i)], states: [st] });
  return st;
}

interface Recommended {
  retrieved: number;
  user: { source: string };
  items: { id: string; score: number; retrievalScore: number; source: string }[];
}

void test('POST /v1/recommend over HTTP, Redis and Kafka equals retrieve then score then sort', { timeout: 120_000 }, async (t) => {
  const prefix = `test-rec-${randomUUID()}`;
  const redis = createRedis({ url: REDIS_URL });
  t.after(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });
  // States in Redis: a warm user, and every third catalogue item.
  const release = servingRelease(fm, 'v1', Date.now(), undefined, { keyPrefix: prefix, namespace: 'live', safeguard: 'off' });
  await redis.set(entityKey(release.userPrefix, 'warm-user'), encodeState({ count: 4, lastOffset: 3, lastEventMs: 9, params: learned('user', 1, {}) }));
  for (let i = 0; i < ITEMS; i += 3)
    await redis.set(entityKey(release.itemPrefix, `item${i}`), encodeState({ count: 2, lastOffset: 1, lastEventMs: 9, params: learned('item', i + 2, itemFeatures(i)) }));

  // A snapshot of the catalogue's vectors (the snapshot holds no features), plus an anchor sharing the new item's features.
  const dir = mkdtempSync(join(tmpdir(), 'thaw-recommend-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const encoder = new DualEncoder({ dim: DIM, itemBuckets: 4096, userBuckets: 256, seed: 9 });
  const index = await AnnIndex.create({ dim: DIM });
  const out = new Float32Array(DIM);
  const add = (id: string, features: Features): void => {
    encoder.itemForward(encoder.itemInput(id, features), false, out, 0);
    index.upsertSealed(id, out);
  };
  for (let i = 0; i < ITEMS; i++) add(`item${i}`, itemFeatures(i));
  add('anchor', NEW_FEATURES);
  saveRetrievalSnapshot(dir, encoder, [], index);
  const service = await RetrievalService.load(dir);
  service.start();
  t.after(() => service.stop());

  // The catalogue's profiles and a brand-new item's on Kafka: the indexer learns their features.
  const profileTopic = uniqueName('recommend-profiles');
  await ensureTopics(conn, [{ topic: profileTopic, partitions: 2 }]);
  t.after(() => deleteTopics(conn, [profileTopic]));
  const producer = new EventProducer({ kafka: conn });
  await producer.connect();
  t.after(() => producer.close());
  const serde = defaultSerde();
  const profiles = [...Array.from({ length: ITEMS }, (_, i) => ({ id: `item${i}`, features: itemFeatures(i) })), { id: 'anchor', features: NEW_FEATURES }, { id: 'brand-new', features: NEW_FEATURES }];
  await producer.send(
    profileTopic,
    profiles.map((p) => ({ key: p.id, value: serde.encodeProfile({ side: 'item', entityId: p.id, timeMs: Date.now(), features: p.features }) })),
  );
  const indexer = new RetrievalIndexer({ kafka: conn, service, profileTopic, eventTopic: uniqueName('recommend-absent'), groupPrefix: uniqueName('recommend-group'), logger: silentLogger });
  await indexer.start();
  t.after(() => indexer.stop());
  await waitFor('every profile read', () => indexer.counts.records >= profiles.length, 60_000);
  assert.equal(service.index.stats().items, ITEMS + 2);

  const pipeline = new ScoringPipeline({
    source: new RedisStateSource({ url: REDIS_URL }),
    releases: fixedRelease(release),
    serving: { safeguard: 'off', defaultDeadlineMs: 10_000 },
    defaultMetrics: false,
  });
  const server = await startScoringServer(pipeline, { retrieval: { service, limits: { maxK: 200, maxHistory: 10 } } });
  t.after(() => server.stop());
  const post = async (base: string, url: string, body: unknown): Promise<{ status: number; json: unknown }> => {
    const res = await fetch(base + url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: await res.json() };
  };
  const featuresOf = (id: string): Features => profiles.find((p) => p.id === id)?.features ?? {};

  for (const user of [
    { id: 'warm-user', features: { age: ['40'] }, history: ['anchor'] },
    { id: `cold-${randomUUID()}`, features: { age: ['19'] } },
  ]) {
    const k = 25;
    const n = 8;
    const retrieved = (await post(server.address, '/v1/retrieve', { user, k })).json as { ids: string[]; scores: number[] };
    assert.equal(retrieved.ids.length, k);
    const scored = await post(server.address, '/v1/score', { user: { id: user.id, features: user.features }, candidates: retrieved.ids.map((id) => ({ id, features: featuresOf(id) })) });
    assert.equal(scored.status, 200);
    const scores = (scored.json as { scores: { id: string; score: number; source: string }[] }).scores;
    const expected = scores
      .map((s, i) => ({ ...s, retrievalScore: retrieved.scores[i] ?? NaN, rank: i }))
      .sort((a, b) => b.score - a.score || a.rank - b.rank)
      .slice(0, n);
    const res = await post(server.address, '/v1/recommend', { user, k, n });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const got = res.json as Recommended;
    assert.equal(got.retrieved, k);
    assert.equal(got.user.source, user.id === 'warm-user' ? 'fresh' : 'cold');
    assert.deepEqual(
      got.items.map((it) => it.id),
      expected.map((e) => e.id),
    );
    got.items.forEach((it, r) => {
      const want = expected[r];
      assert.ok(want !== undefined && Math.abs(it.score - want.score) < 1e-6, `${it.id}: ${it.score} vs ${want?.score}`);
      assert.ok(Math.abs(it.retrievalScore - want.retrievalScore) < 1e-6, `${it.id}: retrieval ${it.retrievalScore} vs ${want.retrievalScore}`);
      assert.equal(it.source, want.source);
    });
    assert.deepEqual(new Set(scores.map((s) => s.source)), new Set(['fresh', 'cold']), 'candidates with and without a stored state');
    // The warm user's history anchor is excluded and the brand-new item (Kafka only) is its closest candidate.
    if (user.id === 'warm-user') assert.equal(retrieved.ids[0], 'brand-new');
  }

  const tooMany = await post(server.address, '/v1/recommend', { user: { id: 'warm-user' }, k: 5, n: 6 });
  assert.equal(tooMany.status, 400);
  assert.deepEqual((tooMany.json as { error: { code: string; field: string } }).error, { ...(tooMany.json as { error: object }).error, code: 'REQUEST_INVALID', field: 'n' });

  // A server without an index: 503 with a code.
  const bare = await startScoringServer(
    new ScoringPipeline({ source: new RedisStateSource({ url: REDIS_URL }), releases: fixedRelease(release), serving: { safeguard: 'off' }, defaultMetrics: false }),
  );
  t.after(() => bare.stop());
  const unavailable = await post(bare.address, '/v1/recommend', { user: { id: 'warm-user' }, k: 5, n: 2 });
  assert.equal(unavailable.status, 503);
  assert.equal((unavailable.json as { error: { code: string } }).error.code, 'RETRIEVAL_UNAVAILABLE');
});
