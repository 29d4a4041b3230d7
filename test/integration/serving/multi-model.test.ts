/**
 * Several models side by side in one `thaw serve --models` server (issue 12, model as a service),
 * against real Redis and real release directories, assembled by the command's own code
 * (servedModels + buildModels + startScoringServer):
 * - `home`: fm-adagrad on an FM release, namespace `home`, release directory A;
 * - `search`: emerg on an EmerG release, namespace `search`, release directory B, its own
 *   candidates limit.
 * The same request to each gives that model's own score, equal to a direct computation with the
 * model's adapter and the stored states to 1e-5; a request naming no model is the default's (the
 * first); an unknown model is a 404 listing the known ones; each model's settings are its own.
 * Then a new FM release swaps into `home` while `search` keeps its release and scores, and a
 * corrupt EmerG release is refused by `search` (still serving the old one) with `home` unaffected.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FmAdagradAdapter } from '../../../adapters/fm-adagrad.js';
import type { Adapter } from '../../../adapters/types.js';
import { buildModels } from '../../../cli/commands/serve-models.js';
import { servedModels } from '../../../config/commands/serve-models.js';
import { serveSpec } from '../../../config/commands/serve.js';
import { loadConfig } from '../../../config/load.js';
import { silentLogger } from '../../../lib/log.js';
import { initBackend } from '../../../models/backend.js';
import { entityKey } from '../../../model-store/keys.js';
import { createRedis } from '../../../model-store/redis.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { encodeState } from '../../../model-store/state-codec.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { bundleFm, WEIGHTS_FILE } from '../../../models/onnx/bundle.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { startScoringServer, type ScoringServer } from '../../../serving/server.js';
import { events } from '../consumers/harness.js';
import { adapterOf, layoutFor, publishMeta } from '../consumers/meta-fixtures.js';

const REDIS = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';
const TOL = 1e-5;

interface Served {
  release: string;
  scores: { id: string; score: number; source: string; ageMs?: number }[];
}

/** A response's scores without `ageMs`: the age of the state read, which grows with the machine's load, not with the model. */
function withoutAge(scores: Served['scores']): Omit<Served['scores'][number], 'ageMs'>[] {
  return scores.map(({ ageMs: _age, ...rest }) => rest);
}

function fmModel(seed: number): FactorizationMachine {
  const fm = FactorizationMachine.create({ buckets: 4096, k: 4, seed, initStd: 0.2 });
  fm.w0 = seed / 20; // every release scores differently
  return fm;
}

