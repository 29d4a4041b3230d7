import { test } from 'node:test';
import assert from 'node:assert/strict';
import { histogramDelta, histogramQuantile, parsePrometheusText, snapshotOf } from '../../../dashboard/prometheus.js';
import { metricsUrl } from '../../../dashboard/targets.js';
import { WorkerMetrics } from '../../../consumers/metrics.js';

void test('parsePrometheusText: labels with escapes, special values, comments; bad lines throw DATA_FORMAT', () => {
  const samples = parsePrometheusText(['# HELP x help', '# TYPE x counter', 'x{a="1",b="q\\"uo\\\\te\\nnl"} 3', 'y NaN', 'z{le="+Inf"} +Inf 1700000000000', 'w -Inf', ''].join('\n'));
  assert.deepEqual(samples[0], { name: 'x', labels: { a: '1', b: 'q"uo\\te\nnl' }, value: 3 });
  assert.ok(Number.isNaN(samples[1]?.value));
  assert.equal(samples[2]?.value, Infinity);
  assert.equal(samples[3]?.value, -Infinity);
  assert.throws(() => parsePrometheusText('x{a=1} 2'), { code: 'DATA_FORMAT' });
  assert.throws(() => parsePrometheusText('x abc'), { code: 'DATA_FORMAT' });
});

void test('snapshotOf a real worker registry: processed events, dead letters, lag, release, labels, batch quantiles', async () => {
  const m = new WorkerMetrics({ side: 'user', adapter: 'coldnas', namespace: 'live', port: 0, processMetrics: false, clock: () => 10_000 });
  m.setRelease('coldnas/v3', 4_000);
  m.setLag(7);
  m.recordDeadLetter('DECODE_FAILED');
  const timings = (totalMs: number): { loadMs: number; computeMs: number; sinkMs: number; storeMs: number; totalMs: number } => ({ loadMs: 0, computeMs: totalMs, sinkMs: 0, storeMs: 0, totalMs });
  const batch = { skipped: 0, entities: 1, newEntities: 0, waves: 1, originMismatches: 0, statesWritten: 1, statesRefused: 0, maxEventMs: 0, crossRead: 0, crossRefused: 0 };
  for (let i = 0; i < 99; i++) m.recordBatch({ ...batch, processed: 10, timings: timings(3) });
  m.recordBatch({ ...batch, processed: 10, timings: timings(400) });
  const before = snapshotOf(parsePrometheusText(await m.text()));
  assert.equal(before.kind, 'worker');
  assert.equal(before.count, 1000);
  assert.equal(before.deadLetters, 1);
  assert.equal(before.lag, 7);
  assert.equal(before.release, 'coldnas/v3');
  assert.equal(before.releaseAgeSec, 6);
  assert.deepEqual([before.namespace, before.side, before.adapter], ['live', 'user', 'coldnas']);
  const h = before.latency;
  assert.ok(h);
  // 99 batches of 3 ms in (2.5, 5] ms, one of 400 ms in (250, 500] ms.
  const p50 = histogramQuantile(h, 0.5) ?? NaN;
  assert.ok(p50 > 0.0025 && p50 <= 0.005, String(p50));
  const p999 = histogramQuantile(h, 0.999) ?? NaN;
  assert.ok(p999 > 0.25 && p999 <= 0.5, String(p999));
  // The interval's histogram: only the batches since the first scrape.
  m.recordBatch({ ...batch, processed: 10, timings: timings(40) });
  const after = snapshotOf(parsePrometheusText(await m.text()));
  assert.ok(after.latency);
  const delta = histogramDelta(after.latency, h);
  assert.equal(delta.count, 1);
  const only = histogramQuantile(delta, 0.5) ?? NaN;
  assert.ok(only > 0.025 && only <= 0.05, String(only));
  assert.equal(histogramQuantile({ le: [1, Infinity], cumulative: [0, 0], count: 0 }, 0.5), undefined);
  await m.close();
});

void test('metricsUrl: /metrics added to a bare address, other paths kept', () => {
  assert.equal(metricsUrl('http://127.0.0.1:9464'), 'http://127.0.0.1:9464/metrics');
  assert.equal(metricsUrl('http://h:1/custom/path'), 'http://h:1/custom/path');
});
