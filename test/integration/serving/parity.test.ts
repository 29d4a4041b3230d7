/**
 * Same numbers as the worker, through Redis: the real `thaw run item` and `thaw run user` workers
 * (production assembly, cli/dev.ts) adapt a stream up to event N-1 (--until-end), then the scoring
 * API is asked for event N's (user, item) pair, then the workers process event N and log their
 * prediction of it to ClickHouse. The served score equals the logged one to 1e-5: with
 * --safeguard item it is the item worker's row, with --safeguard user the user worker's.
 *
 * Why exact: the workers score event N with each entity's state as it was before N (own state: the
 * stored one; the other side: `viewAt` picks the view before N, which is the stored one when the
 * other worker has not run N yet, or the recorded `before` view when it has), and with the
 * safeguard state of N's partition before N. Serving reads the same stored states with a
 * freshness bound of 0.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createRedis } from '../../../model-store/redis.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { ScoringPipeline } from '../../../serving/pipeline.js';
import { followReleases } from '../../../serving/release.js';
import { createScoringApp } from '../../../serving/server.js';
import { RedisStateSource } from '../../../serving/state-source.js';
import { openSource, parseSourceSpec } from '../../../sources/index.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { encodeLabelled } from '../../../streams/serde.js';
import { cliHarness, KAFKA, REDIS } from '../cli/cli-harness.js';

const h = cliHarness('serve-parity');
const ns = `s${h.id}`;
const userTopic = `${h.topic}-by-user`;
const itemTopic = `${h.topic}-by-item`;
const ITEM_PARTITIONS = 2;
const SOURCE = 'synthetic:events=6000,seed=5';
const PHASE1 = [2000, 2300] as const;
const ROUNDS = 4;

async function produce(producer: EventProducer, events: readonly LabelledEvent[]): Promise<void> {
  await producer.send(
    userTopic,
    events.map((e) => ({ key: e.userId, value: encodeLabelled(e), timestampMs: e.timeMs })),
  );
  await producer.send(
    itemTopic,
    events.map((e) => ({ key: e.itemId, value: encodeLabelled(e), timestampMs: e.timeMs })),
  );
}

/** Both workers, in parallel, up to the end of their topics. */
async function runWorkers(): Promise<void> {
  const common = ['--namespace', ns, '--metrics-port', '0', '--until-end', '--release-poll-ms', '60000'];
  const [u, i] = await Promise.all([
    h.thaw('run', 'user', '--topic', userTopic, '--group-id', `gu-${h.id}`, ...common),
    h.thaw('run', 'item', '--topic', itemTopic, '--group-id', `gi-${h.id}`, ...common),
  ]);
  assert.equal(u.code, 0, u.stderr);
  assert.equal(i.code, 0, i.stderr);
}

interface Served {
  release: string;
  scores: { id: string; score: number; source: string; events: number | null }[];
  user: { source: string };
}

