/**
 * The item worker running the `emerg` adapter from an EmerG release directory, against real Kafka,
 * Redis and ClickHouse (scripts/services.sh up):
 * (a) the entity states online (Redis) and the logged scores equal the adapter called directly,
 *     offline, in waves over the same events in the same per-item order, its scores mixed with
 *     its baselines by the safeguard per partition as the worker does (to 1e-5);
 * (b) a worker process (consumers/worker-main.ts) SIGKILLed mid-stream and restarted ends with the
 *     same states and the same de-duplicated prediction log.
 * The EmerG is random-init (small), bundled with its event layout and published with ReleaseStore.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ClickHouseClient } from '@clickhouse/client';
import { EmergAdapter } from '../../../adapters/emerg.js';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import { createAdapterReleaseWatcher, type ReleasedAdapter } from '../../../consumers/release-adapter.js';
import { AdaptationWorker } from '../../../consumers/worker.js';
import type { ReleaseWatcher } from '../../../model-store/release-sync.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import type { StateScope } from '../../../model-store/types.js';
import { initBackend } from '../../../models/backend.js';
import { Emerg } from '../../../models/emerg.js';
import { fieldLayoutOf, inferEventLayout, type EventLayout } from '../../../models/event-layout.js';
import { bundleCtr } from '../../../models/onnx/bundle.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { DeadLetterWriter } from '../../../streams/dead-letters.js';
import { EventProducer } from '../../../streams/producer.js';
import { clickhouse, CLICKHOUSE_URL, committedOf, DATABASE, dropKeys, dropTable, events, KAFKA, KEEP_ALL_EVENTS, lagOf, names, produceByItem, query, REDIS_URL, waitFor } from './harness.js';
import { spawnWorker, type WorkerProcess } from './process.js';
import { safeguardedScores, type RawScore } from './meta-fixtures.js';

// Same backend in this process and in the spawned workers: the comparisons are numeric.
process.env.THAW_TF_BACKEND = 'cpu';
await initBackend('cpu');

const RELEASE_MODEL = 'emerg';
const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'emerg' };
const TOL = 1e-5;

async function publishEmerg(root: string, evs: readonly LabelledEvent[]): Promise<{ model: Emerg; layout: EventLayout; release: string }> {
  const layout = inferEventLayout('item', evs, { vocab: 4096, maxSlots: 3 });
  const model = new Emerg({ layout: fieldLayoutOf(layout), vocab: layout.vocab, dim: 4, layers: 2, genHidden: 8, seed: 11 });
  const store = new ReleaseStore({ root });
  const b = bundleCtr(model, { eventLayout: layout });
  const m = await store.publish({ model: RELEASE_MODEL, architecture: b.architecture, files: b.files });
  await store.promote(RELEASE_MODEL, m.version);
  return { model, layout, release: `${RELEASE_MODEL}/${m.version}` };
}

/** Partitions of the event topics. */
const PARTITIONS = 3;

/**
 * Offline: the adapter called directly, the k-th event of each item in wave k, in stream order;
 * the scores the worker logs are its scores after the safeguard (per partition, in offset order).
 */
function offlineWaves(adapter: EmergAdapter, evs: readonly LabelledEvent[]): { states: Map<string, Float32Array>; counts: Map<string, number>; scores: Map<string, { score: number; prior: number }> } {
  const counts = new Map<string, number>();
  const waves: LabelledEvent[][] = [];
  for (const e of evs) {
    const k = counts.get(e.itemId) ?? 0;
    counts.set(e.itemId, k + 1);
    (waves[k] ??= []).push(e);
  }
  const states = new Map<string, Float32Array>();
  const raw = new Map<string, RawScore>();
  waves.forEach((wave, k) => {
    const fresh = wave.filter((e) => !states.has(e.itemId));
    adapter.initialStates(fresh).forEach((s, i) => states.set(fresh[i]!.itemId, s));
    const baseline = new Float32Array(wave.length);
    const out = adapter.predictThenAdapt({ events: wave, states: wave.map((e) => states.get(e.itemId)!), baseline });
    wave.forEach((e, i) => raw.set(e.eventId, { score: out[i] ?? NaN, baseline: baseline[i] ?? NaN, prior: k }));
  });
  const logged = safeguardedScores(evs, 'item', PARTITIONS, raw);
  const scores = new Map([...raw].map(([id, r]) => [id, { score: logged.get(id)!, prior: r.prior }]));
  return { states, counts, scores };
}

