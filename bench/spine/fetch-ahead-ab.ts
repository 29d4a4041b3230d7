/**
 * Fetch-ahead A/B (streams/fetch-ahead.ts): the worker (end-to-end.ts, `thaw run`'s wiring) with
 * fetchAhead off and on, interleaved in rounds on this shared machine, each run in its own group:
 *   drain    the pre-produced topic (events/s to lag 0), as the spine bench's end-to-end column
 *   latency  every event at a paced load (p50/p99, and the breakdown by phase of the last round)
 * Medians over the rounds.
 *
 *   node --import tsx bench/spine/fetch-ahead-ab.ts [--adapter fm-adagrad] [--events 100000] [--rate 13105]
 *        [--seconds 6] [--rounds 3] [--depth 1] [--no-drain]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createLogger } from '../../lib/log.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { DEFAULT_MAX_BATCH_MESSAGES } from '../../streams/batch-consumer.js';
import { formatNumber, markdownTable, positiveOption, quantile } from '../stats.js';
import { buildBenchAdapter, parseAdapterList, sideOf } from './adapters.js';
import { endToEndDrain, latencyAtLoads, type LatencyPoint } from './end-to-end.js';
import { benchModel, BenchResources, benchSource, preProduce, servicesFromEnv } from './fixtures.js';
import { renderBreakdown } from './report.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      adapter: { type: 'string', default: 'fm-adagrad' },
      events: { type: 'string', default: '100000' },
      rate: { type: 'string', default: '13105' },
      seconds: { type: 'string', default: '6' },
      rounds: { type: 'string', default: '3' },
      depth: { type: 'string', default: '1' },
      'no-drain': { type: 'boolean', default: false },
    },
  });
  const [name] = parseAdapterList(values.adapter);
  if (name === undefined) throw new Error('no adapter');
  const events = positiveOption('events', values.events);
  const rate = positiveOption('rate', values.rate, false);
  const seconds = positiveOption('seconds', values.seconds, false);
  const rounds = positiveOption('rounds', values.rounds);
  const depth = positiveOption('depth', values.depth);
  const log = createLogger((process.env.THAW_LOG_LEVEL as 'info' | undefined) ?? 'warn', { bench: 'fetch-ahead-ab' });
  const services = servicesFromEnv();
  const res = new BenchResources(services);
  const loadBefore = loadavg();
  const startedAt = new Date().toISOString();
  try {
    const { model } = await benchModel(20_000);
    const sample = [...syntheticStream(benchSource(20_000)).events()];
    const adapter = await buildBenchAdapter(name, model, sample);
    const side = sideOf(name);
    const topic = res.topic(`ab-${side}`);
    if (!values['no-drain']) await preProduce(services.kafka, topic, 4, events, log, side);
    const out = new Map<boolean, { drain: number[]; points: LatencyPoint[] }>([
      [false, { drain: [], points: [] }],
      [true, { drain: [], points: [] }],
    ]);
    for (let r = 0; r < rounds; r++) {
      for (const fetchAhead of [false, true]) {
        const o = out.get(fetchAhead);
        if (o === undefined) continue;
        const tag = `-r${r}${fetchAhead ? '-fa' : ''}`;
        const drained = values['no-drain'] ? undefined : await endToEndDrain(services, res, adapter, topic, events, DEFAULT_MAX_BATCH_MESSAGES, log, { pipelineDepth: depth, fetchAhead, tag });
        if (drained !== undefined) o.drain.push(drained.perSec);
        const [p] = await latencyAtLoads(services, res, adapter, [rate], seconds, DEFAULT_MAX_BATCH_MESSAGES, log, depth, fetchAhead, tag);
        if (p !== undefined) o.points.push(p);
        process.stderr.write(
          `${JSON.stringify({ round: r, fetchAhead, drainPerSec: drained === undefined ? undefined : Math.round(drained.perSec), p50Ms: p?.p50Ms, p99Ms: p?.p99Ms, loadavg: loadavg()[0] })}\n`,
        );
      }
    }
    adapter.dispose?.();
    const med = (xs: number[]): number => quantile(xs, 0.5);
    const rows = [...out].map(([fa, o]) => [
      String(fa),
      o.drain.map((x) => formatNumber(x)).join(', '),
      formatNumber(med(o.drain)),
      o.points.map((p) => `${p.p50Ms.toFixed(0)} / ${p.p99Ms.toFixed(0)}`).join(', '),
      med(o.points.map((p) => p.p50Ms)).toFixed(0),
      med(o.points.map((p) => p.p99Ms)).toFixed(0),
      formatNumber(med(o.points.map((p) => p.loadEventsPerSec))),
    ]);
    const la = (x: number[]): string => x.map((v) => v.toFixed(2)).join(', ');
    const last = [...out].map(([fa, o]) => ({
      adapter: `${name}, fetchAhead ${String(fa)}`,
      side,
      ceilings: { kafkaDecodeEventsPerSec: Number.NaN, redisEventsPerSec: Number.NaN, sinkRowsPerSec: Number.NaN },
      adaptAloneEventsPerSec: Number.NaN,
      endToEndEventsPerSec: rate,
      latency: o.points.map((p) => ({ share: 1, loadEventsPerSec: p.loadEventsPerSec, p50Ms: p.p50Ms, p99Ms: p.p99Ms, p999Ms: p.p999Ms, phases: p.phases })),
    }));
    process.stdout.write(
      [
        `## Fetch-ahead A/B: ${name}, ${formatNumber(events)} events drained, latency at ${formatNumber(rate)} events/s for ${seconds} s, pipelineDepth ${depth}, ${rounds} rounds interleaved`,
        '',
        `\`node --import tsx bench/spine/fetch-ahead-ab.ts ${process.argv.slice(2).join(' ')}\`, ${startedAt.slice(0, 16).replace('T', ' ')} UTC; load average (1, 5, 15 min) before ${la(loadBefore)}, after ${la(loadavg())} (2 cores, shared)`,
        '',
        markdownTable(['fetchAhead', 'drain ev/s per round', 'drain ev/s median', 'latency p50 / p99 ms per round', 'p50 median', 'p99 median', 'produced ev/s median'], rows),
        '',
        'By phase, every round (p50 / p99 / mean over the slowest 1 %, ms):',
        '',
        renderBreakdown(last),
        '',
      ].join('\n'),
    );
  } finally {
    await res.cleanup(log);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`fetch-ahead A/B failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
