/**
 * kill -9 of the user-side meta adapters (`coldnas`, `fixed-adaptive`) run from a release directory,
 * against real Kafka, Redis and ClickHouse: a worker process (consumers/worker-main.ts) built from a
 * small random-init release is SIGKILLed twice mid-stream, restarted each time, and finally drained
 * with SIGTERM. Every Redis state and the de-duplicated prediction log (each event exactly once,
 * duplicates agreeing) must equal the uninterrupted reference: the release's adapter, built as the
 * worker builds it, called offline one event at a time in stream order (its scores mixed with its
 * baselines by the worker's safeguard per partition), to 1e-5.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { epochAdapterSegment } from '../../../consumers/release-adapter.js';
import type { WorkerMainOptions } from '../../../consumers/worker-main.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import type { StateScope } from '../../../model-store/types.js';
import { initBackend } from '../../../models/backend.js';
import { deleteTopics, ensureTopics, topicOffsets, withAdmin } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { sequentialRun, userEvents } from '../../unit/adapters/user-fixtures.js';
import { clickhouse, CLICKHOUSE_URL, committedOf, DATABASE, dropKeys, dropTable, KAFKA, lagOf, names, query, REDIS_URL, waitFor } from './harness.js';
import { adapterOf, KEEP_ALL_EVENTS, layoutFor, produceBySide, publishMeta, safeguardedScores, storedStates, type MetaKind, type RawScore } from './meta-fixtures.js';

/** Partitions of the event topic. */
const PARTITIONS = 3;
import { spawnWorker, type WorkerProcess } from './process.js';

// Same backend in this process and in the spawned workers: the comparisons are numeric.
process.env.THAW_TF_BACKEND = 'cpu';

const N = 3000;
const TOL = 1e-5;

/** `wait`, its failure carrying the worker's log. */
async function explained(w: WorkerProcess, wait: Promise<void>): Promise<void> {
  try {
    await wait;
  } catch (err) {
    throw new Error(`${String(err)}; worker log:\n${w.stderr()}`, { cause: err });
  }
}

