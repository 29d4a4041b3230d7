/**
 * Live release switches against real Kafka, Redis and ClickHouse (scripts/services.sh up): a worker
 * under load takes a new release announced mid-stream (Kafka topic + Redis pointer) between
 * micro-batches without losing or doubling an event, and a rollback brings the previous release's
 * predictions back exactly.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Adapter } from '../../../adapters/types.js';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import { createAdapterReleaseWatcher, type ReleasedAdapter } from '../../../consumers/release-adapter.js';
import { AdaptationWorker } from '../../../consumers/worker.js';
import { announceRelease } from '../../../model-store/release-announce.js';
import type { ReleaseWatcher } from '../../../model-store/release-sync.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { bundleFm } from '../../../models/onnx/bundle.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { DeadLetterWriter } from '../../../streams/dead-letters.js';
import { EventProducer } from '../../../streams/producer.js';
import { encodeLabelled } from '../../../streams/serde.js';
import { clickhouse, CLICKHOUSE_URL, committedOf, DATABASE, dropKeys, dropTable, events, KAFKA, KEEP_ALL_EVENTS, MODEL, names, produceByItem, query, REDIS_URL, waitFor } from './harness.js';
import { spawnWorker, type WorkerProcess } from './process.js';

const RELEASE_MODEL = 'fm';

function fm(seed: number): FactorizationMachine {
  const m = FactorizationMachine.create({ buckets: MODEL.buckets, k: MODEL.k, seed, initStd: 0.1 });
  m.w0 = seed / 50; // every release scores differently
  return m;
}

async function publish(store: ReleaseStore, model: FactorizationMachine): Promise<string> {
  const parent = (await store.current(RELEASE_MODEL)) ?? null;
  const b = bundleFm(model);
  const m = await store.publish({ model: RELEASE_MODEL, parent, architecture: b.architecture, files: b.files });
  return m.version;
}

/** Produces `evs` keyed by item at about `perSecond`, in chunks, calling `at(i)` after each chunk. */
async function produceAtRate(producer: EventProducer, topic: string, evs: readonly LabelledEvent[], perSecond: number, at: (sent: number) => Promise<void>): Promise<void> {
  const chunk = 500;
  const t0 = Date.now();
  for (let i = 0; i < evs.length; i += chunk) {
    await producer.send(
      topic,
      evs.slice(i, i + chunk).map((e) => ({ key: e.itemId, value: encodeLabelled(e), timestampMs: e.timeMs })),
    );
    await at(Math.min(evs.length, i + chunk));
    const due = t0 + ((i + chunk) / perSecond) * 1000;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
  }
}

/** One event of the log (aliases differ from column names: ClickHouse would substitute them inside aggregates). */
interface Row {
  event_id: string;
  n: string;
  releases: string;
  rel: string;
  sc: number;
  pc: string | number;
}

