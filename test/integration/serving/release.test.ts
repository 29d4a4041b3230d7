/**
 * Releases in the scoring API, against real Redis and a real release directory: a newly promoted
 * release is swapped in atomically (every request is fetched and scored under one release; every
 * request sent after the release is ready uses it); a corrupt release (a byte of its weights file
 * flipped after it was promoted) is refused and logged while the old one keeps serving; the
 * response reports the release and its staleness.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FmAdagradAdapter } from '../../../adapters/fm-adagrad.js';
import { createLogger } from '../../../lib/log.js';
import { entityKey } from '../../../model-store/keys.js';
import { createRedis } from '../../../model-store/redis.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { encodeState } from '../../../model-store/state-codec.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { bundleFm, fmFromRelease, WEIGHTS_FILE } from '../../../models/onnx/bundle.js';
import type { Features, LabelledEvent } from '../../../schemas/types.js';
import { ScoringPipeline } from '../../../serving/pipeline.js';
import { followReleases } from '../../../serving/release.js';
import { startScoringServer, type ScoringServer } from '../../../serving/server.js';
import { RedisStateSource } from '../../../serving/state-source.js';

const REDIS = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';
const MODEL = 'fm';
const NS = 'live';
const USER_FEATURES: Features = { age: ['30'] };
const ITEMS: { id: string; features: Features }[] = [
  { id: 'i1', features: { genre: ['x'] } },
  { id: 'i2', features: { genre: ['y'] } },
  { id: 'new-item', features: { genre: ['x', 'y'] } },
];

function model(seed: number): FactorizationMachine {
  const fm = FactorizationMachine.create({ buckets: 2048, k: 4, seed, initStd: 0.2 });
  fm.w0 = seed / 20; // every release scores differently
  return fm;
}

/** A state of `side` after a few events under `fm`, through the adapter itself. */
function learned(fm: FactorizationMachine, side: 'user' | 'item', seed: number): Float32Array {
  const a = new FmAdagradAdapter(side, fm);
  const ev = (i: number): LabelledEvent => ({
    eventId: `e${seed}-${i}`,
    timeMs: i,
    userId: 'u',
    itemId: 'i',
    label: (i + seed) % 2 === 0 ? 1 : 0,
    userFeatures: USER_FEATURES,
    itemFeatures: { genre: ['x'] },
  });
  const st = a.initialState(ev(0));
  for (let i = 0; i < 4; i++) a.predictThenAdapt({ events: [ev(i)], states: [st] });
  return st;
}

/** What the item worker of release `fm` predicts for (user, item) with these states (safeguard off): independent of serving's kernel. */
function expectedScores(fm: FactorizationMachine, user: Float32Array, items: Map<string, Float32Array>): number[] {
  const adapter = new FmAdagradAdapter('item', fm);
  return ITEMS.map((c) => {
    const ev: LabelledEvent = { eventId: 'x', timeMs: 100, userId: 'u1', itemId: c.id, label: 1, userFeatures: USER_FEATURES, itemFeatures: c.features };
    const own = items.get(c.id)?.slice() ?? adapter.initialState(ev);
    const [p] = adapter.predictThenAdapt({ events: [ev], states: [own], others: [user] });
    return p ?? NaN;
  });
}

interface Answer {
  /** Client clock (performance.now()) when sent and when answered. */
  sentAt: number;
  doneAt: number;
  release: string;
  releaseAgeMs: number;
  scores: number[];
  sources: string[];
}

