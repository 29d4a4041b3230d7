/**
 * Issue 11 item 5: the SIGTERM drain has a deadline. A ClickHouse that accepts the schema but never
 * an insert (a fake HTTP server of this test: every INSERT connection is reset, which the sink takes
 * for an outage and spools) keeps the spool full; the drain used to wait for it (53 s in the report).
 * With --drain-timeout-ms the worker exits 1 on time, saying how much stays in the spool.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { dropKeys, events, produceByItem } from '../consumers/harness.js';
import { cliHarness, KAFKA, REDIS } from './cli-harness.js';
import { publishUntrainedFm } from './fixtures.js';

const h = cliHarness('drain');
const DRAIN_TIMEOUT_MS = 3_000;

/** Answers DDL with 200, resets every INSERT: ClickHouse "down" for rows only. */
function fakeClickHouse(): Promise<{ server: Server; url: string; inserts: () => number }> {
  let inserts = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const query = decodeURIComponent(req.url ?? '') + body.slice(0, 200);
      if (/INSERT/i.test(query)) {
        inserts++;
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      resolve({ server, url: `http://127.0.0.1:${port}`, inserts: () => inserts });
    }),
  );
}

describe('thaw run --drain-timeout-ms', () => {
  let ch: Awaited<ReturnType<typeof fakeClickHouse>>;

  before(async () => {
    await publishUntrainedFm(join(h.dir, 'releases'));
    await ensureTopics({ brokers: [KAFKA] }, [{ topic: h.topic, partitions: 1 }]);
    const producer = new EventProducer({ kafka: { brokers: [KAFKA] } });
    await producer.connect();
    await produceByItem(producer, h.topic, events(500, 3));
    await producer.close();
    ch = await fakeClickHouse();
  });

  after(async () => {
    ch.server.closeAllConnections();
    await new Promise<void>((resolve) => ch.server.close(() => resolve()));
    await deleteTopics({ brokers: [KAFKA] }, [h.topic]).catch(() => undefined);
    await dropKeys(REDIS, h.prefix).catch(() => undefined);
    rmSync(h.dir, { recursive: true, force: true });
  });

  it('exits 1 at the deadline, saying what stays in the spool', async () => {
    const { child, done } = h.start([
      'run',
      'item',
      '--topic',
      h.topic,
      '--group-id',
      `g-${h.id}`,
      '--metrics-port',
      '0',
      '--clickhouse',
      ch.url,
      '--drain-timeout-ms',
      String(DRAIN_TIMEOUT_MS),
      '--log-level',
      'info',
    ]);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 60_000;
    // Rows reach the spool once an insert failed: then a drain has something it cannot flush.
    while (ch.inserts() === 0 && child.exitCode === null && Date.now() < deadline) await sleep(200);
    assert.ok(ch.inserts() > 0, `no insert reached the fake ClickHouse:\n${stderr.slice(-2000)}`);
    await sleep(500);
    const t0 = Date.now();
    child.kill('SIGTERM');
    const r = await done;
    const ms = Date.now() - t0;
    assert.equal(r.code, 1, r.stderr.slice(-3000));
    assert.ok(ms < DRAIN_TIMEOUT_MS + 5_000, `exited ${ms} ms after SIGTERM`);
    const line = r.stderr.split('\n').find((l) => l.includes('drain deadline passed'));
    assert.ok(line !== undefined, r.stderr.slice(-3000));
    const rec = JSON.parse(line) as { code: string; spooledBytes: unknown; spoolDir: string; drainTimeoutMs: number };
    assert.equal(rec.code, 'DRAIN_TIMEOUT');
    assert.equal(rec.drainTimeoutMs, DRAIN_TIMEOUT_MS);
    assert.ok(typeof rec.spooledBytes === 'number' && rec.spooledBytes > 0, `spooledBytes ${String(rec.spooledBytes)}`);
    assert.equal(rec.spoolDir, join(h.dir, 'spool'));
  });
});
