/**
 * The user-side adapters (`coldnas`, `fixed-adaptive`) in a real AdaptationWorker: Kafka topic keyed
 * by user, Redis states, ClickHouse prediction log. The adapters are built directly from small
 * randomly initialised models (not from a release).
 *
 * For each adapter, the same events are consumed twice, by two groups into two Redis prefixes:
 *   - uninterrupted: one worker to the end;
 *   - crash: a worker whose store dies right after writing the states of a micro-batch, before the
 *     offset commit (the worker goes FAILED, as a process killed there would stop), then a fresh
 *     worker that gets the batch redelivered and must skip it.
 * Both must end with the states (Redis) and scores (ClickHouse, one per event) of the adapter
 * called directly offline, one event at a time in stream order (its scores mixed with its baselines
 * by the worker's safeguard per partition), to 1e-5.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ColdNasAdapter } from '../../../adapters/coldnas.js';
import { FixedAdaptiveAdapter } from '../../../adapters/fixed-adaptive.js';
import type { Adapter } from '../../../adapters/types.js';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import { AdaptationWorker } from '../../../consumers/worker.js';
import { initBackend } from '../../../models/backend.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import type { EntityState, EntityStore, ProgressWrite, ScopedWrite, StateScope } from '../../../model-store/types.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { DeadLetterWriter } from '../../../streams/dead-letters.js';
import { EventProducer } from '../../../streams/producer.js';
import { encodeLabelled } from '../../../streams/serde.js';
import { coldNas, fixedAdaptive, sequentialRun, userEvents, userLayout } from '../../unit/adapters/user-fixtures.js';
import { clickhouse, CLICKHOUSE_URL, committedOf, DATABASE, dropKeys, dropTable, KAFKA, KEEP_ALL_EVENTS, names, query, REDIS_URL, waitFor } from './harness.js';
import { safeguardedScores, type RawScore } from './meta-fixtures.js';

const N = 3000;
const TOL = 1e-5;

/** Produces events keyed by user (as the re-keying stage does for the user side), in order. */
async function produceByUser(producer: EventProducer, topic: string, evs: readonly LabelledEvent[]): Promise<void> {
  for (let at = 0; at < evs.length; at += 1000) {
    await producer.send(
      topic,
      evs.slice(at, at + 1000).map((e) => ({ key: e.userId, value: encodeLabelled(e), timestampMs: e.timeMs })),
    );
  }
}

