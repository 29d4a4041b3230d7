import assert from 'node:assert/strict';
import http from 'node:http';
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
  const ev = (i: number): LabelledEvent => ({
    eventId: `e${seed}-${i}`,
    timeMs: i,
    userId: 'u',
    itemId: 'i',
    label: (i + seed) % 2 === 0 ? 1 : 0,
    userFeatures: { age: ['30'] },
    itemFeatures: { genre: ['x', 'y'] },
  });
  const st = a.initialState(ev(0));
  for (let i = 0; i < 5; i++) a.predictThenAdapt({ events: [ev(i)], states: [st] });
  return st;
}

/** A request as a test sends it, through fastify's inject or over a real connection to the listening server. */
type Call = (
  method: 'GET' | 'POST',
  url: string,
  payload?: unknown,
  headers?: Record<string, string>,
) => Promise<{ statusCode: number; body: string; headers: Record<string, string | string[] | undefined> }>;

for (const transport of ['inject', 'http'] as const)
  describe(`scoring server (in-memory states, ${transport})`, () => {
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
    let base = '';
    // inject: fastify's routes hand the raw request to the scoring handler; http: the listening
    // server's factory hands it over before fastify (serving/server.ts). Both must answer alike.
    const call: Call = async (method, url, payload, headers = {}) => {
      const body = payload === undefined ? undefined : typeof payload === 'string' ? payload : JSON.stringify(payload);
      const hdrs = body !== undefined && headers['content-type'] === undefined ? { ...headers, 'content-type': 'application/json' } : headers;
      if (transport === 'inject') {
        const res = await app.inject({ method, url, headers: hdrs, ...(body === undefined ? {} : { payload: body }) });
        return { statusCode: res.statusCode, body: res.body, headers: res.headers as Record<string, string | string[] | undefined> };
      }
      const res = await fetch(base + url, { method, headers: hdrs, ...(body === undefined ? {} : { body }) });
      return { statusCode: res.status, body: await res.text(), headers: Object.fromEntries(res.headers) };
    };
    // A deadline no loaded machine misses: admission is tested in admission.test.ts and the shedding test.
    before(async () => {
      pipeline = new ScoringPipeline({
        source: new MapStateSource(values),
        releases: fixedRelease(release),
        serving: { maxCandidates: 5, bodyLimitBytes: 4096, defaultDeadlineMs: 10_000 },
        defaultMetrics: false,
      });
      app = createScoringApp(pipeline);
      await pipeline.start();
      if (transport === 'http') base = await app.listen({ host: '127.0.0.1', port: 0 });
      else await app.ready();
    });
    after(async () => {
      await app.close();
      await pipeline.stop();
    });

    test("scores in candidate order with provenance, equal to the item worker's logged score", async () => {
      const body = { requestId: 'r1', user: { id: 'u1', features: { age: ['30'] } }, candidates: [{ id: 'i1', features: { genre: ['x'] } }, { id: 'new', features: {} }, { id: 'bad' }] };
      const res = await call('POST', '/v1/score', body);
      assert.equal(res.statusCode, 200, res.body);
      const out = JSON.parse(res.body) as { release: string; scores: { id: string; score: number; source: string; events: number | null }[]; user: { source: string } };
      assert.equal(out.release, 'fm/v1');
      assert.deepEqual(
        out.scores.map((s) => [s.id, s.source]),
        [
          ['i1', 'fresh'],
          ['new', 'cold'],
          ['bad', 'shared-only'],
        ],
      );
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
        const res = await call('POST', '/v1/score', payload);
        assert.equal(res.statusCode, 400, res.body);
        assert.equal((JSON.parse(res.body) as { error: { field: string } }).error.field, field);
      }
      const malformed = await call('POST', '/v1/score', '{"user":');
      assert.equal(malformed.statusCode, 400);
      assert.equal((JSON.parse(malformed.body) as { error: { field: string } }).error.field, 'body');
      const big = await call('POST', '/v1/score', { user: { id: 'u' }, candidates: [{ id: 'x'.repeat(5000) }] });
      assert.equal(big.statusCode, 413);
      const deadline = await call('POST', '/v1/score', { user: { id: 'u' }, candidates: [{ id: 'a' }] }, { 'x-deadline-ms': 'soon' });
      assert.equal(deadline.statusCode, 400);
    });

    test('edge cases: content type, prototype poisoning, query strings, percent-encoded model names, methods', async () => {
      const valid = { user: { id: 'u1' }, candidates: [{ id: 'i1' }] };
      const text = await call('POST', '/v1/score', JSON.stringify(valid), { 'content-type': 'text/plain' });
      assert.equal(text.statusCode, 400, text.body); // a text body is not a JSON object
      assert.equal((JSON.parse(text.body) as { error: { field: string } }).error.field, 'body');
      const charset = await call('POST', '/v1/score', JSON.stringify(valid), { 'content-type': 'Application/JSON; charset=utf-8' });
      assert.equal(charset.statusCode, 200, charset.body);
      for (const poisoned of ['{"user":{"id":"u"},"candidates":[{"id":"a"}],"__proto__":{"x":1}}', '{"user":{"id":"u","constructor":{"prototype":{"x":1}}},"candidates":[{"id":"a"}]}']) {
        const res = await call('POST', '/v1/score', poisoned);
        assert.equal(res.statusCode, 400, res.body);
        assert.equal((JSON.parse(res.body) as { error: { field: string } }).error.field, 'body');
      }
      const query = await call('POST', '/v1/score?trace=1', valid);
      assert.equal(query.statusCode, 200, query.body);
      const named = await call('POST', '/v1/models/default/score', valid);
      assert.equal(named.statusCode, 200, named.body);
      const unknown = await call('POST', '/v1/models/n%C3%A9/score', valid);
      assert.equal(unknown.statusCode, 404, unknown.body);
      assert.deepEqual((JSON.parse(unknown.body) as { error: { models: string[] } }).error.models, ['default']);
      const wrongMethod = await call('GET', '/v1/score');
      assert.equal(wrongMethod.statusCode, 404, wrongMethod.body);
    });

    test('fuzz: random bodies never crash the server and always get a JSON answer', async () => {
      let seed = 12345;
      const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
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
        const res = await call('POST', '/v1/score', payload);
        assert.ok([200, 400, 413].includes(res.statusCode), `${res.statusCode} for ${payload}: ${res.body}`);
        JSON.parse(res.body);
      }
      const ok = await call('GET', '/healthz');
      assert.equal(ok.statusCode, 200);
    });

    test('readyz and metrics', async () => {
      const ready = await call('GET', '/readyz');
      assert.equal(ready.statusCode, 200);
      const metrics = await call('GET', '/metrics');
      assert.match(metrics.body, /thaw_serve_stage_queue_depth\{stage="fetch"\}/);
      assert.match(metrics.body, /thaw_serve_state_reads_total\{tier="store"\}/);
    });
  });

