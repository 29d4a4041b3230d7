import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { FmAdagradAdapter } from '../../../adapters/fm-adagrad.js';
import { Safeguard } from '../../../consumers/safeguard.js';
import { entityKey } from '../../../model-store/keys.js';
import { encodeState } from '../../../model-store/state-codec.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { fixedRelease, servingRelease } from '../../../serving/release.js';
import { ScoringPipeline } from '../../../serving/pipeline.js';
import { createScoringApp } from '../../../serving/server.js';
import { MapStateSource } from '../../../serving/state-source.js';
import type { LabelledEvent } from '../../../schemas/types.js';

const fm = FactorizationMachine.create({ buckets: 4096, k: 4, seed: 3, initStd: 0.3, release: 'fm/v1' });
fm.w0 = -0.4;
fm.priors.user.bias = 0.1;
fm.priors.item.bias = -0.2;
fm.priors.item.vector.set([0.05, -0.1, 0.2, 0.01]);

/** A learned state of `side` after a few events, via the adapter itself. */
function learned(side: 'user' | 'item', seed: number): Float32Array {
  const a = new FmAdagradAdapter(side, fm);
  const ev = (i: number): LabelledEvent => ({ eventId: `e${seed}-${i}`, timeMs: i, userId: 'u', itemId: 'i', label: (i + seed) % 2 === 0 ? 1 : 0, userFeatures: { age: ['30'] }, itemFeatures: { genre: ['x', 'y'] } });
  const st = a.initialState(ev(0));
  for (let i = 0; i < 5; i++) a.predictThenAdapt({ events: [ev(i)], states: [st] });
  return st;
}

