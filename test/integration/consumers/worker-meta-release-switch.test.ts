/**
 * Release switch in mid-stream for each meta adapter (emerg, coldnas, fixed-adaptive), against real
 * Kafka, Redis and ClickHouse: a worker running release A of a kind is under load (working through
 * a backlog, more events arriving) when release B of the same kind (same layout, other shared
 * parameters) is promoted. Checks:
 *   - no event lost or doubled: each event exactly once in the log, with one release id; per entity
 *     the release changes once, A then B, and the worker ends on B;
 *   - the log and every state equal an offline replay that follows each event's logged release with
 *     adapters built from A and B (the logged scores: the replay's mixed with its baselines by the
 *     worker's safeguard per partition, which continues across a keep release and starts afresh in
 *     a reinit release's state epoch): under `keep` (emerg, fixed-adaptive) an entity seen under A
 *     continues from its state and its count, an entity first seen under B starts from B's initial
 *     state (EmerG: B's generated ID and graph; fixed-adaptive: B's fa.init); under `reinit`
 *     (coldnas) every entity restarts at B's initial state and count 0 in B's state epoch, while
 *     A's epoch keeps A's states as A left them;
 *   - every state stored under B's keys decodes, has B's state size and finite values.
 * Entities renamed in the last 40% of the stream are new to both releases, so new-under-B entities exist.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Adapter } from '../../../adapters/types.js';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import { createAdapterReleaseWatcher, epochAdapterSegment, type ReleasedAdapter } from '../../../consumers/release-adapter.js';
import { AdaptationWorker } from '../../../consumers/worker.js';
import type { ReleaseWatcher } from '../../../model-store/release-sync.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import type { EntityState } from '../../../model-store/types.js';
import { initBackend } from '../../../models/backend.js';
import { entityIdOf, type LabelledEvent, type Side } from '../../../schemas/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { DeadLetterWriter } from '../../../streams/dead-letters.js';
import { EventProducer } from '../../../streams/producer.js';
import { userEvents } from '../../unit/adapters/user-fixtures.js';
import { clickhouse, CLICKHOUSE_URL, DATABASE, dropKeys, dropTable, events, KAFKA, names, query, REDIS_URL, waitFor } from './harness.js';
import { adapterOf, KEEP_ALL_EVENTS, layoutFor, produceBySide, publishMeta, safeguardedScores, SIDE_OF, storedStates, type MetaKind, type RawScore } from './meta-fixtures.js';

const N = 3000;
const TOL = 1e-5;
/** Events per second produced while the worker runs. */
const RATE = 1000;

/** The stream of one case: entities renamed from 60% on are first seen there. */
function streamOf(kind: MetaKind, seed: number): LabelledEvent[] {
  const side = SIDE_OF[kind];
  const base = side === 'item' ? events(N, seed) : userEvents(N, seed, 150);
  const ids = [...new Set(base.map((e) => entityIdOf(e, side)))];
  const renamed = new Set(ids.filter((_, i) => i % 3 === 0));
  return base.map((e, i) => {
    const id = entityIdOf(e, side);
    if (i < 0.6 * N || !renamed.has(id)) return e;
    return side === 'item' ? { ...e, itemId: `${id}-b` } : { ...e, userId: `${id}-b` };
  });
}

/** Partitions of the event topic. */
const PARTITIONS = 3;

interface Replay {
  /** The adapters' own scores (before the safeguard) and baselines. */
  raw: Map<string, RawScore>;
  priors: Map<string, number>;
  /** Final state and count per chain: the entity id (keep) or `${release}|${entity id}` (reinit). */
  chains: Map<string, { state: Float32Array; count: number; first: LabelledEvent; firstRelease: string }>;
}

/**
 * Offline replay following each event's logged release: the k-th event of each chain in wave k,
 * split by release; a fresh chain starts from its release's initial state(s) (batched when offered).
 */