describe('scoring server over a real connection: a chunked body over the limit', () => {
  test('413 once the bytes read pass the limit, and the connection is closed', async () => {
    const release = servingRelease(fm, 'v1', Date.now(), undefined, { keyPrefix: 'unit-chunked', namespace: 'live', safeguard: 'item' });
    const pipeline = new ScoringPipeline({ source: new MapStateSource(new Map()), releases: fixedRelease(release), serving: { bodyLimitBytes: 1024 }, defaultMetrics: false });
    const app = createScoringApp(pipeline);
    await pipeline.start();
    const base = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
    try {
      const answer = await new Promise<{ status: number; body: string; connection: string | undefined }>((resolve, reject) => {
        // No content-length: chunked, so only counting the bytes as they come can refuse it.
        const req = http.request({ host: base.hostname, port: base.port, path: '/v1/score', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
        });
        req.on('error', reject);
        req.write('{"user":{"id":"u"},"candidates":[');
        for (let i = 0; i < 40; i++) req.write(`{"id":"${'c'.repeat(40)}${i}"},`);
        req.end('{"id":"last"}]}');
      });
      assert.equal(answer.status, 413, answer.body);
      assert.equal((JSON.parse(answer.body) as { error: { field: string } }).error.field, 'body');
      assert.equal(answer.connection, 'close');
    } finally {
      await app.close();
      await pipeline.stop();
    }
  });
});