describe('AdaptationWorker release sync (Kafka + Redis + ClickHouse)', { timeout: 120_000 }, () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        process.stderr.write(`cleanup failed: ${String(err)}\n`);
      }
    }
  });

  it('switches releases under load with no lost or doubled event; rollback restores the old predictions exactly', async () => {
    const n = names('rel');
    const announceTopic = `${n.topic}-releases`;
    await ensureTopics(KAFKA, [
      { topic: n.topic, partitions: 3, config: { ...KEEP_ALL_EVENTS } },
      { topic: n.dlq, partitions: 1 },
      { topic: announceTopic, partitions: 1 },
    ]);
    const root = await mkdtemp(join(tmpdir(), 'thaw-releases-'));
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
    const producer = new EventProducer({ kafka: KAFKA });
    await producer.connect();
    const spoolDir = await mkdtemp(join(tmpdir(), 'thaw-spool-'));
    const sink = new ClickHouseSink({ url: CLICKHOUSE_URL, database: DATABASE, table: n.table, spoolDir });
    await sink.ensureSchema();
    const states = new RedisEntityStore({ redis: { url: REDIS_URL }, keyPrefix: n.prefix });
    let watcher: ReleaseWatcher<ReleasedAdapter> | undefined;
    let worker: AdaptationWorker | undefined;
    cleanups.push(async () => {
      if (worker?.state === 'RUNNING') await worker.stop();
      await watcher?.stop();
      await sink.close();
      await states.close();
      await producer.close();
      redis.disconnect();
      const ch = clickhouse();
      try {
        await dropTable(ch, n.table);
      } finally {
        await ch.close();
      }
      await dropKeys(REDIS_URL, n.prefix);
      await deleteTopics(KAFKA, [n.topic, n.dlq, announceTopic]);
      await rm(root, { recursive: true, force: true });
      await rm(spoolDir, { recursive: true, force: true });
    });

    const store = new ReleaseStore({ root });
    const ready: string[] = [];
    const vA = await publish(store, fm(7));
    await store.promote(RELEASE_MODEL, vA);
    // Polls are a minute apart: within this test only the announcements can trigger the switch.
    watcher = await createAdapterReleaseWatcher({
      store,
      model: RELEASE_MODEL,
      adapter: 'fm-adagrad',
      side: 'item',
      pollIntervalMs: 60_000,
      kafka: { connection: KAFKA, topic: announceTopic },
      redis: { client: redis, prefix: n.prefix },
      onRelease: (r) => ready.push(r.version),
    });
    const adapterA: Adapter = (await watcher.start()).value.adapter;
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
      maxBatchMessages: 500,
      metricsPort: 0,
    });
    await worker.start();
    const w = worker;

    // 20k events at ~4000/s; B is published, promoted and announced once the worker is well into them.
    const evs = events(20_000, 31);
    let vB: string | undefined;
    await produceAtRate(producer, n.topic, evs, 4000, async (sent) => {
      if (vB === undefined && sent >= 8000) {
        await waitFor('worker mid-stream', () => w.stats().processed >= 4000, 30_000, 50);
        vB = await publish(store, fm(8));
        await store.promote(RELEASE_MODEL, vB);
        await announceRelease(store, RELEASE_MODEL, vB, { producer, topic: announceTopic, redis, redisPrefix: n.prefix });
      }
    });
    assert.ok(vB !== undefined, 'B published');
    await waitFor('worker caught up', async () => w.stats().processed >= evs.length && (await w.lag()) === 0, 60_000);
    assert.equal(w.stats().release.version, vB, 'release B taken');
    assert.equal(w.stats().release.switches, 1);
    const s = w.stats();
    assert.deepEqual([s.processed, s.skipped, s.deadLetters], [evs.length, 0, 0]);
    await sink.flush();

    const ch = clickhouse();
    cleanups.push(() => ch.close());
    const idx = new Map(evs.map((e, i) => [e.eventId, i]));
    const rows = await query<Row>(
      ch,
      `SELECT event_id, count() AS n, uniqExact(release) AS releases, any(release) AS rel, any(score) AS sc, any(prior_count) AS pc
       FROM ${DATABASE}.${n.table} WHERE namespace = 'live' GROUP BY event_id`,
    );
    assert.equal(rows.length, evs.length, 'every event in the deduplicated log');
    assert.ok(
      rows.every((r) => idx.has(r.event_id)),
      'no foreign event',
    );
    assert.ok(
      rows.every((r) => Number(r.n) === 1 && Number(r.releases) === 1),
      'no event predicted twice',
    );
    const relA = `${RELEASE_MODEL}/${vA}`;
    const relB = `${RELEASE_MODEL}/${vB}`;
    const byRelease = new Map<string, number>();
    for (const r of rows) byRelease.set(r.rel, (byRelease.get(r.rel) ?? 0) + 1);
    assert.deepEqual(new Set(byRelease.keys()), new Set([relA, relB]), 'both releases in the log');
    assert.ok((byRelease.get(relA) ?? 0) >= 4000 && (byRelease.get(relB) ?? 0) >= 1000, JSON.stringify([...byRelease]));

    // Per item (one partition, in order): releases switch once, A then B; prior counts run 0, 1, 2, …
    const byItem = new Map<string, Row[]>();
    const rowOf = new Map(rows.map((r) => [r.event_id, r]));
    for (const e of evs) {
      const list = byItem.get(e.itemId) ?? [];
      list.push(rowOf.get(e.eventId) as Row);
      byItem.set(e.itemId, list);
    }
    for (const [item, list] of byItem) {
      const firstB = list.findIndex((r) => r.rel === relB);
      if (firstB >= 0)
        assert.ok(
          list.slice(firstB).every((r) => r.rel === relB),
          `item ${item}: the boundary is in order`,
        );
      list.forEach((r, k) => assert.equal(Number(r.pc), k, `item ${item}: prior count of event ${k}`));
    }
    // Every state count adds up (keep-states release: one key per item across both releases).
    const ids = [...byItem.keys()];
    const got = await states.getMany({ namespace: 'live', side: 'item', adapter: 'fm-adagrad' }, ids);
    let total = 0;
    ids.forEach((id, i) => {
      assert.equal(got[i]?.count, byItem.get(id)?.length, `state count of ${id}`);
      total += got[i]?.count ?? 0;
    });
    assert.equal(total, evs.length);

    // Rollback to A, announced on Redis only: the worker takes A back between batches.
    assert.equal(await store.rollback(RELEASE_MODEL), vA);
    await announceRelease(store, RELEASE_MODEL, vA, { redis, redisPrefix: n.prefix });
    // Verified and ready, but not in use until the next micro-batch: an idle worker has nothing to score.
    await waitFor('release A ready', () => ready.at(-1) === vA, 10_000, 50);
    assert.equal(w.stats().release.version, vB);
    // Fresh items after the rollback: their first prediction uses A's cold state, so it can be
    // recomputed independently with the adapter A was started with.
    const more = events(2000, 32).map((e) => ({ ...e, eventId: `rb-${e.eventId}`, itemId: `rb-${e.itemId}` }));
    await produceAtRate(producer, n.topic, more, 4000, () => Promise.resolve());
    await waitFor('worker caught up again', async () => w.stats().processed >= evs.length + more.length && (await w.lag()) === 0, 30_000);
    assert.equal(w.stats().release.version, vA);
    await sink.flush();

    // The adapter of the rolled-back release scores exactly as the original A did.
    const probe = evs.slice(0, 500);
    const stateOf = (e: LabelledEvent): Float32Array => adapterA.initialState(e);
    const want = adapterA.predict({ events: probe, states: probe.map(stateOf) });
    const gotScores = w.adapter.predict({ events: probe, states: probe.map(stateOf) });
    assert.notEqual(w.adapter, adapterA, 'a freshly loaded adapter, not the old object');
    assert.equal(w.adapter.release, relA);
    assert.deepEqual([...gotScores], [...want]);

    const after = await query<Row>(
      ch,
      `SELECT event_id, count() AS n, uniqExact(release) AS releases, any(release) AS rel, any(score) AS sc, any(prior_count) AS pc
       FROM ${DATABASE}.${n.table} WHERE namespace = 'live' AND startsWith(event_id, 'rb-') GROUP BY event_id`,
    );
    assert.equal(after.length, more.length);
    assert.ok(
      after.every((r) => r.rel === relA && Number(r.n) === 1),
      'rows after the rollback carry A',
    );
    const firstOf = new Map<string, LabelledEvent>();
    for (const e of more) if (!firstOf.has(e.itemId)) firstOf.set(e.itemId, e);
    const firsts = [...firstOf.values()];
    const expected = adapterA.predict({ events: firsts, states: firsts.map(stateOf) });
    const logged = new Map(after.map((r) => [r.event_id, r]));
    firsts.forEach((e, i) => {
      const r = logged.get(e.eventId) as Row;
      assert.equal(Number(r.pc), 0);
      assert.equal(Math.fround(Number(r.sc)), expected[i], `score of ${e.eventId}`);
    });
    const text = await w.metrics.text();
    assert.match(text, new RegExp(`thaw_release_info\\{release="${relA}"[^}]*\\} 1`));
    assert.match(text, /thaw_release_age_seconds\{[^}]*\} \d/);
    await w.drain();
    assert.equal(w.state, 'STOPPED');
  });

  it('worker-main with releaseDir follows a release announced on the Redis pointer', async () => {
    const n = names('relmain');
    await ensureTopics(KAFKA, [
      { topic: n.topic, partitions: 2, config: { ...KEEP_ALL_EVENTS } },
      { topic: n.dlq, partitions: 1 },
    ]);
    const root = await mkdtemp(join(tmpdir(), 'thaw-releases-'));
    const spoolDir = await mkdtemp(join(tmpdir(), 'thaw-spool-'));
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
    const producer = new EventProducer({ kafka: KAFKA });
    await producer.connect();
    let proc: WorkerProcess | undefined;
    cleanups.push(async () => {
      if (proc !== undefined && proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
      await producer.close();
      redis.disconnect();
      const ch = clickhouse();
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
    const store = new ReleaseStore({ root });
    const vA = await publish(store, fm(7));
    await store.promote(RELEASE_MODEL, vA);
    proc = spawnWorker({
      kafka: { brokers: KAFKA.brokers },
      redis: { url: REDIS_URL, keyPrefix: n.prefix },
      clickhouse: { url: CLICKHOUSE_URL, database: DATABASE, table: n.table, spoolDir },
      side: 'item',
      releaseDir: root,
      releaseModel: RELEASE_MODEL,
      releasePollMs: 60_000,
      releaseRedisPrefix: n.prefix,
      topic: n.topic,
      groupId: n.group,
      deadLetterTopic: n.dlq,
      maxBatchMessages: 500,
      logLevel: 'info',
    });
    const p = proc;
    const evs = events(4000, 41);
    await produceByItem(producer, n.topic, evs.slice(0, 2000));
    await waitFor('first half committed', async () => (await committedOf(n.group, n.topic)) >= 2000, 45_000);
    const vB = await publish(store, fm(8));
    await store.promote(RELEASE_MODEL, vB);
    await announceRelease(store, RELEASE_MODEL, vB, { redis, redisPrefix: n.prefix });
    await waitFor('release B ready in the worker', () => p.stderr().includes(`"msg":"release ready"`) && p.stderr().includes(vB), 10_000, 50);
    await produceByItem(producer, n.topic, evs.slice(2000));
    await waitFor('all committed', async () => (await committedOf(n.group, n.topic)) >= 4000, 30_000);
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0, p.stderr());
    assert.match(p.stderr(), new RegExp(`"msg":"release taken".*"version":"${vB}"`));

    const ch = clickhouse();
    cleanups.push(() => ch.close());
    const rows = await query<{ event_id: string; n: string; rel: string }>(
      ch,
      `SELECT event_id, count() AS n, any(release) AS rel FROM ${DATABASE}.${n.table} WHERE namespace = 'live' GROUP BY event_id`,
    );
    assert.equal(rows.length, evs.length, 'every event once in the deduplicated log');
    const rel = new Map(rows.map((r) => [r.event_id, r.rel]));
    assert.ok(
      evs.slice(0, 2000).every((e) => rel.get(e.eventId) === `${RELEASE_MODEL}/${vA}`),
      'before the switch: A',
    );
    assert.ok(
      evs.slice(2000).every((e) => rel.get(e.eventId) === `${RELEASE_MODEL}/${vB}`),
      'after the switch: B',
    );
  });
});
