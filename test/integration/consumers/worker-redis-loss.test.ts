/**
 * Issue 11, item 4: Redis loses its last writes (a kill -9 under `appendfsync everysec` loses up to
 * a second; a failover to a lagging replica loses more) while Kafka's committed offsets are past
 * them. The loss is simulated deterministically: every key of the test's prefix is snapshotted
 * (DUMP) after the first half of the stream, the second half is processed and committed, then the
 * snapshot is restored over it (states and their progress roll back together, as an AOF suffix
 * would). A worker started afterwards must re-apply the second half from Kafka, because the
 * progress stored with the states, not the committed offsets, says where each partition starts.
 * Workers are assembled as `thaw run` does: Redis behind the cache tier.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { AdaptationWorker } from '../../../consumers/worker.js';
import type { StateScope } from '../../../model-store/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { assertMatchesReference, clickhouse, dropKeys, dropTable, events, KAFKA, KEEP_ALL_EVENTS, lagOf, names, produceByItem, REDIS_URL, referenceRun, waitFor } from './harness.js';
import { assembledWorker } from './assembled-worker.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
const PARTITIONS = 3;
const N = 4000;

/** Every key under `prefix` with its value and remaining TTL. */
async function snapshot(redis: Redis, prefix: string): Promise<{ key: string; value: Buffer; pttl: number }[]> {
  const out: { key: string; value: Buffer; pttl: number }[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const value = await redis.dumpBuffer(key);
      if (value !== null) out.push({ key, value, pttl: Math.max(0, await redis.pttl(key)) });
    }
  } while (cursor !== '0');
  return out;
}

describe('Redis loses its last writes: the stored progress brings them back from Kafka (issue 11)', { timeout: 180_000 }, () => {
  const n = names('redisloss');
  const dir = mkdtempSync(join(tmpdir(), 'thaw-redisloss-'));
  const redis = new Redis(REDIS_URL);
  const producer = new EventProducer({ kafka: KAFKA });
  const workers: { worker: AdaptationWorker; close: () => Promise<void> }[] = [];
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
    await dropKeys(REDIS_URL, n.prefix);
    redis.disconnect();
    await deleteTopics(KAFKA, [n.topic, n.dlq]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** A worker as `thaw run` assembles it, run until the group has committed everything, drained. */
  const runToEnd = async (name: string, until: (w: AdaptationWorker) => Promise<boolean> | boolean): Promise<AdaptationWorker> => {
    const assembled = await assembledWorker({ n, redisUrl: REDIS_URL, producer, spoolDir: join(dir, `spool-${name}`), worker: { maxBatchMessages: 200 } });
    const { worker } = assembled;
    workers.push(assembled);
    await worker.start();
    await waitFor(`${name} done`, async () => (await lagOf(n.group, n.topic)) === 0 && (await until(worker)), 60_000, 100);
    await worker.drain();
    assert.equal(worker.state, 'STOPPED');
    return worker;
  };

  it('re-applies what Redis lost although the group had committed it', async () => {
    await ensureTopics(KAFKA, [
      { topic: n.topic, partitions: PARTITIONS, config: { ...KEEP_ALL_EVENTS } },
      { topic: n.dlq, partitions: 1 },
    ]);
    await producer.connect();
    const evs = events(N, 47);
    const reference = await referenceRun(evs, scope, PARTITIONS);

    await produceByItem(producer, n.topic, evs.slice(0, N / 2));
    await runToEnd('first half', (w) => w.stats().processed === N / 2);
    const lastDurable = await snapshot(redis, n.prefix);
    assert.ok(
      lastDurable.some((k) => k.key.includes(':_progress:')),
      'progress is stored with the states',
    );

    await produceByItem(producer, n.topic, evs.slice(N / 2));
    await runToEnd('second half', (w) => w.stats().processed === N / 2);

    // The loss: Redis comes back with what it had after the first half; Kafka has committed it all.
    await dropKeys(REDIS_URL, n.prefix);
    for (const k of lastDurable) await redis.restore(k.key, k.pttl, k.value, 'REPLACE');

    const again = await runToEnd('after the loss', (w) => w.stats().processed === N / 2);
    assert.equal(again.stats().processed, N / 2, 'the lost half is applied again, and nothing else');
    assert.match(await again.metrics.text(), /thaw_partition_starts_total\{decision="seek_behind",namespace="live"\} [1-9]/);

    const ch = clickhouse();
    try {
      await assertMatchesReference({ ch, table: n.table, redisUrl: REDIS_URL, prefix: n.prefix, scope, events: evs, reference });
    } finally {
      await ch.close();
    }
  });
});
