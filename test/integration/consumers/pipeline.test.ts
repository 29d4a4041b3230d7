/**
 * The pipelined worker (pipelineDepth 3, small chunks so every fetch holds several) against real
 * Kafka, Redis and ClickHouse, with state writes and sink writes failing now and then as outages
 * do: chunks prepared after a failed one are discarded and redone, commits never pass a failure,
 * and the run must end exactly where the reference run ends (one prediction per event with the
 * reference's score and prior count, Redis states equal to the reference's). The same with
 * fetch-ahead (streams/fetch-ahead.ts): chunks of later fetches in flight when one fails, the
 * partition sought back to the failed chunk.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createAdapter } from '../../../adapters/registry.js';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import type { PredictionRow, PredictionSink } from '../../../analytics/types.js';
import { AdaptationWorker } from '../../../consumers/worker.js';
import { ThawError } from '../../../lib/errors.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import type { EntityState, EntityStore, ProgressWrite, ScopedRead, ScopedWrite, StateScope } from '../../../model-store/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { DeadLetterWriter } from '../../../streams/dead-letters.js';
import { EventProducer } from '../../../streams/producer.js';
import {
  assertMatchesReference,
  clickhouse,
  CLICKHOUSE_URL,
  DATABASE,
  dropKeys,
  dropTable,
  events,
  KAFKA,
  KEEP_ALL_EVENTS,
  model,
  names,
  produceByItem,
  REDIS_URL,
  referenceRun,
  waitFor,
} from './harness.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };

/** Fails every `every`-th write (before writing anything), as a Redis outage would. */
class FlakyStore implements EntityStore {
  calls = 0;
  failures = 0;
  constructor(
    private readonly inner: EntityStore,
    private readonly every: number,
  ) {}
  getMany(s: StateScope, ids: readonly string[]): Promise<(EntityState | undefined)[]> {
    return this.inner.getMany(s, ids);
  }
  putMany(s: StateScope, entries: readonly { entityId: string; state: EntityState }[]): Promise<{ written: number; skipped: number }> {
    if (this.injectFailure()) return Promise.reject(new ThawError('REDIS_ERROR', 'injected state write failure'));
    return this.inner.putMany(s, entries);
  }
  // The worker's writes: one atomic call (states, the partition's safeguard state, its progress), as Redis takes them.
  getManyScoped(reads: readonly ScopedRead[]): Promise<(EntityState | undefined)[][]> {
    return this.inner.getManyScoped?.(reads) ?? Promise.reject(new Error('FlakyStore needs an inner store with getManyScoped'));
  }
  putManyScoped(writes: readonly ScopedWrite[], progress?: ProgressWrite): Promise<{ written: number; skipped: number }[]> {
    if (this.injectFailure()) return Promise.reject(new ThawError('REDIS_ERROR', 'injected state write failure'));
    return this.inner.putManyScoped?.(writes, progress) ?? Promise.reject(new Error('FlakyStore needs an inner store with putManyScoped'));
  }
  getProgress(scope: StateScope, topic: string, partition: number): Promise<number | undefined> {
    return this.inner.getProgress?.(scope, topic, partition) ?? Promise.resolve(undefined);
  }
  private injectFailure(): boolean {
    if (++this.calls % this.every !== 0) return false;
    this.failures++;
    return true;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Fails every `every`-th write (before writing anything), as a ClickHouse outage with a full spool would. */
class FlakySink implements PredictionSink {
  calls = 0;
  failures = 0;
  constructor(
    private readonly inner: PredictionSink,
    private readonly every: number,
  ) {}
  write(rows: readonly PredictionRow[]): Promise<void> {
    if (++this.calls % this.every === 0) {
      this.failures++;
      return Promise.reject(new ThawError('CLICKHOUSE_ERROR', 'injected sink write failure'));
    }
    return this.inner.write(rows);
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** One flaky run: the worker through injected state and sink failures must end equal to the reference run. */
async function flakyRun(tag: string, opts: { pipelineDepth: number; fetchAhead: boolean; maxBatchMessages: number }): Promise<void> {
  const n = names(tag);
  const spoolDir = mkdtempSync(join(tmpdir(), `thaw-${tag}-spool-`));
  try {
    await ensureTopics(KAFKA, [
      { topic: n.topic, partitions: 2, config: { ...KEEP_ALL_EVENTS } },
      { topic: n.dlq, partitions: 1 },
    ]);
    const evs = events(12_000, 53);
    const reference = await referenceRun(evs, scope, 2);
    const producer = new EventProducer({ kafka: KAFKA });
    const clickhouseSink = new ClickHouseSink({ url: CLICKHOUSE_URL, database: DATABASE, table: n.table, spoolDir });
    const store = new FlakyStore(new RedisEntityStore({ redis: { url: REDIS_URL }, keyPrefix: n.prefix }), 7);
    const sink = new FlakySink(clickhouseSink, 11);
    const worker = new AdaptationWorker({
      kafka: KAFKA,
      side: 'item',
      adapter: createAdapter('fm-adagrad', 'item', model()),
      store,
      sink,
      deadLetters: new DeadLetterWriter(producer, n.dlq),
      topic: n.topic,
      groupId: n.group,
      maxBatchMessages: opts.maxBatchMessages,
      pipelineDepth: opts.pipelineDepth,
      fetchAhead: opts.fetchAhead,
      metricsPort: 0,
      consumer: { retryInitialMs: 20, retryMaxMs: 100 },
    });
    try {
      await producer.connect();
      await clickhouseSink.ensureSchema();
      await produceByItem(producer, n.topic, evs);
      await worker.start();
      await waitFor('lag 0', async () => (await worker.lag()) === 0, 120_000);
      await worker.drain();
      assert.equal(worker.state, 'STOPPED');
      assert.ok(store.failures > 0 && sink.failures > 0, `failures injected: store ${store.failures}, sink ${sink.failures}`);
      const s = worker.stats();
      assert.equal(s.deadLetters, 0);
      // A rebalance (the broker's coordinator moving on a loaded host) redelivers from the committed
      // offset: events already applied are then skipped by the per-entity offset check.
      assert.ok(s.processed + s.skipped >= evs.length, `every event processed at least once (processed ${s.processed}, skipped ${s.skipped})`);
      const ch = clickhouse();
      try {
        await assertMatchesReference({ ch, table: n.table, redisUrl: REDIS_URL, prefix: n.prefix, scope, events: evs, reference });
      } finally {
        await ch.close();
      }
    } finally {
      if (worker.state === 'RUNNING') await worker.stop();
      await sink.close();
      await store.close();
      await producer.close();
    }
  } finally {
    await deleteTopics(KAFKA, [n.topic, n.dlq]);
    await dropKeys(REDIS_URL, n.prefix);
    const ch = clickhouse();
    try {
      await dropTable(ch, n.table);
    } finally {
      await ch.close();
    }
    rmSync(spoolDir, { recursive: true, force: true });
  }
}

describe('pipelined worker (Kafka + Redis + ClickHouse)', { timeout: 360_000 }, () => {
  it('depth 3 through injected state and sink failures ends equal to the reference run', async () => {
    await flakyRun('pipeline', { pipelineDepth: 3, fetchAhead: false, maxBatchMessages: 150 });
  });

  it('fetch-ahead (depth 2: chunks of later fetches in flight) through the same failures ends equal to the reference run', async () => {
    await flakyRun('pipelineahead', { pipelineDepth: 2, fetchAhead: true, maxBatchMessages: 150 });
  });
});
