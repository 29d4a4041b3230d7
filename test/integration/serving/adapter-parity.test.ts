/**
 * Same numbers as the worker, for the meta adapters, through Redis: for each of emerg (item side),
 * coldnas and fixed-adaptive (user side), a real AdaptationWorker (in process, built from the
 * release directory by the workers' own release watcher, the cross-side read on) adapts a stream
 * into Redis and logs to ClickHouse; `thaw serve --adapter <kind>`'s pipeline (followServedReleases,
 * the HTTP app) is asked for the next event's pair; then the event is produced, the worker logs its
 * prediction, and the two are equal to 1e-5, same release. Two rounds per adapter: an entity the
 * worker has adapted (served `fresh`), and an entity it has never seen (served `cold`: the
 * adapter's initial state from the request's features, which is what the worker scores its first
 * event with).
 *
 * The other side's partner states (the fm-adagrad views the worker reads, consumers/cross-side.ts)
 * are written to Redis before the stream, older than every event, so the worker's `viewAt` takes
 * the stored state, which is what serving reads. coldnas releases declare `reinit`: its states live
 * under the release's state epoch, which serving must follow. For coldnas the real `thaw serve
 * --adapter coldnas` process answers too (the command's own wiring: flags, partner, safeguard side).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import { createAdapterReleaseWatcher, type ReleasedAdapter } from '../../../consumers/release-adapter.js';
import { AdaptationWorker } from '../../../consumers/worker.js';
import { initBackend } from '../../../models/backend.js';
import type { ReleaseWatcher } from '../../../model-store/release-sync.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import { entityIdOf, type LabelledEvent, type Side } from '../../../schemas/types.js';
import { followServedReleases } from '../../../serving/adapter-release.js';
import { ScoringPipeline } from '../../../serving/pipeline.js';
import { createScoringApp } from '../../../serving/server.js';
import { RedisStateSource } from '../../../serving/state-source.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { DeadLetterWriter } from '../../../streams/dead-letters.js';
import { EventProducer } from '../../../streams/producer.js';
import { userEvents } from '../../unit/adapters/user-fixtures.js';
import { cliHarness, REDIS } from '../cli/cli-harness.js';
import { clickhouse, CLICKHOUSE_URL, committedOf, DATABASE, dropKeys, dropTable, events, KAFKA, names, query, REDIS_URL, waitFor } from '../consumers/harness.js';
import { KEEP_ALL_EVENTS, layoutFor, produceBySide, publishMeta, SIDE_OF, type MetaKind } from '../consumers/meta-fixtures.js';

const TOL = 1e-5;
/** Events the worker adapts before the rounds. */
const HISTORY = 800;
const PARTITIONS = 2;

/** The other side's partner view of an entity: an fm-adagrad-like [bias, variance, vector]. */
function partnerView(id: string): Float32Array {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) % 997;
  return Float32Array.from([(h / 997 - 0.5) * 0.8, 0.05 + h / 10_000, 0.1, -0.2, 0.3, 0.05]);
}

interface Served {
  release: string;
  user: { source: string };
  scores: { id: string; score: number; source: string }[];
}