describe('serving parity with the workers (Kafka → workers → Redis → thaw serve)', () => {
  const apps: { app: FastifyInstance; pipeline: ScoringPipeline }[] = [];
  after(async () => {
    for (const { app, pipeline } of apps) {
      await app.close();
      await pipeline.stop();
    }
    await deleteTopics({ brokers: [KAFKA] }, [userTopic, itemTopic]).catch(() => undefined);
    await h.chQuery(`DROP TABLE IF EXISTS thaw.${h.table}`).catch(() => undefined);
    const redis = createRedis({ url: REDIS });
    const keys = await redis.keys(`${h.prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    rmSync(h.dir, { recursive: true, force: true });
  });

  it('a served score equals the logged prediction of the next event, for the item and the user worker', async () => {
    const train = await h.thaw('train', 'fm', '--source', SOURCE, '--history-events', String(PHASE1[0]), '--min-events', '5', '--epochs', '1');
    assert.equal(train.code, 0, train.stderr);
    const events: LabelledEvent[] = [];
    for await (const e of openSource(parseSourceSpec(SOURCE))) {
      if (events.length >= PHASE1[1] + 2000) break;
      events.push(e);
    }
    // The rounds: the first later events whose user and item both have states (fresh/fresh), then
    // one with a new item and one with a new user (the events skipped in between are never produced).
    const seenUsers = new Set(events.slice(PHASE1[0], PHASE1[1]).map((e) => e.userId));
    const seenItems = new Set(events.slice(PHASE1[0], PHASE1[1]).map((e) => e.itemId));
    const later = events.slice(PHASE1[1]);
    const pick = (f: (e: LabelledEvent) => boolean): LabelledEvent[] => later.filter(f).slice(0, 1);
    const rounds = [
      ...later.filter((e) => seenUsers.has(e.userId) && seenItems.has(e.itemId)).slice(0, ROUNDS - 2),
      ...pick((e) => seenUsers.has(e.userId) && !seenItems.has(e.itemId)),
      ...pick((e) => !seenUsers.has(e.userId) && seenItems.has(e.itemId)),
    ].sort((a, b) => a.timeMs - b.timeMs);
    assert.equal(new Set(rounds.flatMap((e) => [e.userId, e.itemId])).size, 2 * rounds.length, 'rounds share no entity');
    await ensureTopics({ brokers: [KAFKA] }, [
      { topic: userTopic, partitions: 1 },
      { topic: itemTopic, partitions: ITEM_PARTITIONS },
    ]);
    const producer = new EventProducer({ kafka: { brokers: [KAFKA] } });
    await producer.connect();
    try {
      await produce(producer, events.slice(PHASE1[0], PHASE1[1]));
      await runWorkers();

      const serve = async (safeguard: 'item' | 'user'): Promise<{ app: FastifyInstance; pipeline: ScoringPipeline }> => {
        const source = new RedisStateSource({ url: REDIS });
        const releases = await followReleases({ store: new ReleaseStore({ root: join(h.dir, 'releases') }), keyPrefix: h.prefix, namespace: ns, safeguard });
        const pipeline = new ScoringPipeline({
          source,
          releases,
          // A generous read timeout: a read given up scores shared-only, which the worker never does.
          serving: { freshnessMs: 0, fetchTimeoutMs: 10_000, safeguard, safeguardPartitions: safeguard === 'item' ? ITEM_PARTITIONS : 1, defaultDeadlineMs: 5000 },
          defaultMetrics: false,
        });
        const app = createScoringApp(pipeline);
        apps.push({ app, pipeline });
        await pipeline.start();
        await app.ready();
        return { app, pipeline };
      };
      const byItem = await serve('item');
      const byUser = await serve('user');

      const sources = new Set<string>();
      for (let r = 0; r < rounds.length; r++) {
        const ev = rounds[r] as LabelledEvent;
        // The pair of event N, between two other candidates (a micro-batch of several entities).
        const body = {
          requestId: ev.eventId,
          user: { id: ev.userId, features: ev.userFeatures },
          candidates: [{ id: 'someone-else', features: ev.itemFeatures }, { id: ev.itemId, features: ev.itemFeatures }, { id: (events[PHASE1[0]] as LabelledEvent).itemId }],
        };
        const ask = async (app: FastifyInstance): Promise<Served> => {
          const res = await app.inject({ method: 'POST', url: '/v1/score', payload: body });
          assert.equal(res.statusCode, 200, res.body);
          return JSON.parse(res.body) as Served;
        };
        const [servedItem, servedUser] = [await ask(byItem.app), await ask(byUser.app)];
        sources.add(`${servedItem.user.source}/${servedItem.scores[1]?.source ?? '?'}`);
        assert.ok(![servedItem, servedUser].some((s) => s.user.source === 'shared-only' || s.scores[1]?.source === 'shared-only'), 'states were read');

        await produce(producer, [ev]);
        await runWorkers();
        const logged = await h.chQuery(`SELECT side, score, release FROM thaw.${h.table} WHERE namespace = '${ns}' AND event_id = '${ev.eventId}' ORDER BY side FORMAT TSV`);
        const bySide = new Map(
          logged
            .split('\n')
            .map((line) => line.split('\t'))
            .map(([side, score, release]) => [side, { score: Number(score), release }]),
        );
        const item = bySide.get('item');
        const user = bySide.get('user');
        assert.ok(item !== undefined && user !== undefined, `rows of ${ev.eventId}: ${logged}`);
        assert.equal(servedItem.release, item.release);
        const si = servedItem.scores[1]?.score ?? NaN;
        const su = servedUser.scores[1]?.score ?? NaN;
        assert.ok(Math.abs(si - item.score) < 1e-5, `round ${r}: served ${si}, item worker logged ${item.score}`);
        assert.ok(Math.abs(su - user.score) < 1e-5, `round ${r}: served ${su}, user worker logged ${user.score}`);
      }
      process.stderr.write(`parity: provenance (user/item) seen: ${[...sources].join(', ')}\n`);
    } finally {
      await producer.close();
    }
  });
});
