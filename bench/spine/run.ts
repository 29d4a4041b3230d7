/**
 * Streaming-spine benchmark: for each adapter, a worker end to end through the real Kafka, Redis
 * and ClickHouse (Kafka → decode → adapter → Redis → ClickHouse), beside the adaptation step alone on
 * in-memory batches and the ceiling of each spine piece, all measured in one run (see README.md).
 *
 *   node --import tsx bench/spine/run.ts [--events 200000] [--batch 5000] [--adapters none,fm-adagrad,emerg,coldnas,fixed-adaptive]
 *        [--compare none,fm-adagrad] [--compare-depth 2] [--e2e-seconds 12] [--rate 20000] [--seconds 8] [--train-prefix 20000]
 *        [--concurrency auto] [--out .thaw/bench/spine.json] [--no-latency]
 *
 * Defaults are `thaw run`'s: batches of the BatchConsumer default (5000), every partition handled
 * concurrently, the worker's default pipelineDepth (1: one chunk of a partition at a time). The
 * `--compare` adapters are also run with pipelineDepth `--compare-depth` (pipelining within a partition).
 *
 * Services from env (THAW_KAFKA, THAW_REDIS_URL, THAW_CLICKHOUSE_URL; `bash scripts/services.sh env`).
 * Markdown tables on stdout, progress as JSON lines on stderr, the result as JSON in --out.
 * Every topic, group, Redis key and table it creates has a unique name and is removed at the end.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_WORKER_PIPELINE_DEPTH } from '../../consumers/worker.js';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import type { Side } from '../../schemas/types.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { DEFAULT_MAX_BATCH_MESSAGES } from '../../streams/batch-consumer.js';
import { formatNumber, markdownTable, positiveOption } from '../stats.js';
import { adaptAlone, buildBenchAdapter, parseAdapterList, sideOf, type AdaptAloneResult, type BenchAdapterName } from './adapters.js';
import { ceilingKafka, ceilingRedis, ceilingSink, distinctEntities, type CeilingResult, type RecordedBatch } from './ceilings.js';
import { endToEndDrain, latencyAtLoad, type DrainResult, type LatencyResult } from './end-to-end.js';
import { benchModel, BenchResources, benchSource, preProduce, servicesFromEnv } from './fixtures.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PARTITIONS = 4;
/** Goals from the issue and the brief (section 5). */
const GOAL_SHARE_OF_LOWEST = 0.7;
const GOAL_P99_MS = 100;
/** The paced load of the latency run: this share of the adapter's end-to-end rate, at most --rate. */
const PACED_SHARE = 0.5;

export interface AdapterReport {
  adapter: string;
  side: Side;
  stateFloats: number;
  adaptAlone: AdaptAloneResult;
  redis: CeilingResult;
  endToEnd: DrainResult;
  /** pipelineDepth --compare-depth; null unless the adapter is in --compare. */
  endToEndCompare: DrainResult | null;
  lowestCeiling: { path: string; perSec: number };
  ratioToLowest: number;
  latency: LatencyResult | null;
}

