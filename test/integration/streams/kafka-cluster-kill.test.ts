/**
 * Issue 11, "Beyond one node: Kafka". The fast version in the suite: a send across a killed leader
 * and its successor is acknowledged only once written. The full drill (a `thaw run` worker consuming
 * while the leading broker is killed with -9, states and log against the reference) is
 * `npm run bench -- --only failover`: in the suite it stalled or exhausted its client's retries on
 * this loaded machine (two runs of 2026-12-07), which is still to be explained.
 *
 * What the full drill does: A private 3-node
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
import type { ThawRunProcess } from '../../../bench/failover/thaw-run.js';
import { partitionReplicas, topicOffsets, withAdmin } from '../../../streams/admin.js';
import { EventProducer, partitionOfKey } from '../../../streams/producer.js';
import { clickhouse, dropKeys, dropTable, names, REDIS_URL, waitFor } from '../consumers/harness.js';

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

  // kafkajs 2.2.4's sendMessages keeps one response per broker across retries: when a partition's
  // leader dies and the partition moves to a broker that already answered for another partition of
  // the same send, the retry skips that broker and the send resolves without the moved messages.
  // Seen as 15 of 6,000 acknowledged events missing in one run of the full drill, and as 23 of
  // 24,000 (one send, the dead leader's two partitions) in the failover bench.
  it('a send spanning a dead leader and its successor is acknowledged only once written (kafkajs skipped the moved partition)', async () => {
    assert.ok(cluster !== undefined);
    const kafka = cluster.kafka;
    await cluster.restartDead();
    const topic = `${n.topic}-moved`;
    // Partition 0 on brokers 1 and 2 (leader 1), partition 1 on 2 and 3 (leader 2): when 1 dies,
    // partition 0 can only move to 2, the broker that also answers for partition 1.
    await withAdmin(kafka, (admin) =>
      admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic,
            replicaAssignment: [
              { partition: 0, replicas: [1, 2] },
              { partition: 1, replicas: [2, 3] },
            ],
            configEntries: [
              { name: 'min.insync.replicas', value: '1' },
              { name: 'retention.ms', value: '-1' },
            ],
          },
        ],
      }),
    );
    await waitFor('leaders 1 and 2', async () => (await partitionReplicas(kafka, topic)).map((r) => r.leader).join() === '1,2', 30_000, 200);
    const keys = (p: number): string[] =>
      Array.from({ length: 200 }, (_, i) => `k${i}`)
        .filter((k) => partitionOfKey(k, 2) === p)
        .slice(0, 10);
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
    assert.deepEqual(
      ends.map((e) => e.high - e.low),
      [20, 20],
      'each partition holds both sends once',
    );
  });
});