describe('scoring server (in-memory states)', () => {
  const release = servingRelease(fm, 'v1', Date.now(), undefined, { keyPrefix: 'unit', namespace: 'live', safeguard: 'item' });
  const user = learned('user', 1);
  const item = learned('item', 2);
  const values = new Map<string, Buffer>([
    [entityKey(release.userPrefix, 'u1'), encodeState({ count: 5, lastOffset: 4, lastEventMs: 5, params: user })],
    [entityKey(release.itemPrefix, 'i1'), encodeState({ count: 3, lastOffset: 2, lastEventMs: 5, params: item })],
    [entityKey(release.itemPrefix, 'bad'), Buffer.from('garbage')],
  ]);
  let app: FastifyInstance;
  let pipeline: ScoringPipeline;
  before(async () => {
    pipeline = new ScoringPipeline({ source: new MapStateSource(values), releases: fixedRelease(release), serving: { maxCandidates: 5, bodyLimitBytes: 4096 }, defaultMetrics: false });
    app = createScoringApp(pipeline);
    await pipeline.start();
    await app.ready();
  });
  after(async () => {
    await app.close();
    await pipeline.stop();
  });

  test('scores in candidate order with provenance, equal to the item worker\'s logged score', async () => {
    const body = { requestId: 'r1', user: { id: 'u1', features: { age: ['30'] } }, candidates: [{ id: 'i1', features: { genre: ['x'] } }, { id: 'new', features: {} }, { id: 'bad' }] };
    const res = await app.inject({ method: 'POST', url: '/v1/score', payload: body });
    assert.equal(res.statusCode, 200, res.body);
    const out = JSON.parse(res.body) as { release: string; scores: { id: string; score: number; source: string; events: number | null }[]; user: { source: string } };
    assert.equal(out.release, 'fm/v1');
    assert.deepEqual(out.scores.map((s) => [s.id, s.source]), [['i1', 'fresh'], ['new', 'cold'], ['bad', 'shared-only']]);
    assert.equal(out.user.source, 'fresh');
    // What the item worker logs for this event with these states (cross-side read of u1, safeguard initial).
    const adapter = new FmAdagradAdapter('item', fm);
    const ev: LabelledEvent = { eventId: 'x', timeMs: 10, userId: 'u1', itemId: 'i1', label: 1, userFeatures: { age: ['30'] }, itemFeatures: { genre: ['x'] } };
    const baseline = new Float32Array(1);
    const [adapted] = adapter.predictThenAdapt({ events: [ev], states: [item.slice()], others: [user], baseline });
    const expected = new Safeguard().mix(new Safeguard().initialState(), 3, adapted ?? 0, baseline[0] ?? 0);
    assert.ok(Math.abs((out.scores[0]?.score ?? 0) - expected) < 1e-6, `${out.scores[0]?.score} vs ${expected}`);
  });

  test('bad input: 400/413 naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ user: { id: 'u' }, candidates: [] }, 'candidates'],
      [{ user: { id: 1 }, candidates: [{ id: 'a' }] }, 'user.id'],
      [{ user: { id: 'u' }, candidates: [{ id: 'a', extra: 1 }] }, 'candidates[0].extra'],
      [{ user: { id: 'u' }, candidates: [{ id: 'a' }], nope: 1 }, 'nope'],
      [{ user: { id: 'u' }, candidates: Array.from({ length: 6 }, (_, i) => ({ id: `c${i}` })) }, 'candidates'],
      [{ user: { id: 'u', features: { f: 'x' } }, candidates: [{ id: 'a' }] }, 'user.features.f'],
    ];
    for (const [payload, field] of cases) {
      const res = await app.inject({ method: 'POST', url: '/v1/score', payload: payload as object });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal((JSON.parse(res.body) as { error: { field: string } }).error.field, field);
    }
    const malformed = await app.inject({ method: 'POST', url: '/v1/score', payload: '{"user":', headers: { 'content-type': 'application/json' } });
    assert.equal(malformed.statusCode, 400);
    assert.equal((JSON.parse(malformed.body) as { error: { field: string } }).error.field, 'body');
    const big = await app.inject({ method: 'POST', url: '/v1/score', payload: JSON.stringify({ user: { id: 'u' }, candidates: [{ id: 'x'.repeat(5000) }] }), headers: { 'content-type': 'application/json' } });
    assert.equal(big.statusCode, 413);
    const deadline = await app.inject({ method: 'POST', url: '/v1/score', payload: { user: { id: 'u' }, candidates: [{ id: 'a' }] }, headers: { 'x-deadline-ms': 'soon' } });
    assert.equal(deadline.statusCode, 400);
  });

  test('fuzz: random bodies never crash the server and always get a JSON answer', async () => {
    let seed = 12345;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const atoms: unknown[] = [null, 0, -1, 1.5, '', 'x', true, [], {}, [1, 'a'], { id: 'q' }, { id: 'q', features: { a: ['b'] } }, 'x'.repeat(300)];
    const value = (depth: number): unknown => {
      const r = rand();
      if (depth > 3 || r < 0.4) return atoms[Math.floor(rand() * atoms.length)];
      if (r < 0.7) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
      const keys = ['user', 'candidates', 'id', 'features', 'requestId', 'context', '__proto__', 'constructor'];
      return Object.fromEntries(Array.from({ length: Math.floor(rand() * 4) }, () => [keys[Math.floor(rand() * keys.length)] as string, value(depth + 1)]));
    };
    for (let i = 0; i < 400; i++) {
      let payload = JSON.stringify(value(0)) ?? 'null';
      if (rand() < 0.2) payload = payload.slice(0, Math.floor(rand() * payload.length));
      const res = await app.inject({ method: 'POST', url: '/v1/score', payload, headers: { 'content-type': 'application/json' } });
      assert.ok([200, 400, 413].includes(res.statusCode), `${res.statusCode} for ${payload}: ${res.body}`);
      JSON.parse(res.body);
    }
    const ok = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(ok.statusCode, 200);
  });

  test('readyz and metrics', async () => {
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200);
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    assert.match(metrics.body, /thaw_serve_stage_queue_depth\{stage="fetch"\}/);
    assert.match(metrics.body, /thaw_serve_state_reads_total\{tier="store"\}/);
  });
});
