/**
 * kill -9 mid-stream: the worker runs in its own process (consumers/worker-main.ts), is SIGKILLed
 * twice while consuming, restarted each time, and finally drained with SIGTERM. The final Redis
 * states must equal an uninterrupted reference run, and the de-duplicated prediction log must hold
 * every event exactly once with the reference's score and prior count.
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
  DATABASE,
  dropKeys,
  dropTable,
  events,
  KAFKA,
  lagOf,
  model,
  names,
  produceByItem,
  REDIS_URL,
  referenceRun,
  waitFor,
} from './harness.js';
import { spawnWorker, type WorkerProcess } from './process.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
const N = 20_000;

describe('worker process killed with SIGKILL mid-stream', { timeout: 240_000 }, () => {
  const n = names('kill');
  const dir = mkdtempSync(join(tmpdir(), 'thaw-kill-'));
  const running: WorkerProcess[] = [];
  after(async () => {
    for (const w of running) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    const ch = clickhouse();
    try {
      await dropTable(ch, n.table);
    } finally {
      await ch.close();
    }
    await dropKeys(REDIS_URL, n.prefix);
    await deleteTopics(KAFKA, [n.topic, n.dlq]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('ends with the same states and log as an uninterrupted run', async () => {
    await ensureTopics(KAFKA, [
      { topic: n.topic, partitions: 3 },
      { topic: n.dlq, partitions: 1 },
    ]);
    const evs = events(N, 31);
    const producer = new EventProducer({ kafka: KAFKA });
    await producer.connect();
    try {
      await produceByItem(producer, n.topic, evs);
    } finally {
      await producer.close();
    }
    const modelPath = join(dir, 'fm.bin');
    writeFileSync(modelPath, model().toBuffer());
    const options: WorkerMainOptions = {
      kafka: { brokers: KAFKA.brokers },
      redis: { url: REDIS_URL, keyPrefix: n.prefix },
      clickhouse: { url: CLICKHOUSE_URL, database: DATABASE, table: n.table, spoolDir: join(dir, 'spool') },
      side: 'item',
      adapter: 'fm-adagrad',
      model: { path: modelPath },
      topic: n.topic,
      groupId: n.group,
      deadLetterTopic: n.dlq,
      maxBatchMessages: 100,
      // A killed member's partitions move after the session timeout: keep it at the broker minimum.
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 1000,
      logLevel: 'warn',
    };
    const reference = await referenceRun(evs, scope);

    const lags: number[] = [];
    for (const killAtLag of [Math.floor(N * 0.7), Math.floor(N * 0.35)]) {
      const w = spawnWorker(options);
      running.push(w);
      await waitFor(`lag <= ${killAtLag}`, async () => (await lagOf(n.group, n.topic)) <= killAtLag, 90_000, 50);
      w.child.kill('SIGKILL');
      assert.equal(await w.exited, 'SIGKILL', w.stderr());
      lags.push(await lagOf(n.group, n.topic));
    }
    assert.ok(lags.every((l) => l > 0), `both kills happened mid-stream (lag after kill: ${lags.join(', ')})`);

    const last = spawnWorker(options);
    running.push(last);
    await waitFor('lag 0', async () => (await lagOf(n.group, n.topic)) === 0, 120_000, 200);
    last.child.kill('SIGTERM');
    assert.equal(await last.exited, 0, `drained worker exits 0; stderr:\n${last.stderr()}`);

    const ch = clickhouse();
    try {
      await assertMatchesReference({ ch, table: n.table, redisUrl: REDIS_URL, prefix: n.prefix, scope, events: evs, reference });
    } finally {
      await ch.close();
    }
  });
});