describe('several models in one server (thaw serve --models; Redis + release directories)', { timeout: 120_000 }, () => {
  const id = randomUUID().replace(/-/g, '').slice(0, 12);
  const prefix = `t${id}`;
  const dirs: string[] = [];
  let server: ScoringServer | undefined;
  before(async () => {
    await initBackend('cpu');
  });
  after(async () => {
    await server?.stop();
    const redis = createRedis({ url: REDIS });
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('routes each request to its model, scores it with that model alone, swaps and refuses releases per model', async () => {
    const rootA = await mkdtemp(join(tmpdir(), 'thaw-mm-a-'));
    const rootB = await mkdtemp(join(tmpdir(), 'thaw-mm-b-'));
    dirs.push(rootA, rootB);
    const storeA = new ReleaseStore({ root: rootA });
    const storeB = new ReleaseStore({ root: rootB });
    const publishFm = async (fm: FactorizationMachine): Promise<string> => {
      const b = bundleFm(fm);
      const m = await storeA.publish({ model: 'fm', parent: (await storeA.current('fm')) ?? null, architecture: b.architecture, files: b.files });
      await storeA.promote('fm', m.version);
      return `fm/${m.version}`;
    };
    const fmA1 = fmModel(7);
    const a1 = await publishFm(fmA1);
    const evs = events(400, 61);
    const b1 = await publishMeta(storeB, 'emerg', layoutFor('emerg', evs), 61);

    const file = join(rootA, 'models.json');
    await writeFile(
      file,
      JSON.stringify([
        { name: 'home', adapter: 'fm-adagrad', model: 'fm', namespace: 'home', releaseDir: rootA },
        { name: 'search', adapter: 'emerg', model: 'emerg', namespace: 'search', releaseDir: rootB, crossAdapter: 'off', safeguard: 'off', maxCandidates: 3 },
      ]),
    );
    // (search is not the flags' adapter: it takes no --safeguard from them, so it says its own.)
    // Every state read from Redis (no cache), generous timeouts (no shared-only fallback on a loaded machine), releases polled often.
    const flags = ['--models', file, '--safeguard', 'off', '--freshness-ms', '0', '--fetch-timeout-ms', '5000', '--deadline-ms', '10000', '--release-poll-ms', '100', '--cache-entries', '80000'];
    const cfg = { ...loadConfig(serveSpec, flags, { env: { THAW_REDIS_URL: REDIS, THAW_REDIS_PREFIX: prefix } }).config, releaseAnnouncements: false };
    const models = await buildModels(cfg, servedModels(cfg), silentLogger);
    server = await startScoringServer(models, { port: 0 });
    const base = server.address;
    const home = models.get('home').pipeline.currentRelease();
    const search = models.get('search').pipeline.currentRelease();
    assert.match(home.itemPrefix, new RegExp(`^${prefix}:home:item:fm-adagrad`));
    assert.match(search.itemPrefix, new RegExp(`^${prefix}:search:item:emerg`));

    // One request: a user and three candidates (i1 stored by both models' workers, i2 by home's only, one never seen).
    const [e0, e1, e2] = evs;
    assert.ok(e0 !== undefined && e1 !== undefined && e2 !== undefined);
    const user = { id: e0.userId, features: e0.userFeatures };
    const c1 = { id: 'i1', features: e0.itemFeatures };
    const c2 = { id: 'i2', features: e1.itemFeatures };
    const cands = [c1, c2, { id: 'new-item', features: e2.itemFeatures }];
    const eventOf = (c: (typeof cands)[number], i: number): LabelledEvent => ({
      eventId: `x${i}`,
      timeMs: 0,
      userId: user.id,
      itemId: c.id,
      label: i % 2 === 0 ? 0 : 1,
      userFeatures: user.features,
      itemFeatures: c.features,
    });
    // States as the models' workers would have left them, through the adapters themselves.
    const fmLearned = (side: 'user' | 'item', seed: number): Float32Array => {
      const a = new FmAdagradAdapter(side, fmA1);
      const st = a.initialState(eventOf(c1, seed));
      for (let i = 0; i < 4; i++) a.predictThenAdapt({ events: [eventOf(i % 2 === 0 ? c1 : c2, i + seed)], states: [st] });
      return st;
    };
    const emergA = await adapterOf(storeB, 'emerg', b1.version);
    const emergState = emergA.initialStates?.([eventOf(c1, 0)])[0] ?? emergA.initialState(eventOf(c1, 0));
    for (let i = 0; i < 4; i++) emergA.predictThenAdapt({ events: [eventOf(c1, i)], states: [emergState] });
    const fmUser = fmLearned('user', 1);
    const fmItems = new Map([
      ['i1', fmLearned('item', 2)],
      ['i2', fmLearned('item', 3)],
    ]);
    const redis = createRedis({ url: REDIS });
    try {
      const put = (key: string, params: Float32Array): Promise<unknown> => redis.set(key, encodeState({ count: 4, lastOffset: 3, lastEventMs: 4, params }));
      await put(entityKey(home.userPrefix, user.id), fmUser);
      for (const [item, st] of fmItems) await put(entityKey(home.itemPrefix, item), st);
      await put(entityKey(search.itemPrefix, 'i1'), emergState);
    } finally {
      redis.disconnect();
    }

    // Direct computations: what each model's worker predicts for these pairs with these states.
    const expectFm = (fm: FactorizationMachine): number[] => {
      const a = new FmAdagradAdapter('item', fm);
      return cands.map((c, i) => {
        const ev = eventOf(c, i);
        const own = fmItems.get(c.id)?.slice() ?? a.initialState(ev);
        return a.predictThenAdapt({ events: [ev], states: [own], others: [fmUser.slice()] })[0] ?? NaN;
      });
    };
    const expectEmerg = (a: Adapter): number[] =>
      cands.map((c, i) => {
        const ev = eventOf(c, i);
        const own = c.id === 'i1' ? emergState.slice() : (a.initialStates?.([ev])[0] ?? a.initialState(ev));
        return a.predictThenAdapt({ events: [ev], states: [own] })[0] ?? NaN;
      });

    const post = async (path: string, body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> => {
      const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    const score = async (path: string, extra: Record<string, unknown> = {}): Promise<Served> => {
      const r = await post(path, { user, candidates: cands, ...extra });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      return r.json as unknown as Served;
    };
    const near = (got: Served, want: number[], what: string): void =>
      got.scores.forEach((s, i) => assert.ok(Math.abs(s.score - (want[i] ?? NaN)) <= TOL, `${what} candidate ${i}: served ${s.score}, expected ${want[i]}`));

    // The same request to each model: each model's own score and release.
    const wantHome = expectFm(fmA1);
    // A fresh instance of the release's adapter: the one that trained the state above is not what serving scores with.
    const wantSearch = expectEmerg(await adapterOf(storeB, 'emerg', b1.version));
    assert.ok(
      wantHome.every((x, i) => Math.abs(x - (wantSearch[i] ?? NaN)) > 1e-4),
      'the two models score differently',
    );
    const byPath = await score('/v1/models/home/score');
    assert.equal(byPath.release, a1);
    assert.deepEqual(
      byPath.scores.map((s) => s.source),
      ['fresh', 'fresh', 'cold'],
    );
    near(byPath, wantHome, 'home');
    const searchAnswer = await score('/v1/score', { model: 'search' });
    assert.equal(searchAnswer.release, b1.release);
    assert.deepEqual(
      searchAnswer.scores.map((s) => s.source),
      ['fresh', 'cold', 'cold'],
      'search reads its own namespace: i2 has no emerg state',
    );
    near(searchAnswer, wantSearch, 'search');
    near(await score('/v1/models/search/score', { model: 'search' }), wantSearch, 'search by path');
    const byDefault = await score('/v1/score');
    assert.equal(byDefault.release, a1, 'no model named: the first');
    near(byDefault, wantHome, 'default');

    // Unknown models: 404 naming it and the known ones; a path and body that disagree: 400.
    for (const [path, body] of [
      ['/v1/models/nope/score', {}],
      ['/v1/score', { model: 'nope' }],
    ] as const) {
      const r = await post(path, { user, candidates: cands, ...body });
      assert.equal(r.status, 404, path);
      const err = r.json.error as { code: string; field: string; message: string; models: string[] };
      assert.deepEqual([err.code, err.field, err.models], ['MODEL_NOT_FOUND', 'model', ['home', 'search']]);
      assert.match(err.message, /"nope"/);
    }
    assert.equal((await post('/v1/models/home/score', { model: 'search', user, candidates: cands })).status, 400);
    // Each model's own settings: search takes at most 3 candidates, home 1000.
    const four = [...cands, { id: 'i4', features: e0.itemFeatures }];
    const tooMany = await post('/v1/models/search/score', { user, candidates: four });
    assert.equal(tooMany.status, 400);
    assert.equal((tooMany.json.error as { field: string }).field, 'candidates');
    assert.equal((await post('/v1/models/home/score', { user, candidates: four })).status, 200);

    // Listing, readiness and metrics per model.
    const listed = (await (await fetch(`${base}/v1/models`)).json()) as {
      default: string;
      models: { name: string; adapter: string; namespace: string; release: string; releaseAgeMs: number; releasesRefused: number }[];
    };
    assert.equal(listed.default, 'home');
    assert.deepEqual(
      listed.models.map((m) => [m.name, m.adapter, m.namespace, m.release]),
      [
        ['home', 'fm-adagrad', 'home', a1],
        ['search', 'emerg', 'search', b1.release],
      ],
    );
    assert.ok(listed.models.every((m) => m.releaseAgeMs >= 0));
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(
      ((await ready.json()) as { models: { name: string; ready: boolean }[] }).models.map((m) => [m.name, m.ready]),
      [
        ['home', true],
        ['search', true],
      ],
    );
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /thaw_serve_requests_total\{model="search",status="200"\} 2/);
    assert.match(metrics, /thaw_serve_requests_total\{model="search",status="400"\} 1/);
    assert.match(metrics, /thaw_serve_stage_queue_depth\{model="home",stage="fetch"\} 0/);
    assert.match(metrics, new RegExp(`thaw_serve_release_info\\{model="search",release="${b1.release.replace(/[/.]/g, '\\$&')}"\\} 1`));

    // A new release of home swaps in; search keeps its release and its scores, bit for bit.
    const fmA2 = fmModel(8);
    const a2 = await publishFm(fmA2);
    let swapped: Served | undefined;
    for (let i = 0; i < 200 && swapped?.release !== a2; i++) {
      await new Promise((r) => setTimeout(r, 50));
      swapped = await score('/v1/models/home/score');
    }
    assert.equal(swapped?.release, a2, 'home swapped to its new release');
    near(swapped, expectFm(fmA2), 'home after its swap');
    const searchAfter = await score('/v1/models/search/score');
    assert.equal(searchAfter.release, b1.release);
    assert.deepEqual(withoutAge(searchAfter.scores), withoutAge(searchAnswer.scores), "search unchanged by home's swap");

    // A corrupt release of search (its weights' byte flipped, then made current): refused, search keeps serving b1, home unaffected.
    const b2 = await publishMeta(storeB, 'emerg', layoutFor('emerg', evs), 62, { promote: false });
    const weights = join(rootB, 'emerg', b2.version, WEIGHTS_FILE);
    const bytes = await readFile(weights);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    await writeFile(weights, bytes);
    await writeFile(join(rootB, 'emerg', 'CURRENT'), `${b2.version}\n`);
    const refusedOf = async (): Promise<Record<string, number>> => {
      const l = (await (await fetch(`${base}/v1/models`)).json()) as { models: { name: string; releasesRefused: number }[] };
      return Object.fromEntries(l.models.map((m) => [m.name, m.releasesRefused]));
    };
    for (let i = 0; i < 200 && (await refusedOf()).search !== 1; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await refusedOf(), { home: 0, search: 1 });
    const searchStill = await score('/v1/score', { model: 'search' });
    assert.equal(searchStill.release, b1.release, 'search keeps its old release');
    assert.deepEqual(withoutAge(searchStill.scores), withoutAge(searchAnswer.scores));
    const homeStill = await score('/v1/score');
    assert.equal(homeStill.release, a2);
    near(homeStill, expectFm(fmA2), 'home after search refused a release');
    assert.match(await (await fetch(`${base}/metrics`)).text(), /thaw_serve_releases_refused_total\{model="search"\} 1/);
  });
});
