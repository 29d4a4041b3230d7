import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { after, describe, it } from 'node:test';
import { WorkerMetrics } from '../../../consumers/metrics.js';
import type { BatchResult } from '../../../consumers/processor.js';
import { ConfigError } from '../../../lib/errors.js';

/** Value of the sample `name` whose labels are exactly `labels` (label order does not matter). */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels)
    .sort()
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const got = (m[2] ?? '')
      .split(',')
      .filter((x) => x !== '')
      .sort()
      .join(',');
    if (got === want) return Number(m[3]);
  }
  return undefined;
}

function result(processed: number, skipped: number): BatchResult {
  return {
    processed,
    skipped,
    entities: 1,
    newEntities: 0,
    waves: 1,
    originMismatches: 0,
    statesWritten: 1,
    statesRefused: 0,
    maxEventMs: 1_700_000_000_000,
    crossRead: 0,
    crossRefused: 0,
    timings: { loadMs: 2, computeMs: 3, sinkMs: 4, storeMs: 1, totalMs: 10 },
  };
}

describe('WorkerMetrics', () => {
  const opened: WorkerMetrics[] = [];
  after(async () => {
    for (const m of opened) await m.close();
  });

  it('exports the process metrics a soak watches (resident memory, heap), unless turned off', async () => {
    const on = new WorkerMetrics({ side: 'item', adapter: 'fm-adagrad', namespace: 'live', port: 0 });
    const off = new WorkerMetrics({ side: 'item', adapter: 'fm-adagrad', namespace: 'live', port: 0, processMetrics: false });
    opened.push(on, off);
    const text = await on.registry.metrics();
    assert.ok((sample(text, 'thaw_worker_process_resident_memory_bytes', { namespace: 'live' }) ?? 0) > 0, 'resident memory');
    assert.ok((sample(text, 'thaw_worker_nodejs_heap_size_used_bytes', { namespace: 'live' }) ?? 0) > 0, 'heap used');
    assert.equal(sample(await off.registry.metrics(), 'thaw_worker_nodejs_heap_size_used_bytes', { namespace: 'live' }), undefined);
  });

  it('counts events by outcome, dead letters by reason, and exposes release info and age', async () => {
    let now = 1_000_000;
    const m = new WorkerMetrics({ side: 'item', adapter: 'fm-adagrad', namespace: 'live', port: 0, clock: () => now });
    m.recordBatch(result(10, 2));
    m.recordBatch(result(5, 0));
    m.recordDeadLetter('DECODE_FAILED');
    m.recordDeadLetter('VALIDATION_FAILED');
    m.recordDeadLetter('DECODE_FAILED');
    m.setRelease('r-2026-01', 1_000_000 - 90_000);
    m.setLag(42);
    now += 10_000;
    const text = await m.text();
    const has = (name: string, labels: Record<string, string>, value: number): void => assert.equal(sample(text, name, labels), value, `${name} ${JSON.stringify(labels)}\n${text}`);
    has('thaw_events_total', { side: 'item', adapter: 'fm-adagrad', outcome: 'processed', namespace: 'live' }, 15);
    has('thaw_events_total', { side: 'item', adapter: 'fm-adagrad', outcome: 'skipped', namespace: 'live' }, 2);
    has('thaw_events_total', { side: 'item', adapter: 'fm-adagrad', outcome: 'dead_letter', namespace: 'live' }, 3);
    has('thaw_dead_letters_total', { reason: 'DECODE_FAILED', namespace: 'live' }, 2);
    has('thaw_release_info', { release: 'r-2026-01', namespace: 'live' }, 1);
    has('thaw_release_age_seconds', { namespace: 'live' }, 100);
    has('thaw_consumer_lag', { namespace: 'live' }, 42);
    has('thaw_batch_seconds_count', { namespace: 'live' }, 2);
    has('thaw_batch_phase_seconds_count', { phase: 'sink', namespace: 'live' }, 2);
    has('thaw_last_event_timestamp_seconds', { namespace: 'live' }, 1700000000);

    m.setRelease('r-2026-02');
    const text2 = await m.text();
    assert.ok(!text2.includes('r-2026-01'), 'old release label removed');
    assert.ok(Number.isNaN(sample(text2, 'thaw_release_age_seconds', { namespace: 'live' })), 'age NaN when unknown');
  });

  it('serves /metrics and /healthz over HTTP', async () => {
    const m = new WorkerMetrics({ side: 'user', adapter: 'none', namespace: 'live' });
    opened.push(m);
    let healthy = true;
    const port = await m.listen(() => healthy, 0);
    assert.ok(port > 0);
    m.recordBatch(result(3, 0));
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    assert.equal(sample(await res.text(), 'thaw_events_total', { side: 'user', adapter: 'none', outcome: 'processed', namespace: 'live' }), 3);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    healthy = false;
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 503);
    assert.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
    await m.close();
    await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`));
  });

  it('binds any free port on loopback with port 0 (a second worker on the host), and says what to do when a port is taken', async () => {
    const a = new WorkerMetrics({ side: 'item', adapter: 'none', namespace: 'live', port: 0 });
    const b = new WorkerMetrics({ side: 'item', adapter: 'none', namespace: 'live', port: 0 });
    opened.push(a, b);
    const pa = await a.listen();
    const pb = await b.listen();
    assert.ok(pa > 0 && pb > 0 && pa !== pb);
    assert.equal((await fetch(`http://127.0.0.1:${pa}/healthz`)).status, 200);
    // Loopback by default: the endpoint is not on the host's other interfaces.
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal);
    if (external !== undefined) await assert.rejects(fetch(`http://${external.address}:${pa}/healthz`));
    const taken = new WorkerMetrics({ side: 'item', adapter: 'none', namespace: 'live', port: pa });
    opened.push(taken);
    await assert.rejects(taken.listen(), (e: unknown) => e instanceof ConfigError && e.key === 'metricsPort' && /in use.*--metrics-port 0/.test(e.message));
  });

  it('polls the lag source, surviving failures', async () => {
    const m = new WorkerMetrics({ side: 'item', adapter: 'none', namespace: 'live', lagIntervalMs: 20 });
    opened.push(m);
    const answers: (number | Error)[] = [7, new Error('broker away'), 3];
    let calls = 0;
    m.pollLag(() => {
      const a = answers[Math.min(calls++, answers.length - 1)] as number | Error;
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
    });
    await new Promise((r) => setTimeout(r, 120));
    await m.close();
    assert.ok(calls >= 3);
    assert.equal(sample(await m.text(), 'thaw_consumer_lag', { namespace: 'live' }), 3);
  });

  it('rejects bad options naming the key', () => {
    assert.throws(
      () => new WorkerMetrics({ side: 'item', adapter: 'x', namespace: 'live', port: 70000 }),
      (e: unknown) => e instanceof ConfigError && e.key === 'metrics.port',
    );
    assert.throws(
      () => new WorkerMetrics({ side: 'item', adapter: 'x', namespace: 'live', lagIntervalMs: 0 }),
      (e: unknown) => e instanceof ConfigError && e.key === 'metrics.lagIntervalMs',
    );
  });
});
