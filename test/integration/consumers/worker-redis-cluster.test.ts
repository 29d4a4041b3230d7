/**
 * The worker on a real 3-master Redis Cluster (issue 11 "Redis Cluster, real"), assembled as
 * `thaw run` does (cluster store behind the cache tier), on a private cluster started with
 * scripts/services.sh:
 *   1. `kill -9` of one master (appendfsync everysec) mid-stream, restarted: the worker rides out
 *      the outage (retries its batch) and carries on;
 *   2. ONE node loses its last writes (its keys rolled back to a snapshot, states and progress
 *      together, as an AOF suffix lost by a crash would): a worker started afterwards seeks every
 *      partition back to the MINIMUM progress over the nodes and re-applies what that node lost,
 *      while the compare-and-set skips what the other nodes kept.
 * Afterwards the states equal an uninterrupted reference run and every event is logged once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { AdaptationWorker } from '../../../consumers/worker.js';
import type { StateScope } from '../../../model-store/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { createLogger } from '../../../lib/log.js';
import { PrivateCluster } from '../model-store/private-cluster.js';
import { assertMatchesReference, clickhouse, dropTable, events, KAFKA, KEEP_ALL_EVENTS, lagOf, names, produceByItem, referenceRun, waitFor } from './harness.js';
import { assembledWorker } from './assembled-worker.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
const PARTITIONS = 3;
const N = 6000;
const DBG = createLogger(process.env.DBG === '1' ? 'info' : 'silent');

/** Events a worker has seen: applied, or skipped as already applied (a retried batch's). */
function fetched(worker: AdaptationWorker): number {
  const s = worker.stats();
  return s.processed + s.skipped;
}

/** Every key under `prefix` on one node, with its value and remaining TTL. */
async function snapshot(node: Redis, prefix: string): Promise<{ key: string; value: Buffer; pttl: number }[]> {
  const out: { key: string; value: Buffer; pttl: number }[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const value = await node.dumpBuffer(key);
      if (value !== null) out.push({ key, value, pttl: Math.max(0, await node.pttl(key)) });
    }
  } while (cursor !== '0');
  return out;
}

describe('worker on a Redis Cluster: kill -9 of a master, and one node losing its last writes (issue 11)', { timeout: 240_000 }, () => {
  const n = names('rcluster');
  const dir = mkdtempSync(join(tmpdir(), 'thaw-rcluster-'));
  const producer = new EventProducer({ kafka: KAFKA });
  const workers: { worker: AdaptationWorker; close: () => Promise<void> }[] = [];
  let cluster: PrivateCluster;
  before(async () => {
    cluster = await PrivateCluster.up();
  });
  after(async () => {
    for (const w of workers) {
      if (w.worker.state === 'RUNNING') await w.worker.stop();
      await w.close();
    }
    await producer.close();
    const ch = clickhouse();
    try {
      await dropTable(ch, n.table);
    } finally {
      await ch.close();
    }
    await cluster.down();
    await deleteTopics(KAFKA, [n.topic, n.dlq]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A worker as `thaw run` assembles it, on the cluster; started, not waited for. */
  const startWorker = async (name: string): Promise<AdaptationWorker> => {
    const assembled = await assembledWorker({
      n,
      redisUrl: cluster.url,
      cluster: true,
      producer,
      spoolDir: join(dir, `spool-${name}`),
      logger: DBG,
      worker: {
        maxBatchMessages: 100,
        // The safeguard folds one state per PARTITION over all its entities, and that state lives on
        // one node: a batch that reached some nodes only is retried with the entities already applied
        // skipped, whose losses the safeguard then misses, so later scores drift slightly (this test
        // failed by 1.6e-3 with it on). Entity states and per-node progress are exact; see
        // model-store/README.md "Redis Cluster".
        safeguard: false,
      },
    });
    const { worker } = assembled;
    workers.push(assembled);
    await worker.start();
    return worker;
  };

  /** Waits until the group has committed everything and `until` holds, then drains the worker. */
  const finish = async (name: string, worker: AdaptationWorker, until: () => boolean): Promise<void> => {
    await waitFor(`${name} done`, async () => (await lagOf(n.group, n.topic)) === 0 && until(), 90_000, 100);
    await worker.drain();
    assert.equal(worker.state, 'STOPPED');
  };

  it('ends with the reference states and every event logged once', async () => {
    await ensureTopics(KAFKA, [
      { topic: n.topic, partitions: PARTITIONS, config: { ...KEEP_ALL_EVENTS } },
      { topic: n.dlq, partitions: 1 },
    ]);
    await producer.connect();
    const evs = events(N, 53);
    const reference = await referenceRun(evs, scope, PARTITIONS, { safeguard: false });
    const half = N / 2;

    // 1. kill -9 of a master mid-stream, then restarted (its AOF, appendfsync everysec, replayed).
    await produceByItem(producer, n.topic, evs.slice(0, half));
    const first = await startWorker('first');
    await waitFor('a third of the first half applied', () => first.stats().processed >= half / 3, 60_000, 20);
    const victim = cluster.ports[1] ?? 0;
    await cluster.kill9(victim);
    // Keep it down long enough for batches to fail against it.
    await new Promise((r) => setTimeout(r, 1_500));
    assert.ok(first.stats().processed < half, 'the master died mid-stream');
    await cluster.sh('up');
    await finish('first half', first, () => fetched(first) === half);
    assert.ok(first.stats().retries > 0, 'batches failed against the dead master and were retried');

    // 2. One node loses its last writes: snapshot it now, let the second half be applied and
    //    committed, then roll that node (only) back to the snapshot.
    const lossy = cluster.node(cluster.ports[2] ?? 0);
    try {
      const lastDurable = await snapshot(lossy, n.prefix);
      assert.ok(
        lastDurable.some((k) => k.key.includes(':_progress:')),
        'the node holds its own progress key',
      );
      await produceByItem(producer, n.topic, evs.slice(half));
      const second = await startWorker('second');
      await finish('second half', second, () => fetched(second) === half);
      const now = await snapshot(lossy, n.prefix);
      for (const k of now) await lossy.del(k.key);
      for (const k of lastDurable) await lossy.restore(k.key, k.pttl, k.value, 'REPLACE');
    } finally {
      lossy.disconnect();
    }

    const third = await startWorker('after the loss');
    await finish('after the loss', third, () => fetched(third) === half);
    // The second half is fetched again (from the minimum progress over the nodes), and nothing else:
    // what the rolled-back node lost is applied again, what the other nodes kept is skipped.
    assert.equal(fetched(third), half);
    assert.ok(third.stats().processed > 0 && third.stats().skipped > 0, JSON.stringify(third.stats()));
    assert.match(await third.metrics.text(), /thaw_partition_starts_total\{decision="seek_behind",namespace="live"\} [1-9]/);

    const ch = clickhouse();
    try {
      await assertMatchesReference({ ch, table: n.table, redisUrl: cluster.url, redisCluster: true, prefix: n.prefix, scope, events: evs, reference });
    } finally {
      await ch.close();
    }
  });
});
