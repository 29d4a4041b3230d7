/**
 * Streaming-spine benchmark: the item worker with `fm-adagrad`, end to end through the real Kafka,
 * Redis and ClickHouse, beside the ceiling of each piece measured in the same run (see README.md).
 *
 *   node --import tsx bench/spine/run.ts [--events 300000] [--batch 5000] [--rate 20000] [--seconds 15]
 *        [--train-prefix 20000] [--concurrency auto] [--out .thaw/bench/spine.json] [--no-latency] [--no-serial]
 *
 * Defaults are `thaw run`'s: batches of the BatchConsumer default (5000) and every partition handled
 * concurrently (`--concurrency auto`, = `--partitions-concurrency` unset). A second end-to-end run,
 * E1, handles one partition at a time (the old `thaw run`), for comparison; --no-serial skips it.
 *
 * Services from env (THAW_KAFKA, THAW_REDIS_URL, THAW_CLICKHOUSE_URL; `bash scripts/services.sh env`).
 * Markdown tables on stdout, progress as JSON lines on stderr, the result as JSON in --out.
 * Every topic, group, Redis key and table it creates has a unique name and is removed at the end.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createAdapter } from '../../adapters/registry.js';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { DEFAULT_MAX_BATCH_MESSAGES } from '../../streams/batch-consumer.js';
import { formatNumber, markdownTable } from '../stats.js';
import { ceilingAdapter, ceilingKafka, ceilingRedis, ceilingSink, distinctItems, type CeilingResult } from './ceilings.js';
import { endToEndDrain, latencyAtLoad, type DrainResult, type LatencyResult } from './end-to-end.js';
import { benchModel, BenchResources, preProduce, servicesFromEnv } from './fixtures.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PARTITIONS = 4;
/** Goals from the issue. */
const GOAL_EVENTS_PER_SEC = 20_000;
const GOAL_SHARE_OF_LOWEST = 0.7;

function positive(key: string, s: string, integer = true): number {
  const x = Number(s);
  if (!Number.isFinite(x) || x <= 0 || (integer && !Number.isInteger(x))) throw new ConfigError(key, `must be a positive ${integer ? 'integer' : 'number'}, got "${s}"`);
  return x;
}

function load(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');
}