export interface SpineReport {
  startedAt: string;
  loadAverageBefore: number[];
  loadAverageAfter: number[];
  wallMs: number;
  config: {
    events: number;
    batch: number;
    partitions: number;
    rate: number;
    seconds: number;
    e2eSeconds: number;
    trainPrefix: number;
    concurrency: number | 'auto';
    pipelineDepth: number;
    compareDepth: number;
  };
  /** A per side (the by-item and the by-user topic) and D. */
  ceilings: CeilingResult[];
  adapters: AdapterReport[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '200000' },
      batch: { type: 'string', default: String(DEFAULT_MAX_BATCH_MESSAGES) },
      adapters: { type: 'string', default: 'none,fm-adagrad,emerg,coldnas,fixed-adaptive' },
      compare: { type: 'string', default: 'none,fm-adagrad' },
      'compare-depth': { type: 'string', default: '2' },
      'e2e-seconds': { type: 'string', default: '12' },
      rate: { type: 'string', default: '20000' },
      seconds: { type: 'string', default: '8' },
      'train-prefix': { type: 'string', default: '20000' },
      concurrency: { type: 'string', default: 'auto' },
      out: { type: 'string', default: '.thaw/bench/spine.json' },
      'no-latency': { type: 'boolean', default: false },
    },
  });
  const events = positiveOption('events', values.events);
  const batch = positiveOption('batch', values.batch);
  const rate = positiveOption('rate', values.rate, false);
  const seconds = positiveOption('seconds', values.seconds, false);
  const e2eSeconds = positiveOption('e2e-seconds', values['e2e-seconds'], false);
  const concurrency = values.concurrency === 'auto' ? undefined : positiveOption('concurrency', values.concurrency);
  const names = parseAdapterList(values.adapters);
  const compare = new Set(values.compare === '' ? [] : parseAdapterList(values.compare));
  const compareDepth = positiveOption('compare-depth', values['compare-depth']);
  const trainPrefix = Number(values['train-prefix']);
  if (!Number.isInteger(trainPrefix) || trainPrefix < 0) throw new ConfigError('train-prefix', `must be an integer >= 0, got "${values['train-prefix']}"`);
  const outPath = resolve(ROOT, values.out);

  const log = createLogger((process.env.THAW_LOG_LEVEL as 'info' | undefined) ?? 'info', { bench: 'spine' });
  const services = servicesFromEnv();
  const res = new BenchResources(services);
  const loadBefore = loadavg();
  const t0 = performance.now();
  // Ctrl-C still removes what the run created (consumers of a killed run may keep their group
  // alive for a session timeout; that group deletion is then logged as failed).
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log.warn('interrupted: cleaning up', { signal });
    void res.cleanup(log).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  log.info('spine bench starting', { events, batch, adapters: names, kafka: services.kafka.brokers });

  try {
    const { model, trainMs } = await benchModel(trainPrefix);
    log.info('shared FM ready', { trainMs: Math.round(trainMs), release: model.release });
    const stream = [...syntheticStream(benchSource(events)).events()];

    // One topic per side with the same events, keyed by that side's entity; A on each.
    const sides = [...new Set(names.map(sideOf))];
    const topics = new Map<Side, { topic: string; a: CeilingResult; batches: RecordedBatch[] }>();
    for (const side of sides) {
      const topic = res.topic(`drain-by-${side}`);
      const ms = await preProduce(services.kafka, topic, PARTITIONS, events, log, side);
      log.info('topic pre-produced', { topic, events, ms: Math.round(ms) });
      const a = await ceilingKafka(services.kafka, topic, res.group(`ceiling-a-${side}`), events, batch, `by ${side}`);
      log.info('ceiling A done', { side, perSec: Math.round(a.result.perSec) });
      topics.set(side, { topic, a: a.result, batches: a.batches });
    }
    const first = topics.values().next().value as { batches: RecordedBatch[] };
    const d = await ceilingSink(services, res, first.batches, log);
    log.info('ceiling D done', { perSec: Math.round(d.perSec) });

    const reports: AdapterReport[] = [];
    for (const name of names) reports.push(await benchAdapter(name));

    async function benchAdapter(name: BenchAdapterName): Promise<AdapterReport> {
      const side = sideOf(name);
      const t = topics.get(side) as { topic: string; a: CeilingResult; batches: RecordedBatch[] };
      const adapter = await buildBenchAdapter(name, model, stream);
      const alone = adaptAlone(adapter, stream);
      log.info('adaptation alone done', { adapter: name, perSec: Math.round(alone.perSec) });
      const b = await ceilingRedis(services, res, adapter, t.batches, distinctEntities(t.batches, side));
      log.info('ceiling B done', { adapter: name, perSec: Math.round(b.perSec) });
      // Slow adapters: stop after about e2eSeconds of work (at least two chunks per partition).
      const limit = Math.min(events, Math.max(2 * PARTITIONS * batch, Math.round(alone.perSec * e2eSeconds)));
      const e2e = await endToEndDrain(services, res, adapter, t.topic, events, batch, log, { ...(concurrency === undefined ? {} : { concurrency }), limit });
      log.info('end to end done', { adapter: name, pipelineDepth: e2e.pipelineDepth, perSec: Math.round(e2e.perSec) });
      const e2eCompare = compare.has(name)
        ? await endToEndDrain(services, res, adapter, t.topic, events, batch, log, { ...(concurrency === undefined ? {} : { concurrency }), limit, pipelineDepth: compareDepth })
        : null;
      if (e2eCompare !== null) log.info('end to end (compare depth) done', { adapter: name, pipelineDepth: compareDepth, perSec: Math.round(e2eCompare.perSec) });
      const paced = Math.min(rate, Math.max(500, Math.round(PACED_SHARE * e2e.perSec)));
      const latency = values['no-latency'] ? null : await latencyAtLoad(services, res, adapter, paced, seconds, batch, log);
      if (latency !== null) log.info('latency run done', { adapter: name, rate: paced, p50: latency.p50Ms, p99: latency.p99Ms });
      const lowest = [t.a, b, d].reduce((m, x) => (x.perSec < m.perSec ? x : m));
      return {
        adapter: name,
        side,
        stateFloats: adapter.stateSize,
        adaptAlone: alone,
        redis: b,
        endToEnd: e2e,
        endToEndCompare: e2eCompare,
        lowestCeiling: { path: lowest.path, perSec: lowest.perSec },
        ratioToLowest: e2e.perSec / lowest.perSec,
        latency,
      };
    }

    const report: SpineReport = {
      startedAt: new Date().toISOString(),
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg(),
      wallMs: performance.now() - t0,
      config: { events, batch, partitions: PARTITIONS, rate, seconds, e2eSeconds, trainPrefix, concurrency: concurrency ?? 'auto', pipelineDepth: DEFAULT_WORKER_PIPELINE_DEPTH, compareDepth },
      ceilings: [...[...topics.values()].map((x) => x.a), d],
      adapters: reports,
    };
    await mkdir(dirname(outPath), { recursive: true });
    await writeFile(outPath, JSON.stringify(report, null, 2) + '\n');
    process.stdout.write(renderReport(report, outPath) + '\n');
  } finally {
    await res.cleanup(log);
  }
}