async function assertMatchesOffline(ch: ClickHouseClient, table: string, prefix: string, evs: readonly LabelledEvent[], ref: ReturnType<typeof offlineWaves>, release: string): Promise<void> {
  const rows = await query<{ event_id: string; s: number; s_spread: number; pc: string | number; rel: string; rels: string }>(
    ch,
    `SELECT event_id, any(score) AS s, max(score) - min(score) AS s_spread, any(prior_count) AS pc, any(release) AS rel, uniqExact(release) AS rels
     FROM ${DATABASE}.${table} WHERE namespace = 'live' GROUP BY event_id`,
  );
  assert.equal(rows.length, evs.length, 'one distinct prediction per event');
  let maxDiff = 0;
  for (const r of rows) {
    const want = ref.scores.get(r.event_id);
    assert.ok(want !== undefined, `unexpected event ${r.event_id}`);
    assert.equal(Number(r.pc), want.prior, `prior count of ${r.event_id}`);
    assert.ok(Number(r.s_spread) <= TOL, `duplicates of ${r.event_id} disagree`);
    assert.equal(r.rel, release);
    maxDiff = Math.max(maxDiff, Math.abs(Number(r.s) - want.score));
  }
  assert.ok(maxDiff <= TOL, `online scores differ from offline by up to ${maxDiff}`);
  const store = new RedisEntityStore({ redis: { url: REDIS_URL }, keyPrefix: prefix });
  try {
    const ids = [...ref.states.keys()];
    const got = await store.getMany(scope, ids);
    let worst = 0;
    ids.forEach((id, i) => {
      const s = got[i];
      assert.ok(s !== undefined, `state of ${id} missing in Redis`);
      assert.equal(s.count, ref.counts.get(id), `count of ${id}`);
      const want = ref.states.get(id)!;
      assert.equal(s.params.length, want.length);
      for (let j = 0; j < want.length; j++) worst = Math.max(worst, Math.abs(s.params[j]! - want[j]!));
    });
    assert.ok(worst <= TOL, `Redis states differ from offline by up to ${worst}`);
  } finally {
    await store.close();
  }
}

