/**
 * kill -9 mid-stream: the worker runs in its own process (consumers/worker-main.ts), is SIGKILLed
 * twice while events keep arriving and it keeps consuming, restarted each time, and finally drained with SIGTERM. The final Redis
 * states must equal an uninterrupted reference run, and the de-duplicated prediction log must hold
 * every event exactly once with the reference's score and prior count. The same with fetch-ahead
 * (streams/fetch-ahead.ts), whose chunks in flight at a kill were handed over but not committed.
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
  REDIS_URL,
  referenceRun,
  waitFor,
} from './harness.js';
import { spawnWorker, type WorkerProcess } from './process.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
const N = 20_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Two kills mid-stream, then a drain; `extra` are the worker's pipelining options. */
function killDrill(tag: string, title: string, extra: Pick<WorkerMainOptions, 'pipelineDepth' | 'fetchAhead'>): void {
  describe(title, { timeout: 240_000 }, () => {
    const n = names(tag);
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

    it('ends with the same states and log as an uninterrupted run', async (t) => {
      await ensureTopics(KAFKA, [
        { topic: n.topic, partitions: 3, config: { ...KEEP_ALL_EVENTS } },
        { topic: n.dlq, partitions: 1 },
      ]);
      const evs = events(N, 31);
      const producer = new EventProducer({ kafka: KAFKA });
      await producer.connect();
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
        ...extra,
      };
      const reference = await referenceRun(evs, scope, 3);

      // A live stream: about 1000 events/s arrive while the workers run and get killed.
      let produced = 0;
      const producing = (async () => {
        try {
          for (let at = 0; at < N; at += 200) {
            await produceByItem(producer, n.topic, evs.slice(at, at + 200));
            produced = Math.min(N, at + 200);
            await sleep(200);
          }
        } finally {
          await producer.close();
        }
      })();

      const producedAtKill: number[] = [];
      let committedBefore = 0;
      for (const progress of [2000, 1500]) {
        const w = spawnWorker(options);
        running.push(w);
        const target = committedBefore + progress;
        await waitFor(`${target} events committed`, async () => (await committedOf(n.group, n.topic)) >= target, 90_000, 50);
        w.child.kill('SIGKILL');
        producedAtKill.push(produced);
        assert.equal(await w.exited, 'SIGKILL', w.stderr());
        committedBefore = await committedOf(n.group, n.topic);
      }
      assert.ok(
        producedAtKill.every((p) => p < N),
        `both kills happened while events were arriving (produced at kill: ${producedAtKill.join(', ')})`,
      );
      t.diagnostic(`produced at the kills: ${producedAtKill.join(', ')}; committed after them: ${committedBefore}`);
      await producing;

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
}

killDrill('kill', 'worker process killed with SIGKILL mid-stream', {});
// Fetch-ahead: chunks of later fetches in flight (not committed) when the process dies.
killDrill('killahead', 'worker process with fetch-ahead killed with SIGKILL mid-stream', { pipelineDepth: 2, fetchAhead: true });