function pct(x: number): string {
  return `${(100 * x).toFixed(0)}%`;
}

function short(path: string): string {
  return path.split(' ')[0] ?? path;
}

export function renderReport(r: SpineReport, outPath: string): string {
  const c = r.config;
  const main = markdownTable(
    ['adapter', 'side', 'adapt alone ev/s', `end to end ev/s (depth ${c.pipelineDepth})`, `end to end ev/s (depth ${c.compareDepth})`, 'lowest ceiling ev/s', 'e2e / lowest', 'paced ev/s', 'p50 ms', 'p99 ms'],
    r.adapters.map((a) => [
      a.adapter,
      a.side,
      formatNumber(a.adaptAlone.perSec),
      `${formatNumber(a.endToEnd.perSec)}${a.endToEnd.events < c.events ? ` (${formatNumber(a.endToEnd.events)} ev)` : ''}`,
      a.endToEndCompare === null ? '—' : formatNumber(a.endToEndCompare.perSec),
      `${formatNumber(a.lowestCeiling.perSec)} (${short(a.lowestCeiling.path)})`,
      pct(a.ratioToLowest),
      a.latency === null ? '—' : formatNumber(a.latency.consumedPerSec),
      a.latency === null ? '—' : a.latency.p50Ms.toFixed(0),
      a.latency === null ? '—' : a.latency.p99Ms.toFixed(0),
    ]),
  );
  const ceilings = markdownTable(
    ['ceiling', 'throughput'],
    [...r.ceilings.map((x) => [x.path, `${formatNumber(x.perSec)} ${x.unit}/s`]), ...r.adapters.map((a) => [a.redis.path, `${formatNumber(a.redis.perSec)} events/s`])],
  );
  const met = r.adapters.filter((a) => a.ratioToLowest >= GOAL_SHARE_OF_LOWEST).map((a) => a.adapter);
  const p99met = r.adapters.filter((a) => a.latency !== null && a.latency.p99Ms < GOAL_P99_MS).map((a) => a.adapter);
  const lines = [
    `## Streaming spine: ${formatNumber(c.events)} events, ${c.partitions} partitions, batches of ≤ ${c.batch}, worker pipelineDepth ${c.pipelineDepth}`,
    '',
    `load average (1, 5, 15 min): before ${r.loadAverageBefore.map((x) => x.toFixed(2)).join(', ')}; after ${r.loadAverageAfter.map((x) => x.toFixed(2)).join(', ')} (2 cores, shared machine); wall ${(r.wallMs / 1000).toFixed(0)} s`,
    '',
    main,
    '',
    ceilings,
    '',
    `Goal ≥ ${pct(GOAL_SHARE_OF_LOWEST)} of the lowest ceiling: met by ${met.length === 0 ? 'none' : met.join(', ')}. ` +
      `Goal p99 < ${GOAL_P99_MS} ms at the paced load: met by ${p99met.length === 0 ? 'none' : p99met.join(', ')}.`,
    '',
    markdownTable(
      ['adapter', 'depth', 'events', 'batches', 'clickhouse inserts', 'cache hits / misses', 'redis get ms', 'sink write ms', 'redis put ms', 'wall ms'],
      r.adapters.flatMap((a) =>
        [a.endToEnd, ...(a.endToEndCompare === null ? [] : [a.endToEndCompare])].map((e) => [
          a.adapter,
          String(e.pipelineDepth),
          formatNumber(e.events),
          String(e.batches),
          String(e.sinkInserts),
          `${e.cache.hits} / ${e.cache.misses}`,
          e.split.redisGetMs.toFixed(0),
          e.split.sinkMs.toFixed(0),
          e.split.redisPutMs.toFixed(0),
          e.ms.toFixed(0),
        ]),
      ),
    ),
    '',
    `JSON: ${outPath}`,
  ];
  return lines.join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`spine bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
