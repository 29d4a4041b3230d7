/**
 * Issue 11 ("Progress lives with the state"): a real `kill -9` of redis-server (appendonly,
 * `appendfsync everysec`, as scripts/services.sh configures it) while a worker assembled as
 * `thaw run` does (cache tier included) is consuming, then Redis restarted from its own files.
 *
 * 1. The crash alone: the worker rides out the outage and every state equals the reference.
 * 2. The crash loses acknowledged writes (what `everysec` allows after a host crash, or a failover
 *    to a lagging replica): Redis comes back from a copy of its AOF taken earlier, so its states and
 *    their stored progress go back in time together while the worker keeps running. The worker
 *    must notice that the stored progress fell behind what it wrote, drop its cache and re-apply
 *    from Kafka; carrying on from its cached states would leave every entity the loss touched and
 *    the stream did not touch again wrong in Redis, without a word.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AdaptationWorker } from '../../../consumers/worker.js';
import type { StateScope } from '../../../model-store/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { assertMatchesReference, clickhouse, dropTable, events, KAFKA, KEEP_ALL_EVENTS, names, produceByItem, referenceRun, waitFor } from './harness.js';
import { PrivateServices } from './private-services.js';
import { assembledWorker, type AssembledWorker } from './assembled-worker.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
const PARTITIONS = 3;
const PHASE = 1500;

describe('kill -9 of redis-server under appendfsync everysec, worker running (issue 11)', { timeout: 300_000 }, () => {
  let svc: PrivateServices;
  const dir = mkdtempSync(join(tmpdir(), 'thaw-rediskill-'));
  before(async () => {
    svc = await PrivateServices.up(['redis']);
  });
  after(async () => {
    await svc.down();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A worker as `thaw run` assembles it, on the private Redis, consuming `n.topic`. */
  const startWorker = async (n: ReturnType<typeof names>, producer: EventProducer): Promise<AssembledWorker> => {
    const w = await assembledWorker({
      n,
      redisUrl: svc.redisUrl,
      producer,
      spoolDir: join(dir, `spool-${n.id}`),
      worker: { maxBatchMessages: 200, consumer: { retryInitialMs: 100, retryMaxMs: 1000 } },
    });
    await w.worker.start();
    return w;
  };

  const scenario = async (tag: string, seed: number, crash: (n: ReturnType<typeof names>, worker: AdaptationWorker) => Promise<void>): Promise<void> => {
    const n = names(tag);
    const producer = new EventProducer({ kafka: KAFKA });
    await ensureTopics(KAFKA, [
      { topic: n.topic, partitions: PARTITIONS, config: { ...KEEP_ALL_EVENTS } },
      { topic: n.dlq, partitions: 1 },
    ]);
    await producer.connect();
    const evs: LabelledEvent[] = events(3 * PHASE, seed);
    const reference = await referenceRun(evs, scope, PARTITIONS);
    const { worker, close } = await startWorker(n, producer);
    try {
      await produceByItem(producer, n.topic, evs.slice(0, PHASE));
      await waitFor('phase 1 processed', () => worker.stats().processed === PHASE, 60_000);
      await crash(n, worker);
      await produceByItem(producer, n.topic, evs.slice(2 * PHASE));
      await waitFor('lag 0 after the crash', async () => worker.stats().processed >= 3 * PHASE && (await worker.lag()) === 0, 90_000, 200);
      await worker.drain();
      assert.equal(worker.state, 'STOPPED');
      assert.equal(worker.stats().deadLetters, 0);
      const ch = clickhouse();
      try {
        await assertMatchesReference({ ch, table: n.table, redisUrl: svc.redisUrl, prefix: n.prefix, scope, events: evs, reference });
      } finally {
        await dropTable(ch, n.table);
        await ch.close();
      }
    } finally {
      if (worker.state === 'RUNNING') await worker.stop();
      await close();
      await producer.close();
      await deleteTopics(KAFKA, [n.topic, n.dlq]);
    }
  };

  it('the crash alone: the worker waits for Redis and ends equal to the reference', async () => {
    await scenario('rediskill', 53, async (n) => {
      const producer = new EventProducer({ kafka: KAFKA });
      await producer.connect();
      try {
        // Phase 2 arrives while Redis dies mid-stream.
        const sending = produceByItem(producer, n.topic, events(3 * PHASE, 53).slice(PHASE, 2 * PHASE));
        await sleep(300);
        await svc.kill9('redis');
        await sending;
        await sleep(2000);
        await svc.sh('start', 'redis');
      } finally {
        await producer.close();
      }
    });
  });

  it('a crash that loses acknowledged writes: the worker notices and re-applies them from Kafka', async () => {
    let copy = '';
    await scenario('redislost', 59, async (n, worker) => {
      // Redis' files as they were after phase 1 (everysec has flushed them meanwhile).
      await sleep(1500);
      copy = join(dir, `aof-${n.id}`);
      cpSync(join(svc.redisDataDir, 'appendonlydir'), copy, { recursive: true });
      const producer = new EventProducer({ kafka: KAFKA });
      await producer.connect();
      try {
        await produceByItem(producer, n.topic, events(3 * PHASE, 59).slice(PHASE, 2 * PHASE));
      } finally {
        await producer.close();
      }
      await waitFor('phase 2 applied and acknowledged', () => worker.stats().processed === 2 * PHASE, 60_000);
      await sleep(1500); // and flushed by everysec: what comes back is the copy, not a lost second
      await svc.kill9('redis');
      rmSync(join(svc.redisDataDir, 'appendonlydir'), { recursive: true, force: true });
      cpSync(copy, join(svc.redisDataDir, 'appendonlydir'), { recursive: true });
      rmSync(join(svc.redisDataDir, 'dump.rdb'), { force: true });
      await svc.sh('start', 'redis');
    });
  });
});
