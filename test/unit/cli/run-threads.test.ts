/**
 * Issue 13: the supervision of `thaw run --threads N` (cli/run-threads.ts), with scripted worker
 * threads in place of real workers (logic only; the real thing runs in
 * test/integration/cli/run-threads.test.ts): a signal drains every thread, a thread that dies or
 * FAILED makes the run exit 1 after the others drained, a start failure keeps its code, a drain past
 * the deadline exits 1, and /metrics merges the threads' series.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { runSpec } from '../../../config/commands/run.js';
import { loadConfig } from '../../../config/load.js';
import { ThawError } from '../../../lib/errors.js';
import { createLogger } from '../../../lib/log.js';
import { runThreads, startError } from '../../../cli/run-threads.js';

/** What a scripted thread does. */
type Script = 'ok' | 'die-after-start' | 'fail-start' | 'fail-running' | 'ignore-drain';

// A thread speaking cli/run-thread-protocol.ts: started, then the script; a drain stops it.
const SCRIPTED = `
const { parentPort, workerData } = require('node:worker_threads');
const { script, index } = workerData;
if (script === 'fail-start') {
  parentPort.postMessage({ kind: 'start-failed', error: { message: 'invalid config "adapter": nope', code: 'CONFIG_INVALID' } });
} else {
  parentPort.postMessage({ kind: 'started', groupId: 'g', topic: 't', release: 'r' });
  parentPort.on('message', (m) => {
    if (m.kind === 'drain' && script !== 'ignore-drain') parentPort.postMessage({ kind: 'stopped', state: 'STOPPED', error: undefined, processed: 10 + index, batches: 1 });
    if (m.kind === 'scrape') parentPort.postMessage({ kind: 'scraped', id: m.id, healthy: true, metrics: [{ name: 'thaw_events_total', help: 'Events.', type: 'counter', aggregator: 'sum', values: [{ value: 7, labels: { thread: String(index) } }] }] });
  });
  if (script === 'die-after-start') setTimeout(() => { throw new Error('boom in thread ' + index); }, 100);
  if (script === 'fail-running') setTimeout(() => {
    parentPort.postMessage({ kind: 'draining' });
    parentPort.postMessage({ kind: 'stopped', state: 'FAILED', error: { message: 'store regressed', code: 'STORE_REGRESSED' }, processed: 1, batches: 1 });
  }, 100);
}
`;

function harness(scripts: Script[], drainTimeoutMs = 5_000) {
  const cfg = loadConfig(runSpec, ['item', '--threads', String(scripts.length), '--metrics-port', '0', '--drain-timeout-ms', String(drainTimeoutMs), '--spool-dir', '/nonexistent/spool'], {
    env: {},
  }).config;
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('info', {}, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  const spawned: number[] = [];
  const ac = new AbortController();
  const run = runThreads(cfg, { signal: ac.signal }, log, (index) => {
    spawned.push(index);
    return new Worker(SCRIPTED, { eval: true, workerData: { script: scripts[index], index } });
  });
  const logged = (msg: string): Record<string, unknown>[] => lines.filter((l) => l.msg === msg);
  const waitLogged = async (msg: string): Promise<Record<string, unknown>> => {
    for (;;) {
      const hit = logged(msg)[0];
      if (hit !== undefined) return hit;
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { run, abort: () => ac.abort(), logged, waitLogged, spawned };
}

describe('thaw run --threads: supervision', () => {
  it('a signal drains every thread and exits 0 with their totals', async () => {
    const h = harness(['ok', 'ok', 'ok']);
    await h.waitLogged('worker threads started');
    h.abort();
    assert.equal(await h.run, 0);
    assert.deepEqual(h.logged('worker threads drained')[0]?.processed, 10 + 11 + 12, 'every thread reported its totals after a drain');
  });

  it('a thread that dies takes the run down: the others drain, exit 1 naming the thread', async () => {
    const h = harness(['ok', 'die-after-start']);
    assert.equal(await h.run, 1);
    const died = h.logged('worker thread died');
    assert.deepEqual(
      died.map((l) => l.thread),
      [1],
    );
    assert.match(String(died[0]?.error), /boom in thread 1/);
    assert.equal(h.logged('a worker thread is stopping: draining the others')[0]?.thread, 1);
  });

  it('a worker that FAILED makes the run exit 1 with its code, after the others drained', async () => {
    const h = harness(['fail-running', 'ok']);
    assert.equal(await h.run, 1);
    assert.deepEqual(
      h.logged('worker failed').map((l) => [l.thread, l.code]),
      [[0, 'STORE_REGRESSED']],
    );
  });

  it('a start failure of thread 0 stops before the others start, as a usage error for a bad option', async () => {
    const h = harness(['fail-start', 'ok']);
    await assert.rejects(h.run, (e: unknown) => e instanceof ThawError && e.code === 'USAGE' && /worker thread 0 failed to start: invalid config "adapter"/.test(e.message));
    assert.deepEqual(h.spawned, [0]);
  });

  it('a drain past --drain-timeout-ms exits 1 (DRAIN_TIMEOUT)', async () => {
    const h = harness(['ok', 'ignore-drain'], 1_000);
    await h.waitLogged('worker threads started');
    h.abort();
    assert.equal(await h.run, 1);
    assert.equal(h.logged('drain deadline passed: exiting without waiting any longer')[0]?.code, 'DRAIN_TIMEOUT');
  });

  it('/metrics serves every thread series labelled by thread, /healthz answers for all', async () => {
    const h = harness(['ok', 'ok']);
    const { port } = (await h.waitLogged('metrics endpoint listening')) as { port: number };
    await h.waitLogged('worker threads started');
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(text, /thaw_events_total\{thread="0"\} 7/);
    assert.match(text, /thaw_events_total\{thread="1"\} 7/);
    assert.match(text, /thaw_worker_process_cpu_user_seconds_total/, 'process metrics once');
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    h.abort();
    assert.equal(await h.run, 0);
  });
});

describe('startError', () => {
  it('keeps a known code, maps bad options to USAGE and anything else to THREAD_FAILED', () => {
    assert.equal(startError(1, { message: 'kafka down', code: 'UNAVAILABLE_AT_START' }).code, 'UNAVAILABLE_AT_START');
    assert.equal(startError(0, { message: 'bad', code: 'CONFIG_INVALID' }).code, 'USAGE');
    assert.equal(startError(0, { message: 'odd', code: 'ERR_SOMETHING' }).code, 'THREAD_FAILED');
    assert.equal(startError(0, { message: 'odd', code: undefined }).code, 'THREAD_FAILED');
  });
});