describe('scoring API releases (Redis + release directory)', { timeout: 120_000 }, () => {
  const id = randomUUID().replace(/-/g, '').slice(0, 12);
  const prefix = `t${id}`;
  let root = '';
  let server: ScoringServer | undefined;
  after(async () => {
    await server?.stop();
    const redis = createRedis({ url: REDIS });
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    if (root !== '') await rm(root, { recursive: true, force: true });
  });

  it('swaps a promoted release in atomically, refuses a corrupt one and keeps serving, reports release and staleness', async () => {
    root = await mkdtemp(join(tmpdir(), 'thaw-serve-releases-'));
    const store = new ReleaseStore({ root });
    const publish = async (fm: FactorizationMachine): Promise<string> => {
      const b = bundleFm(fm);
      const m = await store.publish({ model: MODEL, parent: (await store.current(MODEL)) ?? null, architecture: b.architecture, files: b.files });
      await store.promote(MODEL, m.version);
      return m.version;
    };
    const fmA = model(7);
    const vA = await publish(fmA);

    const logLines: string[] = [];
    const logger = createLogger('info', {}, (line) => logLines.push(line));
    // Polls rarely: the test says when to look (checkNow), so the corrupt release is read only after its byte flipped.
    const releases = await followReleases({ store, model: MODEL, keyPrefix: prefix, namespace: NS, safeguard: 'off', pollIntervalMs: 600_000, logger });
    const first = releases.current();
    // States written by "the workers" of release A (both releases keep states: same layout).
    const user = learned(fmA, 'user', 1);
    const items = new Map([
      ['i1', learned(fmA, 'item', 2)],
      ['i2', learned(fmA, 'item', 3)],
    ]);
    const redis = createRedis({ url: REDIS });
    try {
      await redis.set(entityKey(first.userPrefix, 'u1'), encodeState({ count: 4, lastOffset: 3, lastEventMs: 4, params: user }));
      for (const [itemId, st] of items) await redis.set(entityKey(first.itemPrefix, itemId), encodeState({ count: 4, lastOffset: 3, lastEventMs: 4, params: st }));
    } finally {
      redis.disconnect();
    }
    const pipeline = new ScoringPipeline({
      source: new RedisStateSource({ url: REDIS }),
      releases,
      // Every request reads Redis (no cache), a generous read timeout: no shared-only fallback on a loaded machine.
      serving: { freshnessMs: 0, fetchTimeoutMs: 5000, defaultDeadlineMs: 10_000, safeguard: 'off' },
      defaultMetrics: false,
      logger,
    });
    server = await startScoringServer(pipeline, { port: 0, logger });
    const url = `${server.address}/v1/score`;
    const body = JSON.stringify({ user: { id: 'u1', features: USER_FEATURES }, candidates: ITEMS });
    const ask = async (): Promise<Answer> => {
      const sentAt = performance.now();
      const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      const out = JSON.parse(text) as { release: string; releaseAgeMs: number; scores: { score: number; source: string }[] };
      return { sentAt, doneAt: performance.now(), release: out.release, releaseAgeMs: out.releaseAgeMs, scores: out.scores.map((s) => s.score), sources: out.scores.map((s) => s.source) };
    };

    // Load: 8 clients back to back while release B is promoted and becomes ready.
    const answers: Answer[] = [];
    let load = true;
    const clients = Array.from({ length: 8 }, async () => {
      while (load) answers.push(await ask());
    });
    while (answers.length < 40) await new Promise((r) => setTimeout(r, 5));
    const fmB = model(8);
    const vB = await publish(fmB);
    await releases.checkNow();
    const readyAt = performance.now();
    while (answers.filter((a) => a.sentAt > readyAt).length < 40) await new Promise((r) => setTimeout(r, 5));
    load = false;
    await Promise.all(clients);

    const idA = `${MODEL}/${vA}`;
    const idB = `${MODEL}/${vB}`;
    const expectA = expectedScores(fmFromRelease(await store.load(MODEL, vA)), user, items);
    const expectB = expectedScores(fmFromRelease(await store.load(MODEL, vB)), user, items);
    assert.ok(
      expectA.every((x, i) => Math.abs(x - (expectB[i] ?? NaN)) > 1e-4),
      'the two releases score differently',
    );
    for (const a of answers) {
      assert.deepEqual(a.sources, ['fresh', 'fresh', 'cold']);
      assert.ok(a.release === idA || a.release === idB, a.release);
      // One release per request: all its scores are that release's, never a mix.
      const want = a.release === idA ? expectA : expectB;
      a.scores.forEach((s, i) => assert.ok(Math.abs(s - (want[i] ?? NaN)) < 1e-6, `${a.release} candidate ${i}: served ${s}, expected ${want[i]}`));
    }
    assert.ok(answers.some((a) => a.release === idA) && answers.some((a) => a.release === idB), 'both releases served');
    assert.ok(
      answers.filter((a) => a.sentAt > readyAt).every((a) => a.release === idB),
      'every request sent after B was ready is scored with B',
    );
    const firstB = Math.min(...answers.filter((a) => a.release === idB).map((a) => a.doneAt));
    assert.ok(
      answers.filter((a) => a.sentAt > firstB).every((a) => a.release === idB),
      'no request after the first B answer goes back to A',
    );
    assert.ok(
      logLines.some((l) => l.includes('serving release switched') && l.includes(idB)),
      'the switch is logged',
    );

    // A corrupt release: promoted, then a byte of its weights flipped before serving reads it.
    const vC = await publish(model(9));
    const weights = join(root, MODEL, vC, WEIGHTS_FILE);
    const bytes = await readFile(weights);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    await writeFile(weights, bytes);
    await releases.checkNow();
    assert.equal(releases.refusedCount(), 1);
    const refusal = logLines.find((l) => l.includes('release refused') && l.includes(vC));
    assert.ok(refusal !== undefined, `the refusal is logged: ${logLines.join('\n')}`);
    assert.match(refusal, /RELEASE_CORRUPT/);
    const t0 = Date.now();
    const after = await ask();
    const t1 = Date.now();
    assert.equal(after.release, idB, 'the release in use keeps serving');
    after.scores.forEach((s, i) => assert.ok(Math.abs(s - (expectB[i] ?? NaN)) < 1e-6));
    const createdB = (await store.list(MODEL)).find((m) => m.version === vB)?.createdAtMs ?? NaN;
    // Staleness: now − B's publication time, taken while the request was served.
    assert.ok(after.releaseAgeMs >= t0 - createdB && after.releaseAgeMs <= t1 - createdB, `releaseAgeMs ${after.releaseAgeMs} not within [${t0 - createdB}, ${t1 - createdB}]`);
    const ready = await fetch(`${server.address}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { release: string }).release, idB);
    const metrics = await (await fetch(`${server.address}/metrics`)).text();
    assert.match(metrics, /thaw_serve_releases_refused_total 1/);
    assert.match(metrics, new RegExp(`thaw_serve_release_info\\{release="${idB.replace(/[/.]/g, '\\$&')}"\\} 1`));
    assert.match(metrics, /thaw_serve_release_age_seconds \d/);
  });
});
