/**
 * Outages: Redis stopped for 10 s, then ClickHouse stopped for 10 s, while events keep arriving.
 * The worker must pause on the Redis outage (nothing committed, logged once), spool rows to disk on
 * the ClickHouse outage, resume by itself both times, and end with nothing lost or doubled.
 * Redis and ClickHouse here are private instances (see private-services.ts); Kafka is the shared one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createAdapter } from '../../../adapters/registry.js';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import { AdaptationWorker } from '../../../consumers/worker.js';
import { createLogger } from '../../../lib/log.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import type { StateScope } from '../../../model-store/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { DeadLetterWriter } from '../../../streams/dead-letters.js';
import { EventProducer } from '../../../streams/producer.js';
import { assertMatchesReference, clickhouse, DATABASE, events, KAFKA, KEEP_ALL_EVENTS, model, names, produceByItem, referenceRun, waitFor } from './harness.js';
import { PrivateServices } from './private-services.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
const PHASE = 8000;
const OUTAGE_MS = 10_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('worker through Redis and ClickHouse outages', { timeout: 240_000 }, () => {
  const n = names('outage');
  const spoolDir = mkdtempSync(join(tmpdir(), 'thaw-outage-spool-'));
  let svc: PrivateServices;
  before(async () => {
    svc = await PrivateServices.up();
  });
  after(async () => {
    await deleteTopics(KAFKA, [n.topic, n.dlq]);
    await svc.down(); // private instances: their data goes with them
    rmSync(spoolDir, { recursive: true, force: true });
  });

  it('pauses on Redis, spools on ClickHouse, resumes by itself, loses and doubles nothing', async () => {
    await ensureTopics(KAFKA, [
      { topic: n.topic, partitions: 3, config: { ...KEEP_ALL_EVENTS } },
      { topic: n.dlq, partitions: 1 },
    ]);
    const evs = events(3 * PHASE, 41);
    const reference = await referenceRun(evs, scope, 3);
    const producer = new EventProducer({ kafka: KAFKA });
    await producer.connect();
    const sink = new ClickHouseSink({ url: svc.clickhouseUrl, database: DATABASE, table: n.table, spoolDir, retryInitialMs: 100, retryMaxMs: 1000 });
    await sink.ensureSchema();
    const store = new RedisEntityStore({ redis: { url: svc.redisUrl }, keyPrefix: n.prefix });
    const logLines: { msg: string }[] = [];
    const worker = new AdaptationWorker({
      kafka: KAFKA,
      side: 'item',
      adapter: createAdapter('fm-adagrad', 'item', model()),
      store,
      sink,
      deadLetters: new DeadLetterWriter(producer, n.dlq),
      topic: n.topic,
      groupId: n.group,
      maxBatchMessages: 200,
      metricsPort: 0,
      consumer: { retryInitialMs: 100, retryMaxMs: 1000 },
      logger: createLogger('info', {}, (l) => logLines.push(JSON.parse(l) as { msg: string })),
    });
    try {
      await produceByItem(producer, n.topic, evs.slice(0, PHASE));
      await worker.start();
      await waitFor('phase 1 processed', () => worker.stats().processed === PHASE, 60_000);

      // Redis down while the next events arrive: the worker must wait, not skip or commit.
      await svc.sh('stop', 'redis');
      const redisDownAt = Date.now();
      await produceByItem(producer, n.topic, evs.slice(PHASE, 2 * PHASE));
      await waitFor('the worker notices the Redis outage', () => worker.stats().outageSinceMs !== undefined, OUTAGE_MS);
      await sleep(Math.max(0, OUTAGE_MS - (Date.now() - redisDownAt)));
      const during = worker.stats();
      assert.equal(during.processed, PHASE, 'nothing processed without Redis');
      assert.ok(during.retries > 0);
      assert.equal(worker.state, 'RUNNING');
      await svc.sh('start', 'redis');
      await waitFor('phase 2 processed after Redis is back', () => worker.stats().processed === 2 * PHASE, 60_000);
      assert.equal(worker.stats().outageSinceMs, undefined);
      assert.equal(logLines.filter((l) => l.msg.startsWith('dependency outage')).length, 1, 'outage logged once, not per retry');
      assert.equal(logLines.filter((l) => l.msg.startsWith('dependency back')).length, 1);

      // ClickHouse down: rows go to the disk spool and the stream keeps flowing.
      await svc.sh('stop', 'clickhouse');
      const chDownAt = Date.now();
      await produceByItem(producer, n.topic, evs.slice(2 * PHASE));
      await waitFor('phase 3 processed into the spool', () => worker.stats().processed === 3 * PHASE, 60_000);
      assert.ok((await sink.spooledBytes()) > 0, 'rows were spooled during the ClickHouse outage');
      await sleep(Math.max(0, OUTAGE_MS - (Date.now() - chDownAt)));
      await svc.sh('start', 'clickhouse');
      await waitFor('spool replayed by itself', async () => (await sink.spooledBytes()) === 0, 60_000);
      await waitFor('lag 0', async () => (await worker.lag()) === 0, 30_000);
      await worker.drain();
      const s = worker.stats();
      assert.deepEqual([s.processed, s.deadLetters], [evs.length, 0]);

      const ch = clickhouse(svc.clickhouseUrl);
      try {
        await assertMatchesReference({ ch, table: n.table, redisUrl: svc.redisUrl, prefix: n.prefix, scope, events: evs, reference });
      } finally {
        await ch.close();
      }
    } finally {
      if (worker.state === 'RUNNING') await worker.stop();
      await sink.close();
      await store.close();
      await producer.close();
    }
  });
});
