/**
 * POST /v1/recommend over fastify's inject, with in-memory states (MapStateSource) and an in-memory
 * retrieval index: its top n are /v1/retrieve's k candidates scored by /v1/score and sorted; bad
 * input is 400 naming the field; a user without state takes the cold path; a server without an
 * index answers 503 RETRIEVAL_UNAVAILABLE. The same against real Redis, Kafka and HTTP:
 * test/integration/serving/recommend.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { FmAdagradAdapter } from '../../../adapters/fm-adagrad.js';
import { entityKey } from '../../../model-store/keys.js';
import { encodeState } from '../../../model-store/state-codec.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { AnnIndex } from '../../../retrieval/index/ann-index.js';
import { DualEncoder } from '../../../retrieval/towers.js';
import type { Features, LabelledEvent } from '../../../schemas/types.js';
import { ScoringPipeline } from '../../../serving/pipeline.js';
import { parseRecommendRequest } from '../../../serving/recommend-request.js';
import { rankOrder } from '../../../serving/recommend-routes.js';
import { fixedRelease, servingRelease } from '../../../serving/release.js';
import { RequestError } from '../../../serving/request.js';
import { RetrievalService } from '../../../serving/retrieve.js';
import { createScoringApp } from '../../../serving/server.js';
import { MapStateSource } from '../../../serving/state-source.js';

const fm = FactorizationMachine.create({ buckets: 4096, k: 4, seed: 7, initStd: 0.3, release: 'fm/rec' });

/** A learned state of `side` after a few events of `features`, via the adapter itself. */
function learned(side: 'user' | 'item', seed: number, features: Features): Float32Array {
  const a = new FmAdagradAdapter(side, fm);
  const ev = (i: number): LabelledEvent => ({
    eventId: `e${seed}-${i}`,
    timeMs: i,
    userId: 'u',
    itemId: 'i',
    label: (i * seed) % 3 === 0 ? 1 : 0,
    userFeatures: { age: ['30'] },
    itemFeatures: features,
  });
  const st = a.initialState(ev(0));
  for (let i = 0; i < 4 + (seed % 5); i++) a.predictThenAdapt({ events: [ev(i)], states: [st] });
  return st;
}

const itemFeatures = (i: number): Features => ({ genre: [`g${i % 5}`], title: [`w${i % 7}`, `w${(i * 3) % 11}`] });

interface Recommended {
  release: string;
  retrieved: number;
  user: { source: string };
  items: { id: string; score: number; retrievalScore: number; source: string }[];
}

/** A one-model server with 40 indexed items, half of them with a stored state, and user u1 warm. */
async function fixture(withRetrieval: boolean): Promise<{ app: FastifyInstance; pipeline: ScoringPipeline; service: RetrievalService }> {
  const release = servingRelease(fm, 'v1', Date.now(), undefined, { keyPrefix: 'unit-recommend', namespace: 'live', safeguard: 'off' });
  const values = new Map<string, Buffer>([[entityKey(release.userPrefix, 'u1'), encodeState({ count: 5, lastOffset: 4, lastEventMs: 5, params: learned('user', 1, {}) })]]);
  const encoder = new DualEncoder({ dim: 8, itemBuckets: 1024, userBuckets: 64, seed: 3 });
  const service = new RetrievalService(encoder, new Set(), await AnnIndex.create({ dim: 8 }));
  for (let i = 0; i < 40; i++) {
    service.indexItem(`i${i}`, itemFeatures(i), 'profile');
    if (i % 2 === 0) values.set(entityKey(release.itemPrefix, `i${i}`), encodeState({ count: 3, lastOffset: 2, lastEventMs: 5, params: learned('item', i + 2, itemFeatures(i)) }));
  }
  service.index.sealAll();
  const pipeline = new ScoringPipeline({
    source: new MapStateSource(values),
    releases: fixedRelease(release),
    serving: { maxCandidates: 30, defaultDeadlineMs: 10_000, safeguard: 'off' },
    defaultMetrics: false,
  });
  const app = createScoringApp(pipeline, undefined, withRetrieval ? { retrieval: { service, limits: { maxK: 100, maxHistory: 10 } } } : {});
  await pipeline.start();
  await app.ready();
  return { app, pipeline, service };
}

async function post(app: FastifyInstance, url: string, payload: unknown): Promise<{ status: number; json: unknown }> {
  const res = await app.inject({ method: 'POST', url, payload: payload as Record<string, unknown> });
  return { status: res.statusCode, json: JSON.parse(res.body) as unknown };
}