describe("serving parity with the meta adapters' workers (Kafka → worker → Redis → serve; ClickHouse)", { timeout: 300_000 }, () => {
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

  // `cli`: the real `thaw serve --adapter <kind>` process is asked too (its flags, the partner and the safeguard side resolved by the command).
  const cases: { kind: MetaKind; tag: string; seed: number; cli: boolean }[] = [
    { kind: 'emerg', tag: 'svemerg', seed: 91, cli: false },
    { kind: 'coldnas', tag: 'svcoldnas', seed: 92, cli: true },
    { kind: 'fixed-adaptive', tag: 'svfixed', seed: 93, cli: false },
  ];
  for (const c of cases) {
    it(`${c.kind}: a served score equals the worker's logged prediction of the next event (adapted entity, unseen entity)`, { timeout: 120_000 }, async (t) => {
      const side = SIDE_OF[c.kind];
      const other: Side = side === 'user' ? 'item' : 'user';
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
      let served: { app: FastifyInstance; pipeline: ScoringPipeline } | undefined;
      let cli: ReturnType<ReturnType<typeof cliHarness>['start']> | undefined;
      cleanups.push(async () => {
        if (cli !== undefined) {
          cli.child.kill('SIGTERM');
          await cli.done;
        }
        if (served !== undefined) {
          await served.app.close();
          await served.pipeline.stop();
        }
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

      const evs = side === 'item' ? events(HISTORY + 400, c.seed) : userEvents(HISTORY + 400, c.seed, 150);
      const history = evs.slice(0, HISTORY);
      const store = new ReleaseStore({ root });
      const rel = await publishMeta(store, c.kind, layoutFor(c.kind, evs), c.seed);

      // The partner states, older than every event (the worker's viewAt takes them as stored).
      const partners = [...new Set(evs.map((e) => entityIdOf(e, other)))];
      await redisStore.putMany(
        { namespace: 'live', side: other, adapter: 'fm-adagrad' },
        partners.map((id) => ({ entityId: id, state: { count: 3, lastOffset: 2, lastEventMs: 0, params: partnerView(id) } })),
      );

      // The worker as `thaw run <side> --adapter <kind> --model <kind>` assembles it (cross-side read: fm-adagrad of model fm).
      const cross = { adapter: 'fm-adagrad', model: 'fm' };
      watcher = await createAdapterReleaseWatcher({ store, model: c.kind, adapter: c.kind, side, cross, pollIntervalMs: 60_000 });
      await watcher.start();
      worker = new AdaptationWorker({
        kafka: KAFKA,
        side,
        releaseWatcher: watcher,
        crossAdapter: cross.adapter,
        store: redisStore,
        sink,
        deadLetters: new DeadLetterWriter(producer, n.dlq),
        topic: n.topic,
        groupId: n.group,
        fromBeginning: true,
        maxBatchMessages: 200,
        metricsPort: 0,
      });
      await produceBySide(producer, n.topic, side, history);
      await worker.start();
      // The command starts (TensorFlow.js, the release) while the worker adapts.
      const h = cliHarness(c.tag);
      const cliAddress = !c.cli
        ? undefined
        : (() => {
            const started = h.start(
              [
                'serve',
                '--adapter',
                c.kind,
                '--model',
                c.kind,
                '--release-dir',
                root,
                '--port',
                '0',
                '--safeguard-partitions',
                String(PARTITIONS),
                '--freshness-ms',
                '0',
                '--fetch-timeout-ms',
                '10000',
                '--deadline-ms',
                '10000',
                '--cache-entries',
                '80000',
              ],
              { THAW_REDIS_URL: REDIS, THAW_REDIS_PREFIX: n.prefix },
            );
            cli = started;
            return new Promise<string>((resolve, reject) => {
              let text = '';
              started.child.stdout?.on('data', (d: Buffer) => {
                text += d.toString();
                const m = /listening on (http:\/\/\S+)/.exec(text);
                if (m?.[1] !== undefined) resolve(m[1]);
              });
              void started.done.then((r) => reject(new Error(`thaw serve exited ${r.code}: ${r.stderr}`)));
            });
          })();
      // Awaited in the rounds; a process that dies before then must not be an unhandled rejection.
      void cliAddress?.catch(() => undefined);
      const committed = async (count: number): Promise<void> => waitFor(`${count} events committed`, async () => (await committedOf(n.group, n.topic)) >= count, 60_000, 100);
      await committed(HISTORY);

      // The server as `thaw serve --adapter <kind> --model <kind>` assembles it; a freshness bound of 0 reads every state.
      const releases = await followServedReleases({ store, model: c.kind, adapter: c.kind, keyPrefix: n.prefix, namespace: 'live', safeguard: side, pollIntervalMs: 60_000 });
      const pipeline = new ScoringPipeline({
        source: new RedisStateSource({ url: REDIS_URL }),
        releases,
        // A small cache: its slots hold whole states.
        serving: { freshnessMs: 0, fetchTimeoutMs: 10_000, safeguard: side, safeguardPartitions: PARTITIONS, defaultDeadlineMs: 10_000, cacheEntries: 8192, fetchMaxKeys: 2048 },
        defaultMetrics: false,
      });
      const app = createScoringApp(pipeline);
      served = { app, pipeline };
      await pipeline.start();
      await app.ready();

      // Round 1: the next event of an adapted entity; round 2: an event of an entity never seen.
      const seen = new Set(history.map((e) => entityIdOf(e, side)));
      const later = evs.slice(HISTORY);
      const warm = later.find((e) => seen.has(entityIdOf(e, side)));
      const base = later.find((e) => e !== warm && entityIdOf(e, side) !== (warm === undefined ? '' : entityIdOf(warm, side)));
      assert.ok(warm !== undefined && base !== undefined, 'round events');
      const cold: LabelledEvent =
        side === 'item' ? { ...base, eventId: `${base.eventId}-new`, itemId: `${base.itemId}-new` } : { ...base, eventId: `${base.eventId}-new`, userId: `${base.userId}-new` };
      const rounds: { ev: LabelledEvent; source: string }[] = [
        { ev: warm, source: 'fresh' },
        { ev: cold, source: 'cold' },
      ];
      let produced = HISTORY;
      for (const { ev, source } of rounds) {
        // The pair among other candidates (one adapter call of several rows).
        const filler = (history[0] as LabelledEvent).itemId;
        const body = {
          requestId: ev.eventId,
          user: { id: ev.userId, features: ev.userFeatures },
          candidates: [{ id: filler, features: (history[0] as LabelledEvent).itemFeatures }, { id: ev.itemId, features: ev.itemFeatures }, { id: 'never-seen-item' }],
        };
        const res = await app.inject({ method: 'POST', url: '/v1/score', payload: body });
        assert.equal(res.statusCode, 200, res.body);
        const out = JSON.parse(res.body) as Served;
        const got = out.scores[1];
        assert.ok(got !== undefined);
        assert.equal(side === 'item' ? got.source : out.user.source, source, `${c.kind}: provenance of the ${side}`);
        // The partner's view was read (so the worker's logged score, equal below, used it too).
        assert.equal(side === 'item' ? out.user.source : got.source, 'fresh', `${c.kind}: provenance of the partner`);
        let fromCli: Served | undefined;
        if (cliAddress !== undefined) {
          const answer = await fetch(`${await cliAddress}/v1/score`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
          const text = await answer.text();
          assert.equal(answer.status, 200, text);
          fromCli = JSON.parse(text) as Served;
        }

        await produceBySide(producer, n.topic, side, [ev]);
        await committed(++produced);
        let rows: { score: number; release: string; adapter: string }[] = [];
        await waitFor(
          `the row of ${ev.eventId}`,
          async () => {
            rows = await query(ch, `SELECT score, release, adapter FROM ${DATABASE}.${n.table} WHERE namespace = 'live' AND event_id = '${ev.eventId}'`);
            return rows.length > 0;
          },
          30_000,
          100,
        );
        const row = rows[0];
        assert.ok(row !== undefined);
        assert.equal(row.adapter, c.kind);
        assert.equal(row.release, rel.release);
        assert.equal(out.release, rel.release, 'served under the same release');
        const diff = Math.abs(got.score - Number(row.score));
        t.diagnostic(`${c.kind} ${source}: served ${got.score}, logged ${row.score} (|diff| ${diff.toExponential(2)})`);
        assert.ok(diff <= TOL, `${c.kind} ${source}: served ${got.score}, the worker logged ${row.score}`);
        if (fromCli !== undefined) {
          const viaCli = fromCli.scores[1]?.score ?? NaN;
          assert.equal(fromCli.release, rel.release);
          assert.ok(Math.abs(viaCli - Number(row.score)) <= TOL, `${c.kind} ${source}: thaw serve answered ${viaCli}, the worker logged ${row.score}`);
        }
      }
      await worker.drain();
    });
  }
});