function replay(evs: readonly LabelledEvent[], side: Side, releaseOf: (e: LabelledEvent) => string, adapters: ReadonlyMap<string, Adapter>, reinit: boolean): Replay {
  const keyOf = (e: LabelledEvent): string => (reinit ? `${releaseOf(e)}|${entityIdOf(e, side)}` : entityIdOf(e, side));
  const waves: LabelledEvent[][] = [];
  const seen = new Map<string, number>();
  for (const e of evs) {
    const k = seen.get(keyOf(e)) ?? 0;
    seen.set(keyOf(e), k + 1);
    (waves[k] ??= []).push(e);
  }
  const out: Replay = { raw: new Map(), priors: new Map(), chains: new Map() };
  for (const wave of waves) {
    for (const [rel, adapter] of adapters) {
      const group = wave.filter((e) => releaseOf(e) === rel);
      const fresh = group.filter((e) => !out.chains.has(keyOf(e)));
      const init = adapter.initialStates?.(fresh) ?? fresh.map((e) => adapter.initialState(e));
      fresh.forEach((e, i) => out.chains.set(keyOf(e), { state: init[i]!, count: 0, first: e, firstRelease: rel }));
      const chains = group.map((e) => out.chains.get(keyOf(e))!);
      const baseline = new Float32Array(group.length);
      const scores = adapter.predictThenAdapt({ events: group, states: chains.map((c) => c.state), baseline });
      group.forEach((e, i) => {
        const chain = chains[i];
        assert.ok(chain !== undefined);
        out.raw.set(e.eventId, { score: scores[i] ?? NaN, baseline: baseline[i] ?? NaN, prior: chain.count });
        out.priors.set(e.eventId, chain.count++);
      });
    }
  }
  return out;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'state sizes');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('meta adapters: release switch in mid-stream (Kafka + Redis + ClickHouse)', { timeout: 400_000 }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  before(async () => {
    await initBackend('cpu');
  });
  after(async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        process.stderr.write(`cleanup failed: ${String(err)}\n`);
      }
    }
  });

  const cases: { kind: MetaKind; tag: string; seed: number; policy: 'keep' | 'reinit' }[] = [
    { kind: 'emerg', tag: 'emswitch', seed: 81, policy: 'keep' },
    { kind: 'coldnas', tag: 'cnswitch', seed: 82, policy: 'reinit' },
    { kind: 'fixed-adaptive', tag: 'faswitch', seed: 83, policy: 'keep' },
  ];
  for (const c of cases) {
    it(`${c.kind} (${c.policy}): A → B under load, no event lost or doubled, states continue or restart as B declares`, { timeout: 120_000 }, async (t) => {
      const side = SIDE_OF[c.kind];
      const reinit = c.policy === 'reinit';
      const n = names(c.tag);
      await ensureTopics(KAFKA, [
        { topic: n.topic, partitions: PARTITIONS, config: { ...KEEP_ALL_EVENTS } },
        { topic: n.dlq, partitions: 1 },
      ]);
      const root = await mkdtemp(join(tmpdir(), `thaw-${c.tag}-`));
      const spoolDir = await mkdtemp(join(tmpdir(), 'thaw-spool-'));
      const producer = new EventProducer({ kafka: KAFKA });
      await producer.connect();
      const sink = new ClickHouseSink({ url: CLICKHOUSE_URL, database: DATABASE, table: n.table, spoolDir });
      await sink.ensureSchema();
      const redisStore = new RedisEntityStore({ redis: { url: REDIS_URL }, keyPrefix: n.prefix });
      const ch = clickhouse();
      let watcher: ReleaseWatcher<ReleasedAdapter> | undefined;
      let worker: AdaptationWorker | undefined;
      cleanups.push(async () => {
        if (worker?.state === 'RUNNING') await worker.stop();
        await watcher?.stop();
        await sink.close();
        await redisStore.close();
        await producer.close();
        try {
          await dropTable(ch, n.table);
        } finally {
          await ch.close();
        }
        await dropKeys(REDIS_URL, n.prefix);
        await deleteTopics(KAFKA, [n.topic, n.dlq]);
        await rm(root, { recursive: true, force: true });
        await rm(spoolDir, { recursive: true, force: true });
      });

      const evs = streamOf(c.kind, c.seed);
      const layout = layoutFor(c.kind, evs);
      const store = new ReleaseStore({ root });
      const relA = await publishMeta(store, c.kind, layout, c.seed);
      const ready: string[] = [];
      // Polls are a minute apart: the switch happens when the test checks right after promoting B.
      watcher = await createAdapterReleaseWatcher({ store, model: c.kind, adapter: c.kind, side, pollIntervalMs: 60_000, onRelease: (r) => ready.push(r.version) });
      assert.equal((await watcher.start()).value.adapter.release, relA.release);
      worker = new AdaptationWorker({
        kafka: KAFKA,
        side,
        releaseWatcher: watcher,
        store: redisStore,
        sink,
        deadLetters: new DeadLetterWriter(producer, n.dlq),
        topic: n.topic,
        groupId: n.group,
        fromBeginning: true,
        maxBatchMessages: 100,
        metricsPort: 0,
      });
      await worker.start();
      const w = worker;
      const wt = watcher;

      // Load: the first 60% at once (a backlog the worker is working through, micro-batches in
      // flight on every partition), B published and promoted while the worker is in that backlog,
      // then the rest at a steady rate.
      const burst = 0.6 * N;
      await produceBySide(producer, n.topic, side, evs.slice(0, burst));
      await waitFor('worker mid-stream', () => w.stats().processed >= 0.3 * N, 60_000, 20);
      const B = await publishMeta(store, c.kind, layout, c.seed + 100);
      await wt.checkNow();
      const atSwitch = w.stats().processed;
      const t0 = Date.now();
      const chunk = 100;
      for (let i = burst; i < evs.length; i += chunk) {
        await produceBySide(producer, n.topic, side, evs.slice(i, i + chunk));
        const due = t0 + ((i + chunk - burst) / RATE) * 1000;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      }
      assert.deepEqual(ready, [B.version], 'B verified and built by the watcher');
      await waitFor('worker caught up', async () => w.stats().processed >= N && (await w.lag()) === 0, 60_000);
      const s = w.stats();
      assert.deepEqual([s.processed, s.skipped, s.deadLetters, s.release.version, s.release.switches], [N, 0, 0, B.version, 1]);
      await w.drain();
      await sink.flush();

      // The log: every event once, with one release; per entity A then B.
      const rows = await query<{ event_id: string; n: string; rels: string; rel: string; sc: number; pc: string | number }>(
        ch,
        `SELECT event_id, count() AS n, uniqExact(release) AS rels, any(release) AS rel, any(score) AS sc, any(prior_count) AS pc
         FROM ${DATABASE}.${n.table} WHERE namespace = 'live' AND adapter = '${c.kind}' GROUP BY event_id`,
      );
      assert.equal(rows.length, N, 'every event in the log');
      const rowOf = new Map(rows.map((r) => [r.event_id, r]));
      assert.ok(
        rows.every((r) => Number(r.n) === 1 && Number(r.rels) === 1),
        'no event predicted twice',
      );
      const releaseOf = (e: LabelledEvent): string => {
        const r = rowOf.get(e.eventId);
        assert.ok(r !== undefined, `event ${e.eventId} missing from the log`);
        return r.rel;
      };
      const perRelease = new Map<string, number>();
      for (const e of evs) perRelease.set(releaseOf(e), (perRelease.get(releaseOf(e)) ?? 0) + 1);
      assert.deepEqual(new Set(perRelease.keys()), new Set([relA.release, B.release]), 'rows carry A or B');
      t.diagnostic(`processed when B was ready: ${atSwitch}; rows per release: ${JSON.stringify([...perRelease])}`);
      const lastRel = new Map<string, string>();
      for (const e of evs) {
        const id = entityIdOf(e, side);
        if (lastRel.get(id) === B.release) assert.equal(releaseOf(e), B.release, `${id}: B then A`);
        lastRel.set(id, releaseOf(e));
      }
      assert.ok(
        evs.slice(-300).every((e) => releaseOf(e) === B.release),
        'the end of the stream ran on B',
      );

      // The offline replay with A's and B's own adapters, following each event's release.
      const adapterA = await adapterOf(store, c.kind, relA.version);
      const adapterB = await adapterOf(store, c.kind, B.version);
      const ref = replay(
        evs,
        side,
        releaseOf,
        new Map([
          [relA.release, adapterA],
          [B.release, adapterB],
        ]),
        reinit,
      );
      const logged = safeguardedScores(evs, side, PARTITIONS, ref.raw, (e) => (reinit ? releaseOf(e) : ''));
      let worstScore = 0;
      for (const e of evs) {
        const r = rowOf.get(e.eventId)!;
        assert.equal(Number(r.pc), ref.priors.get(e.eventId), `prior count of ${e.eventId} (${r.rel})`);
        worstScore = Math.max(worstScore, Math.abs(Number(r.sc) - logged.get(e.eventId)!));
      }
      assert.ok(worstScore <= TOL, `logged scores differ from the replay by up to ${worstScore}`);

      // Entities of each kind exist: continuing across the switch, and first seen under B.
      const entities = [...new Set(evs.map((e) => entityIdOf(e, side)))];
      const rels = (id: string): Set<string> => new Set(evs.filter((e) => entityIdOf(e, side) === id).map(releaseOf));
      const across = entities.filter((id) => rels(id).size === 2);
      const newUnderB = entities.filter((id) => {
        const r = rels(id);
        return r.size === 1 && r.has(B.release);
      });
      assert.ok(across.length >= 5 && newUnderB.length >= 5, `entities across the switch ${across.length}, new under B ${newUnderB.length}`);

      // Stored states: B's keys hold valid B states equal to the replay's; under reinit A's epoch is untouched.
      const segA = epochAdapterSegment(c.kind, reinit ? relA.version : undefined);
      const segB = epochAdapterSegment(c.kind, reinit ? B.version : undefined);
      const atB = await storedStates(REDIS_URL, n.prefix, { namespace: 'live', side, adapter: segB });
      const wantB = [...ref.chains].filter(([k]) => !reinit || k.startsWith(`${B.release}|`));
      assert.equal(atB.size, wantB.length, `states under ${segB}`);
      let worstState = 0;
      for (const [key, chain] of wantB) {
        const id = reinit ? key.slice(B.release.length + 1) : key;
        const got: EntityState | undefined = atB.get(id);
        assert.ok(got !== undefined, `state of ${id} missing under ${segB}`);
        assert.equal(got.params.length, adapterB.stateSize, `state size of ${id}`);
        assert.ok(
          got.params.every((v) => Number.isFinite(v)),
          `state of ${id} is finite`,
        );
        assert.equal(got.count, chain.count, `count of ${id}`);
        worstState = Math.max(worstState, maxDiff(got.params, chain.state));
      }
      assert.ok(worstState <= TOL, `states under B differ from the replay by up to ${worstState}`);
      t.diagnostic(`max |diff|: scores ${worstScore.toExponential(2)}, states ${worstState.toExponential(2)}; across ${across.length}, new under B ${newUnderB.length}`);
      if (reinit) {
        // A's epoch: the entities A saw, with A's events only; B's epoch restarted every entity at count 0.
        const atA = await storedStates(REDIS_URL, n.prefix, { namespace: 'live', side, adapter: segA });
        const wantA = [...ref.chains].filter(([k]) => k.startsWith(`${relA.release}|`));
        assert.equal(atA.size, wantA.length, `states under ${segA}`);
        for (const [key, chain] of wantA) assert.equal(atA.get(key.slice(relA.release.length + 1))?.count, chain.count, `A-epoch count of ${key}`);
        for (const id of across) {
          const first = evs.find((e) => entityIdOf(e, side) === id && releaseOf(e) === B.release)!;
          assert.equal(Number(rowOf.get(first.eventId)!.pc), 0, `${id} restarts under B`);
        }
      } else {
        // keep: one key per entity; the count runs across the switch.
        for (const id of across) {
          const first = evs.find((e) => entityIdOf(e, side) === id && releaseOf(e) === B.release)!;
          assert.ok(Number(rowOf.get(first.eventId)!.pc) > 0, `${id} continues under B`);
        }
      }
      // Initial states: new entities start from B's, not A's (the two releases' initial states differ).
      const probe = evs.find((e) => newUnderB.includes(entityIdOf(e, side)))!;
      const initA = adapterA.initialStates?.([probe])[0] ?? adapterA.initialState(probe);
      const initB = adapterB.initialStates?.([probe])[0] ?? adapterB.initialState(probe);
      const scoreA = adapterA.predict({ events: [probe], states: [initA.slice()] })[0]!;
      const scoreB = adapterB.predict({ events: [probe], states: [initB.slice()] })[0]!;
      assert.ok(Math.abs(scoreA - scoreB) > 1e-4, `A and B score a new entity differently (${scoreA} vs ${scoreB})`);
      assert.ok(Math.abs(ref.raw.get(probe.eventId)!.score - scoreB) <= TOL, `the first event of new ${entityIdOf(probe, side)} is scored from B's initial state`);
      if (c.kind !== 'coldnas') assert.ok(maxDiff(initA, initB) > 1e-3, "B's initial states differ from A's");
      if (c.kind === 'emerg') {
        // The generated anchors (e0, A0) kept in the state: A's for entities A started, B's for the new ones.
        const S = adapterB.stateSize;
        // [b, s, e, A, e0, A0, Ge, GA]: the anchors e0, A0 are the second half before the accumulators.
        const anchor = (st: Float32Array): Float32Array => st.subarray(S / 2, S - 2);
        for (const id of [...across.slice(0, 20), ...newUnderB.slice(0, 20)]) {
          const chain = ref.chains.get(id)!;
          const gen = (chain.firstRelease === B.release ? adapterB : adapterA).initialStates!([chain.first])[0]!;
          assert.ok(maxDiff(anchor(atB.get(id)!.params), anchor(gen)) <= TOL, `anchors of ${id} are those of ${chain.firstRelease}`);
        }
      }
      adapterA.dispose?.();
      adapterB.dispose?.();
    });
  }
});