/** A store that writes the states of its `crashAt`-th putMany and then throws (not an outage): a crash before the commit. */
class CrashingStore implements EntityStore {
  private puts = 0;
  constructor(
    private readonly inner: EntityStore,
    private readonly crashAt: number,
  ) {}
  getMany(scope: StateScope, ids: readonly string[]): Promise<(EntityState | undefined)[]> {
    return this.inner.getMany(scope, ids);
  }
  async putMany(scope: StateScope, entries: readonly { entityId: string; state: EntityState }[]): Promise<{ written: number; skipped: number }> {
    const r = await this.inner.putMany(scope, entries);
    if (++this.puts === this.crashAt) throw new Error('simulated crash: states written, offset not committed');
    return r;
  }
  /** One atomic call of the inner store (the states with the safeguard's and the progress), then the crash if it is the `crashAt`-th write. */
  async putManyScoped(writes: readonly ScopedWrite[], progress?: ProgressWrite): Promise<{ written: number; skipped: number }[]> {
    if (this.inner.putManyScoped === undefined) throw new Error('CrashingStore needs an inner store with putManyScoped');
    const r = await this.inner.putManyScoped(writes, progress);
    if (++this.puts === this.crashAt) throw new Error('simulated crash: states written, offset not committed');
    return r;
  }
  getProgress(scope: StateScope, topic: string, partition: number): Promise<number | undefined> {
    return this.inner.getProgress === undefined ? Promise.resolve(undefined) : this.inner.getProgress(scope, topic, partition);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Partitions of the event topic. */
const PARTITIONS = 3;

interface Offline {
  scores: Map<string, number>;
  priors: Map<string, number>;
  states: Map<string, Float32Array>;
  counts: Map<string, number>;
}

function offline(adapter: Adapter, evs: readonly LabelledEvent[]): Offline {
  const run = sequentialRun(adapter, evs);
  const counts = new Map<string, number>();
  const priors = new Map<string, number>();
  const raw = new Map<string, RawScore>();
  evs.forEach((e, i) => {
    const c = counts.get(e.userId) ?? 0;
    priors.set(e.eventId, c);
    counts.set(e.userId, c + 1);
    raw.set(e.eventId, { score: run.scores[i] ?? NaN, baseline: run.baselines[i] ?? NaN, prior: c });
  });
  return { scores: safeguardedScores(evs, 'user', PARTITIONS, raw), priors, states: run.states, counts };
}

describe('AdaptationWorker with the user-side adapters (Kafka + Redis + ClickHouse)', { timeout: 300_000 }, () => {
  const evs = userEvents(N, 51, 150);
  const layout = userLayout(evs);
  const cases: { name: string; make: () => Adapter }[] = [
    { name: 'coldnas', make: () => new ColdNasAdapter(coldNas(layout), layout, 'coldnas/it') },
    { name: 'fixed-adaptive', make: () => new FixedAdaptiveAdapter(fixedAdaptive(layout), layout, 'fixed-adaptive/it') },
  ];
  const n = names('useradapt');
  const spoolDir = mkdtempSync(join(tmpdir(), 'thaw-user-adapters-'));
  const tables: string[] = [];
  const prefixes: string[] = [];
  let producer: EventProducer;

  before(async () => {
    await initBackend('cpu');
    await ensureTopics(KAFKA, [
      { topic: n.topic, partitions: PARTITIONS, config: { ...KEEP_ALL_EVENTS } },
      { topic: n.dlq, partitions: 1 },
    ]);
    producer = new EventProducer({ kafka: KAFKA });
    await producer.connect();
    await produceByUser(producer, n.topic, evs);
  });
  after(async () => {
    await producer.close();
    const ch = clickhouse();
    try {
      for (const t of tables) await dropTable(ch, t);
    } finally {
      await ch.close();
    }
    for (const p of prefixes) await dropKeys(REDIS_URL, p);
    await deleteTopics(KAFKA, [n.topic, n.dlq]);
    rmSync(spoolDir, { recursive: true, force: true });
  });

  /** One worker run of `adapter` under group `tag` until it has caught up (or failed), then drained. */
  async function runWorker(tag: string, adapter: Adapter, wrap?: (s: EntityStore) => EntityStore): Promise<AdaptationWorker> {
    const table = `${n.table}_${tag.replace(/-/g, '_')}`;
    const prefix = `${n.prefix}${tag}`;
    if (!tables.includes(table)) tables.push(table);
    if (!prefixes.includes(prefix)) prefixes.push(prefix);
    const sink = new ClickHouseSink({ url: CLICKHOUSE_URL, database: DATABASE, table, spoolDir: join(spoolDir, `${tag}-${Date.now()}`) });
    await sink.ensureSchema();
    const redisStore = new RedisEntityStore({ redis: { url: REDIS_URL }, keyPrefix: prefix });
    const worker = new AdaptationWorker({
      kafka: KAFKA,
      side: 'user',
      adapter,
      store: wrap === undefined ? redisStore : wrap(redisStore),
      sink,
      deadLetters: new DeadLetterWriter(producer, n.dlq),
      topic: n.topic,
      groupId: `${n.group}-${tag}`,
      fromBeginning: true,
      maxBatchMessages: 150,
      metricsPort: 0,
    });
    try {
      await worker.start();
      await waitFor(`${tag}: all committed or failed`, async () => worker.state === 'FAILED' || (await committedOf(worker.groupId, n.topic)) >= N, 120_000);
      if (worker.state === 'FAILED') await worker.whenStopped();
      else await worker.drain();
    } finally {
      if (worker.state === 'RUNNING') await worker.stop();
      await sink.close();
      await redisStore.close();
    }
    return worker;
  }

  async function assertMatchesOffline(tag: string, scope: StateScope, ref: Offline): Promise<void> {
    const store = new RedisEntityStore({ redis: { url: REDIS_URL }, keyPrefix: `${n.prefix}${tag}` });
    try {
      const users = [...ref.states.keys()];
      const got = await store.getMany(scope, users);
      let maxDiff = 0;
      users.forEach((u, i) => {
        const s = got[i];
        assert.ok(s !== undefined, `${tag}: state of ${u} missing in Redis`);
        assert.equal(s.count, ref.counts.get(u), `${tag}: count of ${u}`);
        const want = ref.states.get(u)!;
        assert.equal(s.params.length, want.length);
        for (let k = 0; k < want.length; k++) maxDiff = Math.max(maxDiff, Math.abs(s.params[k]! - want[k]!));
      });
      assert.ok(maxDiff <= TOL, `${tag}: Redis states differ from the offline run by up to ${maxDiff}`);
    } finally {
      await store.close();
    }
    const ch = clickhouse();
    try {
      const rows = await query<{ event_id: string; n: string; s: number; s_spread: number; pc: string | number }>(
        ch,
        `SELECT event_id, count() AS n, any(score) AS s, max(score) - min(score) AS s_spread, any(prior_count) AS pc
         FROM ${DATABASE}.${n.table}_${tag.replace(/-/g, '_')} WHERE namespace = '${scope.namespace}' AND adapter = '${scope.adapter}' GROUP BY event_id`,
      );
      assert.equal(rows.length, N, `${tag}: one distinct prediction per event`);
      let maxDiff = 0;
      for (const r of rows) {
        const want = ref.scores.get(r.event_id);
        assert.ok(want !== undefined, `${tag}: unexpected event ${r.event_id}`);
        assert.equal(Number(r.s_spread), 0, `${tag}: duplicates of ${r.event_id} disagree`);
        assert.equal(Number(r.pc), ref.priors.get(r.event_id), `${tag}: prior count of ${r.event_id}`);
        maxDiff = Math.max(maxDiff, Math.abs(Number(r.s) - want));
      }
      assert.ok(maxDiff <= TOL, `${tag}: logged scores differ from the offline run by up to ${maxDiff}`);
    } finally {
      await ch.close();
    }
  }

  for (const c of cases) {
    it(`${c.name}: online states and scores equal offline, uninterrupted and across a crash before the commit`, async (t) => {
      const scope: StateScope = { namespace: 'live', side: 'user', adapter: c.name };
      const ref = offline(c.make(), evs);
      assert.ok(
        [...ref.counts.values()].some((k) => k >= 10),
        'users have histories, not single events',
      );

      const whole = await runWorker(`${c.name}-whole`, c.make());
      assert.equal(whole.state, 'STOPPED');
      assert.deepEqual([whole.stats().processed, whole.stats().skipped, whole.stats().deadLetters], [N, 0, 0]);
      await assertMatchesOffline(`${c.name}-whole`, scope, ref);

      const crashed = await runWorker(`${c.name}-crash`, c.make(), (s) => new CrashingStore(s, 6));
      assert.equal(crashed.state, 'FAILED', 'the simulated crash stops the first worker');
      const committed = await committedOf(`${n.group}-${c.name}-crash`, n.topic);
      assert.ok(committed < N, `the crash happened mid-stream (committed ${committed} of ${N})`);
      const resumed = await runWorker(`${c.name}-crash`, c.make());
      assert.equal(resumed.state, 'STOPPED');
      const s = resumed.stats();
      // The crashed batch counts in neither run's `processed` (its handler failed) but was applied, with the
      // partition's progress in the same atomic write: the restart starts after it (or skips it on redelivery).
      assert.ok(crashed.stats().processed + s.processed < N, 'the batch applied before the crash is not applied again');
      assert.ok(s.processed + s.skipped < N - committed, `the restart starts after the progress stored with the states, not at the committed offset ${committed}`);
      t.diagnostic(`${c.name}: committed at the crash ${committed}; after restart processed ${s.processed}, skipped ${s.skipped}`);
      await assertMatchesOffline(`${c.name}-crash`, scope, ref);
    });
  }
});