export interface SpineReport {
  startedAt: string;
  loadAverageBefore: number[];
  loadAverageAfter: number[];
  config: { events: number; batch: number; partitions: number; rate: number; seconds: number; trainPrefix: number; adapter: string; concurrency: number | 'auto' };
  preProduceMs: number;
  trainMs: number;
  ceilings: CeilingResult[];
  endToEnd: DrainResult;
  /** The same drain with one partition at a time (the old `thaw run`); null with --no-serial or --concurrency 1. */
  endToEndSerial: DrainResult | null;
  lowestCeiling: { path: string; perSec: number };
  ratioToLowest: number;
  goals: { eventsPerSec: boolean; shareOfLowest: boolean };
  latency: LatencyResult | null;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '300000' },
      batch: { type: 'string', default: String(DEFAULT_MAX_BATCH_MESSAGES) },
      rate: { type: 'string', default: '20000' },
      seconds: { type: 'string', default: '15' },
      'train-prefix': { type: 'string', default: '20000' },
      concurrency: { type: 'string', default: 'auto' },
      'no-serial': { type: 'boolean', default: false },
      out: { type: 'string', default: '.thaw/bench/spine.json' },
      'no-latency': { type: 'boolean', default: false },
    },
  });
  const events = positive('events', values.events);
  const batch = positive('batch', values.batch);
  const rate = positive('rate', values.rate, false);
  const seconds = positive('seconds', values.seconds, false);
  const concurrency = values.concurrency === 'auto' ? undefined : positive('concurrency', values.concurrency);
  const trainPrefix = Number(values['train-prefix']);
  if (!Number.isInteger(trainPrefix) || trainPrefix < 0) throw new ConfigError('train-prefix', `must be an integer >= 0, got "${values['train-prefix']}"`);
  const outPath = resolve(ROOT, values.out);

  const log = createLogger((process.env.THAW_LOG_LEVEL as 'info' | undefined) ?? 'info', { bench: 'spine' });
  const services = servicesFromEnv();
  const res = new BenchResources(services);
  const loadBefore = loadavg();
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
  log.info('spine bench starting', { events, batch, rate, seconds, load: load(), kafka: services.kafka.brokers });

  try {
    const { model, trainMs } = await benchModel(trainPrefix);
    const adapter = createAdapter('fm-adagrad', 'item', model);
    log.info('shared FM ready', { trainMs: Math.round(trainMs), release: model.release });

    const topic = res.topic('drain');
    const preProduceMs = await preProduce(services.kafka, topic, PARTITIONS, events, log);
    log.info('topic pre-produced', { topic, events, ms: Math.round(preProduceMs) });

    const a = await ceilingKafka(services.kafka, topic, res.group('ceiling-a'), events, batch);
    log.info('ceiling A done', { perSec: Math.round(a.result.perSec) });
    const ids = distinctItems(a.batches);
    const b = await ceilingRedis(services, res, adapter, a.batches, ids);
    log.info('ceiling B done', { perSec: Math.round(b.perSec) });
    const c = await ceilingAdapter(adapter, a.batches);
    log.info('ceiling C done', { perSec: Math.round(c.perSec) });
    const d = await ceilingSink(services, res, a.batches, log);
    log.info('ceiling D done', { perSec: Math.round(d.perSec) });
    const ceilings = [a.result, b, c, d];

    const e2e = await endToEndDrain(services, res, adapter, topic, events, batch, log, concurrency);
    log.info('end to end done', { concurrency: e2e.concurrency, perSec: Math.round(e2e.perSec) });
    const e2eSerial = values['no-serial'] || e2e.concurrency === 1 ? null : await endToEndDrain(services, res, adapter, topic, events, batch, log, 1);
    if (e2eSerial !== null) log.info('end to end (one partition at a time) done', { perSec: Math.round(e2eSerial.perSec) });

    const latency = values['no-latency'] ? null : await latencyAtLoad(services, res, adapter, rate, seconds, batch, log);
    if (latency !== null) log.info('latency run done', { p50: latency.p50Ms, p99: latency.p99Ms });

    const lowest = ceilings.reduce((m, x) => (x.perSec < m.perSec ? x : m));
    const ratioToLowest = e2e.perSec / lowest.perSec;
    const report: SpineReport = {
      startedAt: new Date().toISOString(),
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadavg(),
      config: { events, batch, partitions: PARTITIONS, rate, seconds, trainPrefix, adapter: adapter.name, concurrency: concurrency ?? 'auto' },
      preProduceMs,
      trainMs,
      ceilings,
      endToEnd: e2e,
      endToEndSerial: e2eSerial,
      lowestCeiling: { path: lowest.path, perSec: lowest.perSec },
      ratioToLowest,
      goals: { eventsPerSec: e2e.perSec >= GOAL_EVENTS_PER_SEC, shareOfLowest: ratioToLowest >= GOAL_SHARE_OF_LOWEST },
      latency,
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

export function renderReport(r: SpineReport, outPath: string): string {
  const e2e = r.endToEnd;
  const rows: (string | number)[][] = r.ceilings.map((c) => [c.path, `${formatNumber(c.perSec)} ${c.unit}/s`, pct(e2e.perSec / c.perSec)]);
  rows.push([`E end to end (item worker as \`thaw run\`, fm-adagrad, ${e2e.concurrency} partitions concurrently)`, `${formatNumber(e2e.perSec)} events/s`, '—']);
  rows.push(['end to end / lowest ceiling', `lowest: ${r.lowestCeiling.path}`, pct(r.ratioToLowest)]);
  const es = r.endToEndSerial;
  if (es !== null) {
    rows.push(['E1 end to end, one partition at a time (old `thaw run`)', `${formatNumber(es.perSec)} events/s`, '—']);
    rows.push(['E1 / lowest ceiling', `lowest: ${r.lowestCeiling.path}`, pct(es.perSec / r.lowestCeiling.perSec)]);
  }
  const runs = es === null ? [e2e] : [e2e, es];
  const splitRow = (label: string, f: (d: DrainResult) => number): (string | number)[] => [label, ...runs.flatMap((d) => [f(d), pct(f(d) / d.ms)])];
  const split = markdownTable(
    ['end-to-end time (summed over batches)', ...runs.flatMap((d) => [`ms (c=${d.concurrency})`, 'of wall'])],
    [
      splitRow('redis getMany (through the cache tier)', (d) => d.split.redisGetMs),
      splitRow('clickhouse sink write', (d) => d.split.sinkMs),
      splitRow('redis putMany (Lua CAS)', (d) => d.split.redisPutMs),
      splitRow('decode + validate + predict/adapt + rows (rest of the handler)', (d) => d.split.decodeComputeMs),
      splitRow('kafka fetch / commit / idle (wall − handler time)', (d) => d.split.kafkaOtherMs),
      splitRow('wall: first batch to lag 0', (d) => d.ms),
      [`batches / clickhouse inserts (group commit)`, ...runs.flatMap((d) => [`${d.batches} / ${d.sinkInserts}`, ''])],
    ],
  );
  const lines = [
    `## Streaming spine: item worker, fm-adagrad, ${formatNumber(r.config.events)} events, ${r.config.partitions} partitions, batches of ≤ ${r.config.batch}`,
    '',
    `load average (1, 5, 15 min): before ${r.loadAverageBefore.map((x) => x.toFixed(2)).join(', ')}; after ${r.loadAverageAfter.map((x) => x.toFixed(2)).join(', ')} (2 cores, shared machine)`,
    '',
    markdownTable(['path', 'throughput', 'end to end / path'], rows),
    '',
    `Goal ≥ ${formatNumber(GOAL_EVENTS_PER_SEC)} events/s end to end: ${r.goals.eventsPerSec ? 'MET' : 'NOT MET'} (${formatNumber(e2e.perSec)}). ` +
      `Goal ≥ ${pct(GOAL_SHARE_OF_LOWEST)} of the lowest ceiling: ${r.goals.shareOfLowest ? 'MET' : 'NOT MET'} (${pct(r.ratioToLowest)}).`,
    '',
    split,
    '',
    `cache tier: ${formatNumber(e2e.cache.hits)} hits, ${formatNumber(e2e.cache.misses)} misses; batches ${e2e.batches}; worker processed ${e2e.worker.processed}, dead letters ${e2e.worker.deadLetters}`,
  ];
  if (r.latency !== null) {
    const l = r.latency;
    lines.push(
      '',
      `### Event-to-state latency at load (target ${formatNumber(l.targetRate)} events/s for ${l.seconds} s)`,
      '',
      markdownTable(
        ['produced', 'produced events/s', 'consumed events/s', 'samples', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
        [[l.produced, l.producedPerSec, l.consumedPerSec, l.samples, l.p50Ms, l.p90Ms, l.p99Ms, l.maxMs]],
      ),
      '',
      'Sample: for each state a putMany wrote, (time the putMany resolved) − (event time of that entity\'s last event in the batch).',
    );
  }
  lines.push('', `JSON: ${outPath}`);
  return lines.join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`spine bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