describe('user-side meta adapters from a release: worker process killed with SIGKILL twice', { timeout: 300_000 }, () => {
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

  const cases: { kind: MetaKind; tag: string; seed: number }[] = [
    { kind: 'coldnas', tag: 'cnkill', seed: 71 },
    { kind: 'fixed-adaptive', tag: 'fakill', seed: 72 },
  ];
  for (const c of cases) {
    it(`${c.kind}: two kills and restarts end with the uninterrupted run's states and log`, { timeout: 150_000 }, async (t) => {
      const n = names(c.tag);
      await ensureTopics(KAFKA, [
        { topic: n.topic, partitions: PARTITIONS, config: { ...KEEP_ALL_EVENTS } },
        { topic: n.dlq, partitions: 1 },
      ]);
      const root = await mkdtemp(join(tmpdir(), `thaw-${c.tag}-rel-`));
      const spoolDir = await mkdtemp(join(tmpdir(), 'thaw-spool-'));
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
        await rm(root, { recursive: true, force: true });
        await rm(spoolDir, { recursive: true, force: true });
      });

      const evs = userEvents(N, c.seed, 150);
      const store = new ReleaseStore({ root });
      const { version, release } = await publishMeta(store, c.kind, layoutFor(c.kind, evs), c.seed);
      const producer = new EventProducer({ kafka: KAFKA });
      await producer.connect();
      cleanups.push(() => producer.close());

      const options: WorkerMainOptions = {
        kafka: { brokers: KAFKA.brokers },
        redis: { url: REDIS_URL, keyPrefix: n.prefix },
        clickhouse: { url: CLICKHOUSE_URL, database: DATABASE, table: n.table, spoolDir },
        side: 'user',
        adapter: c.kind,
        releaseDir: root,
        releaseModel: c.kind,
        topic: n.topic,
        groupId: n.group,
        deadLetterTopic: n.dlq,
        maxBatchMessages: 60,
        // A killed member's partitions move after the session timeout: keep it at the broker minimum.
        sessionTimeoutMs: 6000,
        heartbeatIntervalMs: 1000,
        // info: lifecycle lines (started, release, signal, drained) for failure messages; no per-batch lines.
        logLevel: 'info',
      };
      // A live stream in thirds: each worker is killed once it has committed 300 events more than
      // the one before, while the rest of the stream is still to come (the workers are fast enough
      // to drain a pre-produced topic between two polls of the committed offsets).
      const committedAtKill: number[] = [];
      for (const third of [0, 1]) {
        await produceBySide(producer, n.topic, 'user', evs.slice((third * N) / 3, ((third + 1) * N) / 3));
        const target = (committedAtKill.at(-1) ?? 0) + 300;
        const w = spawnWorker(options);
        running.push(w);
        await explained(
          w,
          waitFor(`${target} events committed`, async () => (await committedOf(n.group, n.topic)) >= target, 90_000, 50),
        );
        w.child.kill('SIGKILL');
        assert.equal(await w.exited, 'SIGKILL', w.stderr());
        committedAtKill.push(await committedOf(n.group, n.topic));
      }
      assert.ok(committedAtKill[1]! > committedAtKill[0]! && committedAtKill[1]! <= (2 * N) / 3, `both kills happened mid-stream (committed ${committedAtKill.join(', ')} of ${N})`);
      t.diagnostic(`committed after the kills: ${committedAtKill.join(', ')} of ${N}`);
      await produceBySide(producer, n.topic, 'user', evs.slice((2 * N) / 3));
      const last = spawnWorker(options);
      running.push(last);
      await explained(
        last,
        waitFor('lag 0', async () => (await lagOf(n.group, n.topic)) === 0, 90_000, 200),
      );
      const ends = await withAdmin(KAFKA, (a) => topicOffsets(a, n.topic));
      assert.equal(await committedOf(n.group, n.topic), N, `every event committed; topic offsets ${JSON.stringify(ends)}; log:\n${last.stderr()}`);
      last.child.kill('SIGTERM');
      assert.equal(await last.exited, 0, `drained worker exits 0; stderr:\n${last.stderr()}`);

      // The uninterrupted reference: the release's adapter, one event at a time, in stream order.
      const ref = sequentialRun(await adapterOf(store, c.kind, version), evs);
      const counts = new Map<string, number>();
      const priors = new Map<string, number>();
      const raw = new Map<string, RawScore>();
      evs.forEach((e, i) => {
        const k = counts.get(e.userId) ?? 0;
        priors.set(e.eventId, k);
        counts.set(e.userId, k + 1);
        raw.set(e.eventId, { score: ref.scores[i] ?? NaN, baseline: ref.baselines[i] ?? NaN, prior: k });
      });
      const scores = safeguardedScores(evs, 'user', PARTITIONS, raw);
      assert.ok(
        [...counts.values()].some((k) => k >= 10),
        'users have histories, not single events',
      );

      const rows = await query<{ event_id: string; s: number; s_spread: number; pc: string | number; pc_spread: string | number; rel: string; rels: string }>(
        ch,
        `SELECT event_id, any(score) AS s, max(score) - min(score) AS s_spread, any(prior_count) AS pc,
                max(prior_count) - min(prior_count) AS pc_spread, any(release) AS rel, uniqExact(release) AS rels
         FROM ${DATABASE}.${n.table} WHERE namespace = 'live' AND adapter = '${c.kind}' GROUP BY event_id`,
      );
      assert.equal(rows.length, N, `one distinct prediction per event; spool ${JSON.stringify(await readdir(spoolDir))}; worker logs:\n${running.map((p) => p.stderr()).join('\n---\n')}`);
      let maxScore = 0;
      for (const r of rows) {
        const want = scores.get(r.event_id);
        assert.ok(want !== undefined, `unexpected event ${r.event_id}`);
        assert.ok(Number(r.s_spread) <= TOL, `duplicates of ${r.event_id} disagree on the score by ${r.s_spread}`);
        assert.equal(Number(r.pc_spread), 0, `duplicates of ${r.event_id} disagree on the prior count`);
        assert.equal(Number(r.pc), priors.get(r.event_id), `prior count of ${r.event_id}`);
        assert.deepEqual([r.rel, Number(r.rels)], [release, 1]);
        maxScore = Math.max(maxScore, Math.abs(Number(r.s) - want));
      }
      assert.ok(maxScore <= TOL, `logged scores differ from the reference by up to ${maxScore}`);

      // States live under the release's state epoch (coldnas releases declare reinit: their own version).
      const epoch = c.kind === 'coldnas' ? version : undefined;
      const scope: StateScope = { namespace: 'live', side: 'user', adapter: epochAdapterSegment(c.kind, epoch) };
      const states = new RedisEntityStore({ redis: { url: REDIS_URL }, keyPrefix: n.prefix });
      try {
        const users = [...ref.states.keys()];
        const got = await states.getMany(scope, users);
        let maxState = 0;
        users.forEach((u, i) => {
          const s = got[i];
          assert.ok(s !== undefined, `state of ${u} missing in Redis (${scope.adapter})`);
          assert.equal(s.count, counts.get(u), `count of ${u}`);
          const want = ref.states.get(u)!;
          assert.equal(s.params.length, want.length);
          for (let k = 0; k < want.length; k++) maxState = Math.max(maxState, Math.abs(s.params[k]! - want[k]!));
        });
        assert.ok(maxState <= TOL, `Redis states differ from the reference by up to ${maxState}`);
        const stored = await storedStates(REDIS_URL, n.prefix, scope);
        assert.deepEqual([...stored.keys()].sort(), users.sort(), 'no state beyond the users of the stream');
        t.diagnostic(`max |diff|: scores ${maxScore.toExponential(2)}, states ${maxState.toExponential(2)}`);
      } finally {
        await states.close();
      }
    });
  }
});
