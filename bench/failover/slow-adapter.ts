/**
 * Is a short session timeout safe for a slow adapter? `node --import tsx bench/failover/slow-adapter.ts
 * [--session-timeout-ms MS (default: thaw run's)] [--events 60000] [--partitions 4]`: one `thaw run item --adapter emerg`
 * (the slowest adapter in the spine table, EmerG at the spine's default size) drains a pre-filled
 * topic on the shared Kafka with the default micro-batch (5,000) and every partition in flight at
 * once, so heartbeats, which go between chunks, are as far apart as they get. Counted: partitions
 * the worker saw move (its `thaw_partitions_moved_total`, non-zero when the group evicted it and it
 * rejoined) and the lines of its log that name a rebalance or an unknown member. Part of the failover
 * bench's question (bench/README.md); prints one Markdown line, never asserts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { createClient } from '@clickhouse/client';
import { ReleaseStore } from '../../model-store/releases.js';
import { initBackend } from '../../models/backend.js';
import { Emerg } from '../../models/emerg.js';
import { fieldLayoutOf, inferEventLayout } from '../../models/event-layout.js';
import { bundleCtr } from '../../models/onnx/bundle.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { deleteTopics, ensureTopics, groupLag, withAdmin } from '../../streams/admin.js';
import { kafkaFromEnv } from '../../streams/kafka.js';
import { EventProducer } from '../../streams/producer.js';
import { encodeLabelled } from '../../streams/serde.js';
import { freePort } from '../../lib/free-port.js';
import { startThawRun } from './thaw-run.js';
import { DEFAULT_SESSION_TIMEOUT_MS } from '../../config/commands/run.js';

const { values: args } = parseArgs({
  options: {
    'session-timeout-ms': { type: 'string', default: String(DEFAULT_SESSION_TIMEOUT_MS) },
    events: { type: 'string', default: '60000' },
    partitions: { type: 'string', default: '4' },
  },
});
const SESSION_MS = Number(args['session-timeout-ms']);
const N = Number(args.events);
const PARTITIONS = Number(args.partitions);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const id = randomUUID().replace(/-/g, '').slice(0, 10);
  const topic = `thaw-bench-slow-${id}`;
  const table = `bench_slow_${id}`;
  const dir = mkdtempSync(join(tmpdir(), 'thaw-slow-'));
  const kafka = kafkaFromEnv();
  const redisUrl = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';
  const clickhouseUrl = process.env.THAW_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123';
  try {
    const evs = [...syntheticStream({ seed: 5, events: N, users: 20_000, items: 5_000 }).events()];
    await initBackend('auto');
    const layout = inferEventLayout('item', evs.slice(0, 20_000));
    const model = new Emerg({ layout: fieldLayoutOf(layout), vocab: layout.vocab });
    const store = new ReleaseStore({ root: join(dir, 'releases') });
    const b = bundleCtr(model, { eventLayout: layout });
    const m = await store.publish({ model: 'emerg', architecture: b.architecture, files: b.files });
    await store.promote('emerg', m.version);
    await ensureTopics(kafka, [{ topic, partitions: PARTITIONS, config: { 'retention.ms': '-1' } }]);
    const producer = new EventProducer({ kafka });
    await producer.connect();
    for (let at = 0; at < N; at += 5000)
      await producer.send(
        topic,
        evs.slice(at, at + 5000).map((e) => ({ key: e.itemId, value: encodeLabelled(e) })),
      );
    await producer.close();

    const port = await freePort();
    const t0 = Date.now();
    const w = startThawRun({
      name: 'slow',
      brokers: kafka.brokers,
      redisUrl,
      redisPrefix: `sl${id}`,
      clickhouseUrl,
      table,
      topic,
      group: topic,
      dir,
      sessionTimeoutMs: SESSION_MS,
      maxBatch: 5000,
      metricsPort: port,
      extra: ['--adapter', 'emerg', '--model', 'emerg'],
    });
    let moved = 0;
    for (;;) {
      if (!w.alive()) throw new Error(`the worker exited:\n${w.stderr().slice(-4000)}`);
      const lag = await withAdmin(kafka, (admin) => groupLag(admin, topic, [topic])).catch(() => -1);
      const text = await fetch(`http://127.0.0.1:${port}/metrics`)
        .then((r) => r.text())
        .catch(() => '');
      const mm = /^thaw_partitions_moved_total(?:\{[^}]*\})? (\S+)$/m.exec(text);
      if (mm?.[1] !== undefined) moved = Number(mm[1]);
      if (lag === 0) break;
      if (Date.now() - t0 > 600_000) throw new Error('not drained within 10 min');
      await sleep(500);
    }
    const seconds = (Date.now() - t0) / 1000;
    w.child.kill('SIGTERM');
    await w.exited;
    const lines = w
      .stderr()
      .split('\n')
      .filter((l) => /rebalanc|unknown member|not aware of this member|UNKNOWN_MEMBER_ID/i.test(l));
    if (process.env.SLOW_ADAPTER_LOG === '1') process.stderr.write(w.stderr());
    const rebalanceLines = lines.length;
    process.stdout.write(
      `| emerg, ${N} events, ${PARTITIONS} partitions, --max-batch 5000, --session-timeout-ms ${SESSION_MS} | ${seconds.toFixed(1)} s (${(N / seconds).toFixed(0)} events/s incl. start) | partitions moved ${moved} | rebalance log lines ${rebalanceLines} |\n`,
    );
  } finally {
    await deleteTopics(kafka, [topic]).catch(() => undefined);
    const ch = createClient({ url: clickhouseUrl });
    await ch.command({ query: `DROP TABLE IF EXISTS thaw.${table}` }).catch(() => undefined);
    await ch.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`slow-adapter check failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
