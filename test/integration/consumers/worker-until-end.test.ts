/**
 * `untilEnd` against real Kafka, Redis and ClickHouse, the worker in its own process
 * (consumers/worker-main.ts, as `thaw run --until-end` runs it): it processes the events the topic
 * holds when it starts, each exactly once, commits them, and exits 0 by itself; a second run
 * processes only what was produced since; a topic with nothing in it exits at once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { WorkerMainOptions } from '../../../consumers/worker-main.js';
import type { StateScope } from '../../../model-store/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import {
  assertMatchesReference,
  clickhouse,
  CLICKHOUSE_URL,
  committedOf,
  DATABASE,
  dropKeys,
  dropTable,
  events,
  KAFKA,
  KEEP_ALL_EVENTS,
  lagOf,
  model,
  names,
  produceByItem,
  query,
  REDIS_URL,
  referenceRun,
} from './harness.js';
import { spawnWorker } from './process.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };

describe('worker process with untilEnd (Kafka + Redis + ClickHouse)', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'thaw-until-end-'));
  const modelPath = join(dir, 'fm.bin');
  writeFileSync(modelPath, model().toBuffer());
  const owned: ReturnType<typeof names>[] = [];
  after(async () => {
    const ch = clickhouse();
    try {
      for (const n of owned) await dropTable(ch, n.table);
    } finally {
      await ch.close();
    }
    for (const n of owned) {
      await dropKeys(REDIS_URL, n.prefix);
      await deleteTopics(KAFKA, [n.topic, n.dlq]);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const optionsFor = (n: ReturnType<typeof names>): WorkerMainOptions => ({
    kafka: { brokers: KAFKA.brokers },
    redis: { url: REDIS_URL, keyPrefix: n.prefix },
    clickhouse: { url: CLICKHOUSE_URL, database: DATABASE, table: n.table, spoolDir: join(dir, `spool-${n.id}`) },
    side: 'item',
    adapter: 'fm-adagrad',
    model: { path: modelPath },
    topic: n.topic,
    groupId: n.group,
    deadLetterTopic: n.dlq,
    maxBatchMessages: 500,
    untilEnd: true,
    untilEndPollMs: 200,
    logLevel: 'info',
  });

  async function rowCount(table: string): Promise<number> {
    const ch = clickhouse();
    try {
      const [row] = await query<{ n: string | number }>(ch, `SELECT count() AS n FROM ${DATABASE}.${table}`);
      return Number(row?.n ?? NaN);
    } finally {
      await ch.close();
    }
  }

  it('processes every event present at start once, commits them and exits 0; a second run takes only the new ones', async () => {
    const n = names('untilend');
    owned.push(n);
    await ensureTopics(KAFKA, [
      { topic: n.topic, partitions: 3, config: { ...KEEP_ALL_EVENTS } },
      { topic: n.dlq, partitions: 1 },
    ]);
    const evs = events(6000, 41);
    const first = evs.slice(0, 4000);
    const producer = new EventProducer({ kafka: KAFKA });
    await producer.connect();
    try {
      await produceByItem(producer, n.topic, first);
      const run1 = spawnWorker(optionsFor(n));
      assert.equal(await run1.exited, 0, `exits 0 by itself at the end; stderr:\n${run1.stderr()}`);
      assert.match(run1.stderr(), /topic end reached/);
      assert.equal(await committedOf(n.group, n.topic), first.length, 'offsets committed up to the end');
      assert.equal(await lagOf(n.group, n.topic), 0);
      // Every event once: exactly one row each (no redelivery), states equal the reference run.
      assert.equal(await rowCount(n.table), first.length);
      const ch = clickhouse();
      try {
        await assertMatchesReference({ ch, table: n.table, redisUrl: REDIS_URL, prefix: n.prefix, scope, events: first, reference: await referenceRun(first, scope, 3) });
      } finally {
        await ch.close();
      }

      // Produced after the first run: the next run starts from the committed offsets and stops at the new end.
      await produceByItem(producer, n.topic, evs.slice(first.length));
      const run2 = spawnWorker(optionsFor(n));
      assert.equal(await run2.exited, 0, run2.stderr());
      assert.equal(await committedOf(n.group, n.topic), evs.length);
      assert.equal(await rowCount(n.table), evs.length);
      const ch2 = clickhouse();
      try {
        await assertMatchesReference({ ch: ch2, table: n.table, redisUrl: REDIS_URL, prefix: n.prefix, scope, events: evs, reference: await referenceRun(evs, scope, 3) });
      } finally {
        await ch2.close();
      }
    } finally {
      await producer.close();
    }
  });

  it('an empty topic exits 0 at once, without joining the group', async () => {
    const n = names('untilempty');
    owned.push(n);
    await ensureTopics(KAFKA, [
      { topic: n.topic, partitions: 3 },
      { topic: n.dlq, partitions: 1 },
    ]);
    const w = spawnWorker(optionsFor(n));
    assert.equal(await w.exited, 0, w.stderr());
    assert.match(w.stderr(), /until-end: nothing to consume/);
    assert.doesNotMatch(w.stderr(), /worker running/);
    assert.equal(await committedOf(n.group, n.topic), 0);
    assert.equal(await rowCount(n.table), 0);
  });
});
