/**
 * Serving the meta adapters (serving/adapter-model.ts) through the scoring pipeline, states in
 * memory: for each of emerg (item side), coldnas and fixed-adaptive (user side), an offline
 * worker-like run (the adapter's own predictThenAdapt, event after event, the other side's views
 * read) leaves states; the served score of a next pair equals that run's prediction of the pair,
 * mixed by the safeguard as the worker logs it; an entity without a state is scored with the
 * adapter's initial state from the request's features (provenance cold), and another without a
 * partner view with the other side cold. The real services version: test/integration/serving/
 * adapter-parity.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createAdapterFromRelease } from '../../../adapters/registry.js';
import type { Adapter } from '../../../adapters/types.js';
import { Safeguard } from '../../../consumers/safeguard.js';
import { entityKey, scopeKeyPrefix } from '../../../model-store/keys.js';
import { encodeState } from '../../../model-store/state-codec.js';
import { initBackend } from '../../../models/backend.js';
import { bundleFm, bundleUser } from '../../../models/onnx/bundle.js';
import { entityIdOf, type LabelledEvent, type Side } from '../../../schemas/types.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { AdapterModel } from '../../../serving/adapter-model.js';
import { followServedReleases, safeguardSideOf, SERVED_ADAPTERS } from '../../../serving/adapter-release.js';
import { ScoringPipeline } from '../../../serving/pipeline.js';
import { fixedRelease, type AdapterServingRelease } from '../../../serving/release.js';
import { parseScoreRequest } from '../../../serving/request.js';
import { MapStateSource } from '../../../serving/state-source.js';
import { emergFixture, emergRelease, loadedRelease, streamEvents } from '../adapters/emerg-fixture.js';
import { coldNas, fixedAdaptive, userEvents, userLayout } from '../adapters/user-fixtures.js';

await initBackend('cpu');

const TOL = 1e-5;
const HISTORY = 300;

interface Case {
  name: 'emerg' | 'coldnas' | 'fixed-adaptive';
  side: Side;
  events: LabelledEvent[];
  adapter: () => Adapter;
}

function cases(): Case[] {
  const user = userEvents(HISTORY + 50, 31, 30);
  const layout = userLayout(user);
  const em = emergFixture(9, streamEvents(HISTORY + 50, 7));
  return [
    { name: 'emerg', side: 'item', events: [...em.events], adapter: () => createAdapterFromRelease('emerg', 'item', emergRelease(em.model, em.layout)) },
    { name: 'coldnas', side: 'user', events: user, adapter: () => createAdapterFromRelease('coldnas', 'user', loadedRelease(bundleUser(coldNas(layout), { eventLayout: layout }), 'coldnas')) },
    {
      name: 'fixed-adaptive',
      side: 'user',
      events: user,
      adapter: () => createAdapterFromRelease('fixed-adaptive', 'user', loadedRelease(bundleUser(fixedAdaptive(layout), { eventLayout: layout }), 'fixed-adaptive')),
    },
  ];
}

/** A partner (other side's fm-adagrad-like) view per entity id: [bias, variance, vector...]. */
function partnerView(id: string): Float32Array {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) % 1000;
  return Float32Array.from([(h / 1000 - 0.5) * 0.8, 0.05 + h / 10_000, 0.1, -0.2, 0.3, 0.05]);
}

test('thaw serve accepts exactly the served adapters', async () => {
  const { SERVE_ADAPTERS } = await import('../../../config/commands/serve.js');
  assert.deepEqual([...SERVE_ADAPTERS], [...SERVED_ADAPTERS]);
});

test("a meta adapter is served with its own side's safeguard only", () => {
  assert.equal(safeguardSideOf('emerg', 'auto'), 'item');
  assert.equal(safeguardSideOf('coldnas', 'auto'), 'user');
  assert.equal(safeguardSideOf('fm-adagrad', 'auto'), 'item');
  assert.equal(safeguardSideOf('fixed-adaptive', 'off'), 'off');
  assert.throws(
    () => safeguardSideOf('emerg', 'user'),
    (err: unknown) => err instanceof ConfigError && err.message.includes('safeguard'),
  );
});

