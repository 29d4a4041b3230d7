/**
 * Issue 11, "Beyond one node: Kafka": kill -9 of a broker under a running worker. A private 3-node
 * KRaft cluster (scripts/services.sh kafka-cluster); the topic created by ensureTopics with its
 * defaults (replication factor 3, min.insync.replicas 2); events produced by EventProducer
 * (idempotent, acks=all) while `thaw run item` (cache tier, Redis, ClickHouse, as production starts
 * it) consumes them. Mid-stream the broker leading the most partitions of the topic is killed with
 * -9, later restarted. At the end: every send was acknowledged and the topic holds each event once
 * (no loss, no duplicate from a producer retry), every Redis state equals an uninterrupted run's,
 * every event has one prediction with the reference's score.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KafkaCluster } from '../../../bench/failover/cluster.js';
import { startThawRun, type ThawRunProcess } from '../../../bench/failover/thaw-run.js';
import { publishFm } from '../../../cli/fm-release.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import type { StateScope } from '../../../model-store/types.js';
import { ensureTopics, partitionReplicas, topicOffsets, withAdmin } from '../../../streams/admin.js';
import { EventProducer, partitionOfKey } from '../../../streams/producer.js';
import {
  assertMatchesReference,
  clickhouse,
  CLICKHOUSE_URL,
  committedOf,
  dropKeys,
  dropTable,
  events,
  KEEP_ALL_EVENTS,
  lagOf,
  model,
  names,
  produceByItem,
  REDIS_URL,
  referenceRun,
  waitFor,
} from '../consumers/harness.js';

const PARTITIONS = 6;
const N = 6000;
const CHUNK = 50;
const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('kill -9 of a broker of a 3-node cluster under a thaw run worker (issue 11)', { timeout: 150_000 }, () => {
  const n = names('kcluster');
  const dir = mkdtempSync(join(tmpdir(), 'thaw-kcluster-'));
  let cluster: KafkaCluster | undefined;
  const workers: ThawRunProcess[] = [];
  before(async () => {
    cluster = await KafkaCluster.up();
  });
  after(async () => {
    for (const w of workers) if (w.alive()) w.child.kill('SIGKILL');
    await cluster?.down();
    const ch = clickhouse();
    try {
      await dropTable(ch, n.table);
    } finally {
      await ch.close();
    }
    await dropKeys(REDIS_URL, n.prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('loses nothing and doubles nothing: states and log equal an uninterrupted run', async (t) => {
    assert.ok(cluster !== undefined);
    const kafka = cluster.kafka;
    await ensureTopics(kafka, [{ topic: n.topic, partitions: PARTITIONS, config: { ...KEEP_ALL_EVENTS } }]);
    const replicas = await partitionReplicas(kafka, n.topic);
    assert.deepEqual(replicas.map((r) => r.replicas.length), Array(PARTITIONS).fill(3), 'ensureTopics gives 3 copies on a 3-broker cluster');
    const minIsr = await withAdmin(kafka, async (admin) => {
      const { resources } = await admin.describeConfigs({ resources: [{ type: 2, name: n.topic, configNames: ['min.insync.replicas'] }], includeSynonyms: false });
      return resources[0]?.configEntries.find((e) => e.configName === 'min.insync.replicas')?.configValue;
    });
    assert.equal(minIsr, '2', 'and min.insync.replicas 2');

    await publishFm(new ReleaseStore({ root: join(dir, 'releases') }), 'fm', model());
    const evs = events(N, 47);
    const reference = await referenceRun(evs, scope, PARTITIONS);

    // A live stream, ~300 events/s: the kill and the restart happen while events arrive.
    const producer = new EventProducer({ kafka });
    await producer.connect();
    let acked = 0;
    const producing = (async () => {
      try {
        for (let at = 0; at < N; at += CHUNK) {
          await produceByItem(producer, n.topic, evs.slice(at, at + CHUNK));
          acked = Math.min(N, at + CHUNK);
          await sleep(150);
        }
      } finally {
        await producer.close();
      }
    })();
    // A send that fails for good (loss as the producer sees it) fails the test here, not as a hang.
    producing.catch(() => undefined);

    const worker = startThawRun({ name: 'worker-a', brokers: kafka.brokers, redisUrl: REDIS_URL, redisPrefix: n.prefix, clickhouseUrl: CLICKHOUSE_URL, table: n.table, topic: n.topic, group: n.group, dir, maxBatch: 50 });
    workers.push(worker);
    // Polled through the failover: a coordinator that moves or is still loading answers with a
    // retriable error (NOT_COORDINATOR), which only means "ask again".
    let lastCommitted = 0;
    const committed = async (): Promise<number> => {
      try {
        lastCommitted = await committedOf(n.group, n.topic, kafka);
      } catch (err) {
        if ((err as { retriable?: unknown }).retriable !== true) throw err;
      }
      return lastCommitted;
    };
    const advance = async (what: string, by: number): Promise<void> => {
      const target = (await committed()) + by;
      await waitFor(`${what}: ${target} events committed`, async () => {
        if (!worker.alive()) throw new Error(`the worker exited:\n${worker.stderr()}`);
        return (await committed()) >= target;
      }, 60_000, 100).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; the worker's log ends:\n${worker.stderr().slice(-6000)}`);
      });
    };

    await advance('before the kill', 1000);
    // The broker that leads the most partitions of the topic (ties: the lowest id).
    const leaders = (await partitionReplicas(kafka, n.topic)).map((r) => r.leader);
    const victim = [...cluster.nodes].sort((a, b) => leaders.filter((l) => l === b).length - leaders.filter((l) => l === a).length)[0] ?? 1;
    t.diagnostic(`killing broker ${victim}, leader of partitions ${replicas.filter((_, i) => leaders[i] === victim).map((r) => r.partition).join(',')}; ${acked} of ${N} acknowledged`);
    const killedAt = Date.now();
    await cluster.kill9(victim);
    const ackedAtKill = acked;
    const since = (): string => `${((Date.now() - killedAt) / 1000).toFixed(1)} s`;

    await advance('with one broker dead', 500);
    t.diagnostic(`worker advanced 500 events ${since()} after the kill`);
    await waitFor('1500 more events acknowledged with one broker dead', () => acked >= ackedAtKill + 1500, 60_000, 100);
    t.diagnostic(`producer at ${acked} ${since()} after the kill`);
    const afterKill = await partitionReplicas(kafka, n.topic);
    assert.ok(afterKill.every((r) => r.leader !== victim), 'every partition has a new leader');
    const ackedAtRestart = acked;
    await cluster.restartDead();
    t.diagnostic(`broker ${victim} back ${since()} after the kill; producer at ${acked}`);
    t.diagnostic(`acknowledged: ${ackedAtKill} at the kill, ${ackedAtRestart} at the restart`);
    assert.ok(ackedAtRestart > ackedAtKill && ackedAtRestart < N, 'events were produced and acknowledged while the broker was dead');

    await producing;
    assert.equal(acked, N, 'every send was acknowledged');
    await waitFor('lag 0', async () => (await lagOf(n.group, n.topic, kafka).catch(() => -1)) === 0, 60_000, 200);
    worker.child.kill('SIGTERM');
    assert.equal(await worker.exited, 0, `the worker drains and exits 0:\n${worker.stderr()}`);

    // Nothing doubled upstream: the topic holds exactly the events sent (an idempotent producer's
    // retries after the leader change are de-duplicated by the brokers).
    const ends = await withAdmin(kafka, (admin) => topicOffsets(admin, n.topic));
    const expected = Array.from({ length: PARTITIONS }, (_, p) => evs.filter((e) => partitionOfKey(e.itemId, PARTITIONS) === p).length);
    t.diagnostic(`per partition: held ${ends.map((e) => `${e.partition}:${e.high - e.low}`).join(' ')}; sent ${expected.join(' ')}`);
    assert.equal(ends.reduce((s, e) => s + e.high - e.low, 0), N, 'the topic holds each event once');

    const ch = clickhouse();
    try {
      await assertMatchesReference({ ch, table: n.table, redisUrl: REDIS_URL, prefix: n.prefix, scope, events: evs, reference });
    } finally {
      await ch.close();
    }
  });

  // kafkajs 2.2.4's sendMessages keeps one response per broker across retries: when a partition's
  // leader dies and the partition moves to a broker that already answered for another partition of
  // the same send, the retry skips that broker and the send resolves without the moved messages.
  // Seen as 15 of 6,000 acknowledged events missing in one run of the test above, and as 23 of
  // 24,000 (one send, the dead leader's two partitions) in the failover bench.
  it('a send spanning a dead leader and its successor is acknowledged only once written (kafkajs skipped the moved partition)', async () => {
    assert.ok(cluster !== undefined);
    const kafka = cluster.kafka;
    await cluster.restartDead();
    const topic = `${n.topic}-moved`;
    // Partition 0 on brokers 1 and 2 (leader 1), partition 1 on 2 and 3 (leader 2): when 1 dies,
    // partition 0 can only move to 2, the broker that also answers for partition 1.
    await withAdmin(kafka, (admin) => admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, replicaAssignment: [{ partition: 0, replicas: [1, 2] }, { partition: 1, replicas: [2, 3] }], configEntries: [{ name: 'min.insync.replicas', value: '1' }, { name: 'retention.ms', value: '-1' }] }],
    }));
    await waitFor('leaders 1 and 2', async () => (await partitionReplicas(kafka, topic)).map((r) => r.leader).join() === '1,2', 30_000, 200);
    const keys = (p: number): string[] => Array.from({ length: 200 }, (_, i) => `k${i}`).filter((k) => partitionOfKey(k, 2) === p).slice(0, 10);
    const batch = (tag: string): { key: string; value: Buffer }[] => [0, 1].flatMap((p) => keys(p).map((key) => ({ key, value: Buffer.from(`${tag}-${key}`) })));
    const producer = new EventProducer({ kafka });
    await producer.connect();
    try {
      await producer.send(topic, batch('before')); // connections and metadata: leader of 0 is broker 1
      // Broker 1 dies with the request in flight: frozen first, so that broker 2 answers for
      // partition 1 while broker 1 holds partition 0's request; killed once the controller moved
      // partition 0 to broker 2 (the frozen broker missed its heartbeats), so the producer's retry
      // finds the new leader at once.
      process.kill(cluster.pidOf(1), 'SIGSTOP');
      let settled = false;
      const sending = producer.send(topic, batch('after')).finally(() => (settled = true));
      const others = { brokers: kafka.brokers.slice(1) }; // asking the frozen broker would hang
      await waitFor('partition 0 led by broker 2', async () => (await partitionReplicas(others, topic).catch(() => []))[0]?.leader === 2, 60_000, 200);
      assert.equal(settled, false, 'the send waits for the frozen broker');
      await cluster.kill9(1);
      await sending;
    } finally {
      await producer.close();
    }
    const ends = await withAdmin(kafka, (admin) => topicOffsets(admin, topic));
    assert.deepEqual(ends.map((e) => e.high - e.low), [20, 20], 'each partition holds both sends once');
  });
});