describe('POST /v1/recommend (inject, in-memory states and index)', () => {
  let app: FastifyInstance;
  let pipeline: ScoringPipeline;
  before(async () => ({ app, pipeline } = await fixture(true)));
  after(async () => {
    await app.close();
    await pipeline.stop();
  });

  for (const user of [
    { id: 'u1', features: { age: ['30'] }, history: ['i3', 'i8'] },
    { id: 'never-seen', features: { age: ['22'] } },
  ])
    test(`the top n are /v1/retrieve's k candidates scored by /v1/score and sorted (user ${user.id})`, async () => {
      const k = 20;
      const n = 7;
      const retrieved = await post(app, '/v1/retrieve', { user, k });
      assert.equal(retrieved.status, 200);
      const ids = (retrieved.json as { ids: string[]; scores: number[] }).ids;
      const retrievalScores = (retrieved.json as { scores: number[] }).scores;
      assert.equal(ids.length, k);
      const scored = await post(app, '/v1/score', { user: { id: user.id, features: user.features }, candidates: ids.map((id) => ({ id, features: itemFeatures(Number(id.slice(1))) })) });
      assert.equal(scored.status, 200);
      const scores = (scored.json as { scores: { id: string; score: number; source: string }[] }).scores;
      const expected = scores
        .map((s, i) => ({ ...s, retrievalScore: retrievalScores[i] ?? NaN, rank: i }))
        .sort((a, b) => b.score - a.score || a.rank - b.rank)
        .slice(0, n);
      const res = await post(app, '/v1/recommend', { requestId: 'r1', user, k, n });
      assert.equal(res.status, 200, JSON.stringify(res.json));
      const out = res.json as Recommended;
      assert.equal(out.release, 'fm/rec');
      assert.equal(out.retrieved, k);
      assert.deepEqual(
        out.items.map((it) => it.id),
        expected.map((e) => e.id),
      );
      for (let r = 0; r < n; r++) {
        const got = out.items[r];
        const want = expected[r];
        assert.ok(got !== undefined && want !== undefined);
        assert.ok(Math.abs(got.score - want.score) < 1e-6, `${got.id}: ${got.score} vs ${want.score}`);
        assert.ok(Math.abs(got.retrievalScore - want.retrievalScore) < 1e-6, `${got.id}: retrieval ${got.retrievalScore} vs ${want.retrievalScore}`);
        assert.equal(got.source, want.source);
      }
      // Both kinds of candidates were ranked: with a stored state (fresh) and without (cold).
      assert.deepEqual(new Set(scores.map((s) => s.source)), new Set(['fresh', 'cold']));
      assert.equal(out.user.source, user.id === 'u1' ? 'fresh' : 'cold');
    });

  test('bad input: 400 REQUEST_INVALID naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ user: { id: 'u1' }, k: 5, n: 6 }, 'n'],
      [{ user: { id: 'u1' }, k: 5 }, 'n'],
      [{ user: { id: 'u1' }, k: 5, n: 0 }, 'n'],
      [{ user: { id: 'u1' }, k: 5, n: 1.5 }, 'n'],
      [{ user: { id: 'u1' }, n: 1 }, 'k'],
      [{ user: { id: 'u1' }, k: 31, n: 1 }, 'k'], // the model's maxCandidates (30) bounds k below the retrieval limit
      [{ user: { id: 'u1', history: 'i1' }, k: 5, n: 1 }, 'user.history'],
      [{ user: { id: 'u1' }, k: 5, n: 1, candidates: [] }, 'candidates'],
      [{ user: { id: 'u1' }, k: 5, n: 1, context: 3 }, 'context'],
      [{ k: 5, n: 1 }, 'user'],
    ];
    for (const [payload, field] of cases) {
      const res = await post(app, '/v1/recommend', payload);
      assert.equal(res.status, 400, JSON.stringify(payload));
      const error = (res.json as { error: { code: string; field: string } }).error;
      assert.deepEqual([error.code, error.field], ['REQUEST_INVALID', field], JSON.stringify(payload));
    }
    const unknownModel = await post(app, '/v1/recommend', { model: 'nope', user: { id: 'u1' }, k: 5, n: 1 });
    assert.equal(unknownModel.status, 404);
  });

  test('/metrics: each stage of the two-stage path observed, answers counted by status', async () => {
    await post(app, '/v1/recommend', { user: { id: 'u1' }, k: 10, n: 3 });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    for (const stage of ['retrieve', 'state', 'rank', 'respond']) {
      const count = new RegExp(`thaw_serve_recommend_stage_seconds_count\\{stage="${stage}"\\} (\\d+)`).exec(res.body)?.[1];
      assert.ok(Number(count) >= 1, `stage ${stage}: ${count}`);
    }
    assert.match(res.body, /thaw_serve_recommend_requests_total\{status="200"\} \d+/);
    assert.match(res.body, /thaw_serve_recommend_requests_total\{status="400"\} \d+/);
  });
});

test('a server without a retrieval index answers /v1/recommend with 503 RETRIEVAL_UNAVAILABLE', async () => {
  const { app, pipeline } = await fixture(false);
  try {
    const res = await post(app, '/v1/recommend', { user: { id: 'u1' }, k: 5, n: 2 });
    assert.equal(res.status, 503);
    assert.equal((res.json as { error: { code: string } }).error.code, 'RETRIEVAL_UNAVAILABLE');
  } finally {
    await app.close();
    await pipeline.stop();
  }
});

test('rankOrder: best score first, ties and NaN in retrieval order, NaN last', () => {
  assert.deepEqual(rankOrder(Float64Array.from([0.2, 0.5, NaN, 0.5, 0.9, 0.2])), [4, 1, 3, 0, 5, 2]);
  assert.deepEqual(rankOrder(new Float64Array(0)), []);
});

test('parseRecommendRequest: retrieve fields, n in [1, k], defaults', () => {
  const req = parseRecommendRequest({ requestId: 'r', model: 'm', user: { id: 'u', history: ['a'] }, k: 10, n: 10, context: {} }, { maxK: 10, maxHistory: 5 });
  assert.deepEqual(req, { requestId: 'r', userId: 'u', features: {}, history: ['a'], k: 10, n: 10, excludeHistory: true });
  assert.throws(
    () => parseRecommendRequest({ user: { id: 'u' }, k: 11, n: 1 }, { maxK: 10, maxHistory: 5 }),
    (err: unknown) => err instanceof RequestError && err.field === 'k',
  );
});
