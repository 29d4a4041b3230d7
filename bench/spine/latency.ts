/**
 * The spine bench's latency part alone, at given rates (no ceilings, no end-to-end drain): the same
 * worker (end-to-end.ts `latencyAtLoads`, `thaw run`'s wiring) on a live topic fed by the paced
 * producer, every event sampled, with its breakdown by phase (trace.ts). For iterating on latency
 * without the whole ~6 min spine run; the rates are typically 50 % of a spine run's end-to-end rate.
 *
 *   node --import tsx bench/spine/latency.ts --adapters fm-adagrad,emerg --rates 13105,1918 [--seconds 6]
 *        [--batch 5000] [--depth <worker pipelineDepth>] [--fetch-ahead true|false] [--repeat 1] [--json]
 *
 * `--rates` gives one rate (events/s) per adapter, in order; `--repeat` runs each rate that many times
 * in a row on the same worker (separate rows). Services from env as run.ts. Markdown on stdout
 * (with --json: the figures as JSON), progress on stderr.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { DEFAULT_WORKER_FETCH_AHEAD, DEFAULT_WORKER_PIPELINE_DEPTH } from '../../consumers/worker.js';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { DEFAULT_MAX_BATCH_MESSAGES } from '../../streams/batch-consumer.js';
import { formatNumber, markdownTable, positiveOption } from '../stats.js';
import { buildBenchAdapter, parseAdapterList, sideOf } from './adapters.js';
import { latencyAtLoads, type LatencyPoint } from './end-to-end.js';
import { benchModel, BenchResources, benchSource, servicesFromEnv } from './fixtures.js';
import { renderBreakdown, type AdapterFigures } from './report.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      adapters: { type: 'string', default: 'fm-adagrad,emerg' },
      rates: { type: 'string' },
      seconds: { type: 'string', default: '6' },
      batch: { type: 'string', default: String(DEFAULT_MAX_BATCH_MESSAGES) },
      repeat: { type: 'string', default: '1' },
      depth: { type: 'string' },
      'fetch-ahead': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const names = parseAdapterList(values.adapters);
  const rates = (values.rates ?? '').split(',').map((x) => Number(x.trim()));
  if (rates.length !== names.length || rates.some((r) => !(r > 0)))
    throw new ConfigError('rates', `one rate > 0 (events/s) per adapter (${names.length}), comma-separated, got "${values.rates ?? ''}"`);
  const seconds = positiveOption('seconds', values.seconds, false);
  const batch = positiveOption('batch', values.batch);
  const repeat = positiveOption('repeat', values.repeat);
  const depth = values.depth === undefined ? undefined : positiveOption('depth', values.depth);
  const fa = values['fetch-ahead'];
  if (fa !== undefined && fa !== 'true' && fa !== 'false') throw new ConfigError('fetch-ahead', `must be true or false, got "${fa}"`);
  const fetchAhead = fa === undefined ? undefined : fa === 'true';
  if (new Set(names).size !== names.length) throw new ConfigError('adapters', 'each adapter at most once (use --repeat for several runs)');
  const log = createLogger((process.env.THAW_LOG_LEVEL as 'info' | undefined) ?? 'info', { bench: 'spine-latency' });
  const services = servicesFromEnv();
  const res = new BenchResources(services);
  const loadBefore = loadavg();
  const startedAt = new Date().toISOString();
  try {
    const { model } = await benchModel(20_000);
    const sample = [...syntheticStream(benchSource(20_000)).events()];
    const adapters: AdapterFigures[] = [];
    const points: { adapter: string; points: LatencyPoint[] }[] = [];
    for (const [i, name] of names.entries()) {
      const rate = rates[i] ?? 0;
      const adapter = await buildBenchAdapter(name, model, sample);
      const pts = await latencyAtLoads(services, res, adapter, Array<number>(repeat).fill(rate), seconds, batch, log, depth, fetchAhead);
      adapter.dispose?.();
      points.push({ adapter: name, points: pts });
      adapters.push({
        adapter: name,
        side: sideOf(name),
        ceilings: { kafkaDecodeEventsPerSec: Number.NaN, redisEventsPerSec: Number.NaN, sinkRowsPerSec: Number.NaN },
        adaptAloneEventsPerSec: Number.NaN,
        // The asked rate stands for "end to end" so that share = 1 reads as "the asked rate".
        endToEndEventsPerSec: rate,
        latency: pts.map((p) => ({ share: 1, loadEventsPerSec: p.loadEventsPerSec, p50Ms: p.p50Ms, p99Ms: p.p99Ms, p999Ms: p.p999Ms, phases: p.phases })),
      });
    }
    const loadAfter = loadavg();
    if (values.json) {
      process.stdout.write(JSON.stringify({ startedAt, loadAverageBefore: loadBefore, loadAverageAfter: loadAfter, seconds, batch, adapters: points }, null, 2) + '\n');
      return;
    }
    const la = (x: number[]): string => x.map((v) => v.toFixed(2)).join(', ');
    const rows = points.flatMap((a) =>
      a.points.map((p) => [a.adapter, formatNumber(p.targetEventsPerSec), formatNumber(p.loadEventsPerSec), String(p.samples), p.p50Ms.toFixed(0), p.p99Ms.toFixed(0), p.p999Ms.toFixed(0)]),
    );
    process.stdout.write(
      [
        `## Spine latency at given rates, chunks of ≤ ${formatNumber(batch)}, pipelineDepth ${depth ?? DEFAULT_WORKER_PIPELINE_DEPTH}, fetchAhead ${String(fetchAhead ?? DEFAULT_WORKER_FETCH_AHEAD)}, ${seconds} s per rate`,
        '',
        `${startedAt.slice(0, 16).replace('T', ' ')} UTC; load average (1, 5, 15 min) before ${la(loadBefore)}, after ${la(loadAfter)} (2 cores, shared)`,
        '',
        markdownTable(['adapter', 'asked ev/s', 'produced ev/s', 'events', 'p50 ms', 'p99 ms', 'p99.9 ms'], rows),
        '',
        'Per phase: p50 / p99 / mean over the slowest 1 %, ms ("share" 100 % = the asked rate).',
        '',
        renderBreakdown(adapters),
        '',
      ].join('\n'),
    );
  } finally {
    await res.cleanup(log);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`spine latency bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