test('the adapter must run on the release: checked at start-up, as for thaw run', async () => {
  const root = await mkdtemp(join(tmpdir(), 'thaw-serve-adapters-'));
  try {
    const store = new ReleaseStore({ root });
    const publish = async (model: string, b: { architecture: unknown; files: Record<string, Buffer> }): Promise<void> => {
      const m = await store.publish({ model, parent: null, architecture: b.architecture, files: b.files });
      await store.promote(model, m.version);
    };
    await publish('fm', bundleFm(FactorizationMachine.create({ buckets: 256, k: 2, seed: 1, initStd: 0.1, release: 'fm/x' })));
    const user = userEvents(50, 3, 10);
    const layout = userLayout(user);
    await publish('coldnas', bundleUser(coldNas(layout), { eventLayout: layout }));
    const keys = { store, keyPrefix: 'unit', namespace: 'live', safeguard: 'off', pollIntervalMs: 60_000 } as const;
    const incompatible = (err: unknown): boolean => err instanceof ThawError && err.code === 'RELEASE_INCOMPATIBLE';
    await assert.rejects(followServedReleases({ ...keys, model: 'fm', adapter: 'emerg' }), incompatible);
    await assert.rejects(followServedReleases({ ...keys, model: 'coldnas', adapter: 'fm-adagrad' }), incompatible);
    await assert.rejects(followServedReleases({ ...keys, model: 'coldnas', adapter: 'fixed-adaptive' }), incompatible);
    await assert.rejects(followServedReleases({ ...keys, model: 'coldnas', adapter: 'coldnas', safeguard: 'item' }), (err: unknown) => err instanceof ConfigError);
    const served = await followServedReleases({ ...keys, model: 'coldnas', adapter: 'coldnas' });
    try {
      const release = served.current();
      assert.ok(release.adapter !== undefined && release.adapter.side === 'user');
      // coldnas releases start a state epoch (reinit): its own keys carry the version; the partner's are fm-adagrad's.
      assert.match(release.userPrefix, /^unit:live:user:coldnas\.[rh]/);
      assert.equal(release.itemPrefix, 'unit:live:item:fm-adagrad:');
    } finally {
      await served.stop();
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

describe('serving the meta adapters (in-memory states)', () => {
  const pipelines: ScoringPipeline[] = [];
  after(async () => {
    for (const p of pipelines) await p.stop();
  });

  for (const c of cases()) {
    test(`${c.name}: served scores equal the worker's predictions of the next pairs; unseen entities get their initial state`, async () => {
      const other: Side = c.side === 'user' ? 'item' : 'user';
      const worker = c.adapter();
      // The worker's run over the history: per own entity its state, each event scored with the partner view.
      const states = new Map<string, { st: Float32Array; count: number }>();
      const history = c.events.slice(0, HISTORY);
      for (const e of history) {
        const id = entityIdOf(e, c.side);
        let s = states.get(id);
        if (s === undefined) states.set(id, (s = { st: (worker.initialStates?.([e]) ?? [worker.initialState(e)])[0] as Float32Array, count: 0 }));
        worker.predictThenAdapt({ events: [e], states: [s.st], others: [partnerView(entityIdOf(e, other))] });
        s.count++;
      }
      const scope = (side: Side, adapter: string): string => scopeKeyPrefix('unit', { namespace: 'live', side, adapter });
      const ownPrefix = scope(c.side, c.name);
      const otherPrefix = scope(other, 'fm-adagrad');
      const values = new Map<string, Buffer>();
      for (const [id, s] of states) values.set(entityKey(ownPrefix, id), encodeState({ count: s.count, lastOffset: s.count - 1, lastEventMs: 1, params: s.st }));
      const partners = new Set(history.map((e) => entityIdOf(e, other)));
      for (const id of partners) values.set(entityKey(otherPrefix, id), encodeState({ count: 2, lastOffset: 1, lastEventMs: 1, params: partnerView(id) }));

      const release: AdapterServingRelease = {
        id: worker.release,
        version: 'v1',
        createdAtMs: Date.now(),
        adapter: new AdapterModel(c.adapter(), true),
        userPrefix: c.side === 'user' ? ownPrefix : otherPrefix,
        itemPrefix: c.side === 'item' ? ownPrefix : otherPrefix,
        safeguardPrefix: undefined,
      };
      const pipeline = new ScoringPipeline({
        source: new MapStateSource(values),
        releases: fixedRelease(release),
        serving: { safeguard: c.side, freshnessMs: 0, fetchTimeoutMs: 5000, defaultDeadlineMs: 5000, cacheEntries: 4096, fetchMaxKeys: 1024 },
        defaultMetrics: false,
      });
      pipelines.push(pipeline);
      await pipeline.start();

      // The next event of a seen own entity whose partner is seen too.
      const next = c.events.slice(HISTORY).find((e) => states.has(entityIdOf(e, c.side)) && partners.has(entityIdOf(e, other)));
      assert.ok(next !== undefined, 'a next event of a seen entity');
      // Its pair, a pair with an unseen own entity, a pair with an unseen partner (same features).
      const unseen = (e: LabelledEvent, side: Side): LabelledEvent => (side === 'user' ? { ...e, userId: `${e.userId}-new` } : { ...e, itemId: `${e.itemId}-new` });
      const pairs = [next, unseen(next, c.side), unseen(next, other)];
      const guard = new Safeguard();
      const expected = pairs.map((e) => {
        const s = states.get(entityIdOf(e, c.side));
        const st = s === undefined ? ((worker.initialStates?.([e]) ?? [worker.initialState(e)])[0] as Float32Array) : s.st.slice();
        const view = partners.has(entityIdOf(e, other)) ? partnerView(entityIdOf(e, other)) : undefined;
        const baseline = new Float32Array(1);
        const [p] = worker.predictThenAdapt({ events: [e], states: [st], others: [view], baseline });
        return guard.mix(guard.initialState(), s?.count ?? 0, p ?? NaN, baseline[0] ?? NaN);
      });
      // One request per user: the pairs of each user as its candidates.
      const byUser = new Map<string, number[]>();
      pairs.forEach((e, i) => byUser.set(e.userId, [...(byUser.get(e.userId) ?? []), i]));
      const sources: string[] = new Array<string>(pairs.length);
      for (const [userId, idx] of byUser) {
        const first = pairs[idx[0] ?? 0] as LabelledEvent;
        const req = parseScoreRequest(
          { user: { id: userId, features: first.userFeatures }, candidates: idx.map((i) => ({ id: pairs[i]?.itemId, features: pairs[i]?.itemFeatures })) },
          { maxCandidates: 10 },
        );
        const body = JSON.parse(await pipeline.score(req, performance.now(), 5000)) as { release: string; user: { source: string }; scores: { score: number; source: string }[] };
        assert.equal(body.release, worker.release);
        idx.forEach((i, j) => {
          const got = body.scores[j];
          assert.ok(got !== undefined);
          assert.ok(Math.abs(got.score - (expected[i] ?? NaN)) <= TOL, `${c.name} pair ${i}: served ${got.score}, the worker ${expected[i]}`);
          sources[i] = c.side === 'item' ? got.source : body.user.source;
        });
      }
      assert.deepEqual(sources, ['fresh', 'cold', 'fresh'], 'the own entity: stored, unseen, stored');
    });
  }
});