describe('item worker with the emerg adapter from a release (Kafka + Redis + ClickHouse)', { timeout: 300_000 }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  let root = '';
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'thaw-emerg-rel-'));
  });
  after(async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        process.stderr.write(`cleanup failed: ${String(err)}\n`);
      }
    }
    await rm(root, { recursive: true, force: true });
  });

  it('(a) online states and scores equal the adapter called offline in waves', async () => {
    const n = names('emerg');
    await ensureTopics(KAFKA, [
      { topic: n.topic, partitions: PARTITIONS, config: { ...KEEP_ALL_EVENTS } },
      { topic: n.dlq, partitions: 1 },
    ]);
    const dir = join(root, 'a');
    const spoolDir = await mkdtemp(join(tmpdir(), 'thaw-spool-'));
    const evs = events(3000, 61);
    const { model, layout, release } = await publishEmerg(dir, evs);
    const producer = new EventProducer({ kafka: KAFKA });
    await producer.connect();
    const sink = new ClickHouseSink({ url: CLICKHOUSE_URL, database: DATABASE, table: n.table, spoolDir });
    await sink.ensureSchema();
    const states = new RedisEntityStore({ redis: { url: REDIS_URL }, keyPrefix: n.prefix });
    let watcher: ReleaseWatcher<ReleasedAdapter> | undefined;
    let worker: AdaptationWorker | undefined;
    const ch = clickhouse();
    cleanups.push(async () => {
      if (worker?.state === 'RUNNING') await worker.stop();
      await watcher?.stop();
      await sink.close();
      await states.close();
      await producer.close();
      try {
        await dropTable(ch, n.table);
      } finally {
        await ch.close();
      }
      await dropKeys(REDIS_URL, n.prefix);
      await deleteTopics(KAFKA, [n.topic, n.dlq]);
      await rm(spoolDir, { recursive: true, force: true });
    });

    watcher = await createAdapterReleaseWatcher({ store: new ReleaseStore({ root: dir }), model: RELEASE_MODEL, adapter: 'emerg', side: 'item', pollIntervalMs: 60_000 });
    const active = await watcher.start();
    assert.ok(active.value.adapter instanceof EmergAdapter);
    assert.equal(active.value.adapter.release, release);
    worker = new AdaptationWorker({
      kafka: KAFKA,
      side: 'item',
      releaseWatcher: watcher,
      store: states,
      sink,
      deadLetters: new DeadLetterWriter(producer, n.dlq),
      topic: n.topic,
      groupId: n.group,
      fromBeginning: true,
      maxBatchMessages: 400,
      metricsPort: 0,
    });
    await worker.start();
    await produceByItem(producer, n.topic, evs);
    const w = worker;
    await waitFor('worker caught up', async () => w.stats().processed >= evs.length && (await w.lag()) === 0, 120_000);
    assert.deepEqual([w.stats().skipped, w.stats().deadLetters], [0, 0]);
    await w.drain();
    await sink.flush();

    // Offline: a fresh adapter over the same model and layout, default options like the worker's.
    const ref = offlineWaves(new EmergAdapter(model, layout, release), evs);
    assert.ok(
      [...ref.counts.values()].some((c) => c >= 5),
      'some items are adapted many times',
    );
    await assertMatchesOffline(ch, n.table, n.prefix, evs, ref, release);
  });

  it('(b) killed with SIGKILL and restarted: the same states and log as the offline run', async () => {
    const n = names('emergkill');
    await ensureTopics(KAFKA, [
      { topic: n.topic, partitions: PARTITIONS, config: { ...KEEP_ALL_EVENTS } },
      { topic: n.dlq, partitions: 1 },
    ]);
    const dir = join(root, 'b');
    const spoolDir = await mkdtemp(join(tmpdir(), 'thaw-spool-'));
    const evs = events(4000, 62);
    const { model, layout, release } = await publishEmerg(dir, evs);
    const running: WorkerProcess[] = [];
    const ch = clickhouse();
    cleanups.push(async () => {
      for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      try {
        await dropTable(ch, n.table);
      } finally {
        await ch.close();
      }
      await dropKeys(REDIS_URL, n.prefix);
      await deleteTopics(KAFKA, [n.topic, n.dlq]);
      await rm(spoolDir, { recursive: true, force: true });
    });
    const options = {
      kafka: { brokers: KAFKA.brokers },
      redis: { url: REDIS_URL, keyPrefix: n.prefix },
      clickhouse: { url: CLICKHOUSE_URL, database: DATABASE, table: n.table, spoolDir },
      side: 'item' as const,
      adapter: 'emerg',
      releaseDir: dir,
      releaseModel: RELEASE_MODEL,
      topic: n.topic,
      groupId: n.group,
      deadLetterTopic: n.dlq,
      maxBatchMessages: 100,
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 1000,
      logLevel: 'warn' as const,
    };
    const producer = new EventProducer({ kafka: KAFKA });
    await producer.connect();
    try {
      await produceByItem(producer, n.topic, evs);
    } finally {
      await producer.close();
    }
    const first = spawnWorker(options);
    running.push(first);
    await waitFor('1500 events committed', async () => (await committedOf(n.group, n.topic)) >= 1500, 120_000, 50);
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, 'SIGKILL', first.stderr());
    const committed = await committedOf(n.group, n.topic);
    assert.ok(committed < evs.length, `killed mid-stream (committed ${committed})`);

    const last = spawnWorker(options);
    running.push(last);
    await waitFor('lag 0', async () => (await lagOf(n.group, n.topic)) === 0, 180_000, 200);
    last.child.kill('SIGTERM');
    assert.equal(await last.exited, 0, `drained worker exits 0; stderr:\n${last.stderr()}`);

    const ref = offlineWaves(new EmergAdapter(model, layout, release), evs);
    await assertMatchesOffline(ch, n.table, n.prefix, evs, ref, release);
  });
});
