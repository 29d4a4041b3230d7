/**
 * Load shedding against real Redis: a burst far beyond what the server can answer within small
 * deadlines. Refused requests get 503 with Retry-After and a reason; admitted ones are answered in
 * full; the queues never hold more than `maxInFlight` requests; the server stays healthy and serves
 * normally afterwards. No timing is asserted except what admission guarantees by construction.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { entityKey } from '../../../model-store/keys.js';
import { createRedis } from '../../../model-store/redis.js';
import { encodeState } from '../../../model-store/state-codec.js';
import { fmStateSize } from '../../../models/fm-entity.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { ScoringPipeline } from '../../../serving/pipeline.js';
import { fixedRelease, servingRelease } from '../../../serving/release.js';
import { startScoringServer, type ScoringServer } from '../../../serving/server.js';
import { RedisStateSource } from '../../../serving/state-source.js';

const REDIS = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';
const USERS = 200;
const ITEMS = 3000;
const CANDIDATES = 100;
const MAX_IN_FLIGHT = 96;
const BURST = 800;
const SMALL_DEADLINE_MS = 2;
const LARGE_DEADLINE_MS = 60_000;

interface Outcome {
  status: number;
  retryAfter: string | null;
  large: boolean;
  body: { scores?: { score: number; source: string }[]; error?: { code: string; reason?: string } };
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

describe('scoring API load shedding (Redis)', { timeout: 180_000 }, () => {
  const id = randomUUID().replace(/-/g, '').slice(0, 12);
  const prefix = `t${id}`;
  let server: ScoringServer | undefined;
  after(async () => {
    await server?.stop();
    const redis = createRedis({ url: REDIS });
    const keys = await redis.keys(`${prefix}:*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
    redis.disconnect();
  });

  it('under an overload refuses with 503 + Retry-After, answers the admitted, keeps its queues bounded and stays healthy', async () => {
    const fm = FactorizationMachine.create({ buckets: 4096, k: 8, seed: 2, initStd: 0.1, release: 'fm/shed' });
    const release = servingRelease(fm, 'shed', Date.now(), undefined, { keyPrefix: prefix, namespace: 'live', safeguard: 'off' });
    const redis = createRedis({ url: REDIS });
    try {
      const params = new Float32Array(fmStateSize(fm.k)).map((_, i) => Math.sin(i) / 10);
      const value = encodeState({ count: 3, lastOffset: 2, lastEventMs: 1, params });
      const batch = redis.pipeline();
      for (let u = 0; u < USERS; u++) batch.set(entityKey(release.userPrefix, `u${u}`), value);
      // Every tenth item is unseen (cold).
      for (let i = 0; i < ITEMS; i++) if (i % 10 !== 0) batch.set(entityKey(release.itemPrefix, `i${i}`), value);
      await batch.exec();
    } finally {
      redis.disconnect();
    }
    const pipeline = new ScoringPipeline({
      source: new RedisStateSource({ url: REDIS }),
      releases: fixedRelease(release),
      serving: { safeguard: 'off', maxInFlight: MAX_IN_FLIGHT, maxDeadlineMs: LARGE_DEADLINE_MS, fetchTimeoutMs: 5000, maxCandidates: CANDIDATES, cacheEntries: 65_536 },
      defaultMetrics: false,
    });
    server = await startScoringServer(pipeline, { port: 0 });
    const url = `${server.address}/v1/score`;
    const bodyOf = (r: number): string =>
      JSON.stringify({ user: { id: `u${r % USERS}` }, candidates: Array.from({ length: CANDIDATES }, (_, c) => ({ id: `i${(r * 7919 + c * c * 31) % ITEMS}`, features: { g: [`${c % 5}`] } })) });
    const ask = async (r: number, deadlineMs: number): Promise<Outcome> => {
      const res = await fetch(url, { method: 'POST', body: bodyOf(r), headers: { 'content-type': 'application/json', 'x-deadline-ms': String(deadlineMs) } });
      return { status: res.status, retryAfter: res.headers.get('retry-after'), large: deadlineMs === LARGE_DEADLINE_MS, body: JSON.parse(await res.text()) as Outcome['body'] };
    };

    // Unloaded first: a request with a generous deadline is answered.
    assert.equal((await ask(0, LARGE_DEADLINE_MS)).status, 200);

    // The burst: every third request may wait long, the others have 2 ms.
    let maxPending = 0;
    let maxQueued = 0;
    const sampler = setInterval(() => {
      maxPending = Math.max(maxPending, pipeline.pending);
      maxQueued = Math.max(maxQueued, pipeline.queued);
    }, 1);
    let outcomes: Outcome[];
    try {
      outcomes = await Promise.all(Array.from({ length: BURST }, (_, r) => ask(r + 1, r % 3 === 0 ? LARGE_DEADLINE_MS : SMALL_DEADLINE_MS)));
    } finally {
      clearInterval(sampler);
    }
    const counts = new Map<string, number>();
    for (const o of outcomes) {
      const key = o.status === 200 ? '200' : `${o.status} ${o.body.error?.reason ?? '?'}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    process.stderr.write(`shedding: ${BURST} requests: ${[...counts].map(([k, n]) => `${k}: ${n}`).join(', ')}; max in flight ${maxPending}, max queued ${maxQueued}\n`);

    for (const o of outcomes) {
      assert.ok(o.status === 200 || o.status === 503, `status ${o.status}: ${JSON.stringify(o.body)}`);
      if (o.status === 503) {
        assert.equal(o.retryAfter, '1', 'a refused request says when to retry');
        assert.equal(o.body.error?.code, 'OVERLOADED');
        assert.ok(['deadline', 'late', 'queue-full'].includes(o.body.error.reason ?? ''), `reason ${o.body.error.reason}`);
        // A generous deadline is never unmeetable: such a request is refused only when the queues are full.
        if (o.large) assert.equal(o.body.error.reason, 'queue-full');
      } else {
        assert.equal(o.body.scores?.length, CANDIDATES, 'an admitted request is answered in full');
        assert.ok(o.body.scores.every((s) => Number.isFinite(s.score) && (s.source === 'fresh' || s.source === 'cold')));
      }
    }
    const refused = outcomes.filter((o) => o.status === 503).length;
    assert.ok(refused > 0, 'the overload was shed');
    assert.ok(
      outcomes.some((o) => o.status === 200),
      'some requests were admitted and answered',
    );
    assert.ok(maxPending <= MAX_IN_FLIGHT && maxQueued <= MAX_IN_FLIGHT, `in flight ${maxPending}, queued ${maxQueued}, bound ${MAX_IN_FLIGHT}`);

    // Afterwards: nothing left in flight, healthy, ready, serving normally; metrics agree with what clients saw.
    assert.equal(pipeline.pending, 0);
    assert.equal(pipeline.queued, 0);
    assert.equal((await fetch(`${server.address}/healthz`)).status, 200);
    assert.equal((await fetch(`${server.address}/readyz`)).status, 200);
    assert.equal((await ask(1, LARGE_DEADLINE_MS)).status, 200);
    const metrics = await (await fetch(`${server.address}/metrics`)).text();
    const shed = ['deadline', 'late', 'queue-full'].reduce((sum, reason) => sum + metric(metrics, `thaw_serve_shed_total{reason="${reason}"}`), 0);
    assert.equal(shed, refused, 'every 503 is counted as shed, by reason');
    assert.equal(metric(metrics, 'thaw_serve_requests_total{status="503"}'), refused);
  });
});
