/**
 * Streaming-spine benchmark: for each adapter, the worker end to end through the real Kafka, Redis
 * and ClickHouse, beside the ceiling of each spine piece and the adaptation alone, every one measured
 * on the same full stream with the worker's own code path, parallelism and chunk shapes
 * (ceilings.ts), so that end to end can never exceed a ceiling: the run checks it and names the
 * figure that is wrong if it does. Then event latency at 25, 50 and 75 % of the end-to-end rate.
 *
 *   node --import tsx bench/spine/run.ts [--events 200000] [--batch 5000] [--adapters none,fm-adagrad,emerg,coldnas,fixed-adaptive]
 *        [--loads 0.25,0.5,0.75] [--seconds 6] [--train-prefix 20000] [--concurrency auto] [--no-latency]
 *        [--depth <worker pipelineDepth>] [--fetch-ahead true|false]
 *        [--json] [--out .thaw/bench/spine.json]
 *
 * Defaults are `thaw run`'s: chunks of the BatchConsumer default (5000), every partition handled
 * concurrently, the worker's default pipelineDepth and fetchAhead.
 *
 * Services from env (THAW_KAFKA, THAW_REDIS_URL, THAW_CLICKHOUSE_URL; `bash scripts/services.sh env`).
 * Markdown on stdout (with --json: the raw figures as JSON instead), progress as JSON lines on
 * stderr, the full result (figures and details) as JSON in --out. Every topic, group, Redis key and
 * table it creates has a unique name and is removed at the end.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_WORKER_FETCH_AHEAD, DEFAULT_WORKER_PIPELINE_DEPTH } from '../../consumers/worker.js';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import type { Side } from '../../schemas/types.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { DEFAULT_MAX_BATCH_MESSAGES } from '../../streams/batch-consumer.js';
import { positiveOption } from '../stats.js';
import { buildBenchAdapter, parseAdapterList, sideOf } from './adapters.js';
import { ceilingAdapt, ceilingKafka, ceilingRedis, ceilingSink, decodeBatches, shapeOf, type CeilingResult, type DecodedBatch } from './ceilings.js';
import { endToEndDrain, latencyAtLoads } from './end-to-end.js';
import { benchModel, BenchResources, benchSource, preProduce, servicesFromEnv } from './fixtures.js';
import { renderReport, type AdapterFigures, type SpineFigures, type SpineReport } from './report.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PARTITIONS = 4;
/** Events the neural adapters' layouts are inferred from (adapters.ts uses at most 20,000). */
const LAYOUT_SAMPLE = 20_000;
function parseLoads(s: string): number[] {
  const loads = s.split(',').map((x) => Number(x.trim()));
  if (loads.length === 0 || loads.some((x) => !(x > 0 && x <= 1))) throw new ConfigError('loads', `must be shares of the end-to-end rate in (0, 1], comma-separated, got "${s}"`);
  return loads;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const { values } = parseArgs({
    args: argv,
    options: {
      events: { type: 'string', default: '200000' },
      batch: { type: 'string', default: String(DEFAULT_MAX_BATCH_MESSAGES) },
      adapters: { type: 'string', default: 'none,fm-adagrad,emerg,coldnas,fixed-adaptive' },
      loads: { type: 'string', default: '0.25,0.5,0.75' },
      seconds: { type: 'string', default: '6' },
      'train-prefix': { type: 'string', default: '20000' },
      concurrency: { type: 'string', default: 'auto' },
      out: { type: 'string', default: '.thaw/bench/spine.json' },
      'no-latency': { type: 'boolean', default: false },
      depth: { type: 'string', default: String(DEFAULT_WORKER_PIPELINE_DEPTH) },
      'fetch-ahead': { type: 'string', default: String(DEFAULT_WORKER_FETCH_AHEAD) },
      json: { type: 'boolean', default: false },
    },
  });
  const events = positiveOption('events', values.events);
  const batch = positiveOption('batch', values.batch);
  const seconds = positiveOption('seconds', values.seconds, false);
  const loads = parseLoads(values.loads);
  const concurrencyOpt = values.concurrency === 'auto' ? undefined : positiveOption('concurrency', values.concurrency);
  const names = parseAdapterList(values.adapters);
  const depth = positiveOption('depth', values.depth);
  if (values['fetch-ahead'] !== 'true' && values['fetch-ahead'] !== 'false') throw new ConfigError('fetch-ahead', `must be true or false, got "${values['fetch-ahead']}"`);
  const fetchAhead = values['fetch-ahead'] === 'true';
  const trainPrefix = Number(values['train-prefix']);
  if (!Number.isInteger(trainPrefix) || trainPrefix < 0) throw new ConfigError('train-prefix', `must be an integer >= 0, got "${values['train-prefix']}"`);
  const outPath = resolve(ROOT, values.out);
  const benchArgs = argv.filter((a) => a !== '--json');
  const command = `npm run bench -- --only spine${values.json ? ' --json' : ''}${benchArgs.length === 0 ? '' : ` -- ${benchArgs.join(' ')}`}`;

  const log = createLogger((process.env.THAW_LOG_LEVEL as 'info' | undefined) ?? 'info', { bench: 'spine' });
  const services = servicesFromEnv();
  const res = new BenchResources(services);
  const loadBefore = loadavg();
  const startedAt = new Date().toISOString();
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
    // The neural adapters infer their event layout from a prefix of the stream (adapters.ts).
    const sample = [...syntheticStream(benchSource(Math.min(events, LAYOUT_SAMPLE))).events()];

    // One topic per side with the same events, keyed by that side's entity. Kafka + decode is timed
    // on each first, with nothing else in memory; then each topic is drained again (untimed, in
    // another group) to record its chunks, which the other ceilings replay.
    const sides = [...new Set(names.map(sideOf))];
    const drained = new Map<Side, { topic: string; kafka: CeilingResult }>();
    for (const side of sides) {
      const topic = res.topic(`drain-by-${side}`);
      const ms = await preProduce(services.kafka, topic, PARTITIONS, events, log, side);
      log.info('topic pre-produced', { topic, events, ms: Math.round(ms) });
      const k = await ceilingKafka(services.kafka, topic, res.group(`ceiling-kafka-${side}`), events, batch, `by ${side}`, false);
      log.info('ceiling kafka + decode done', { side, perSec: Math.round(k.result.perSec), batches: k.result.detail.batches });
      drained.set(side, { topic, kafka: k.result });
    }
    const topics = new Map<Side, { topic: string; kafka: CeilingResult; batches: DecodedBatch[]; concurrency: number }>();
    for (const [side, { topic, kafka }] of drained) {
      const recorded = await ceilingKafka(services.kafka, topic, res.group(`record-${side}`), events, batch, `by ${side}`, true);
      const concurrency = concurrencyOpt ?? kafka.detail.concurrency ?? PARTITIONS;
      topics.set(side, { topic, kafka, batches: decodeBatches(recorded.batches), concurrency });
    }
    const topicOf = (side: Side): { topic: string; kafka: CeilingResult; batches: DecodedBatch[]; concurrency: number } => {
      const t = topics.get(side);
      if (t === undefined) throw new Error(`no topic for side ${side}`);
      return t;
    };
    // The sink's rows do not depend on the adapter: one run, on the first side's chunks, states of size 0.
    const firstSide = sides[0] ?? 'item';
    const first = topicOf(firstSide);
    const sink = await ceilingSink(
      services,
      res,
      { name: 'none', side: firstSide, stateSize: 0, viewSize: 0, hasBaseline: false, release: 'bench', sequence: false },
      first.batches,
      first.topic,
      first.concurrency,
      log,
    );
    log.info('ceiling sink done', { perSec: Math.round(sink.perSec), inserts: sink.detail.inserts });

    const details: SpineReport['details']['adapters'] = [];
    const adapters: AdapterFigures[] = [];
    for (const name of names) {
      const side = sideOf(name);
      const t = topicOf(side);
      const adapter = await buildBenchAdapter(name, model, sample);
      const alone = await ceilingAdapt(adapter, t.batches, t.topic, t.concurrency);
      log.info('adapt alone done', { adapter: name, perSec: Math.round(alone.perSec) });
      const redis = await ceilingRedis(services, res, shapeOf(adapter), t.batches, t.topic, t.concurrency);
      log.info('ceiling redis done', { adapter: name, perSec: Math.round(redis.perSec) });
      const e2e = await endToEndDrain(services, res, adapter, t.topic, events, batch, log, {
        pipelineDepth: depth,
        fetchAhead,
        ...(concurrencyOpt === undefined ? {} : { concurrency: concurrencyOpt }),
      });
      log.info('end to end done', { adapter: name, perSec: Math.round(e2e.perSec) });
      const rates = loads.map((share) => Math.max(100, Math.round(share * e2e.perSec)));
      const latency = values['no-latency'] ? [] : await latencyAtLoads(services, res, adapter, rates, seconds, batch, log, depth, fetchAhead);
      details.push({ adapter: name, adaptAlone: alone, redis, endToEnd: e2e, latency });
      adapters.push({
        adapter: name,
        side,
        ceilings: { kafkaDecodeEventsPerSec: t.kafka.perSec, redisEventsPerSec: redis.perSec, sinkRowsPerSec: sink.perSec },
        adaptAloneEventsPerSec: alone.perSec,
        endToEndEventsPerSec: e2e.perSec,
        latency: latency.map((p, i) => ({ share: loads[i] ?? Number.NaN, loadEventsPerSec: p.loadEventsPerSec, p50Ms: p.p50Ms, p99Ms: p.p99Ms, p999Ms: p.p999Ms, phases: p.phases })),
      });
      adapter.dispose?.();
    }

    const figures: SpineFigures = {
      run: {
        startedAt,
        command,
        loadAverageBefore: loadBefore,
        loadAverageAfter: loadavg(),
        wallSeconds: (performance.now() - t0) / 1000,
        events,
        partitions: PARTITIONS,
        batch,
        pipelineDepth: depth,
        fetchAhead,
      },
      ceilings: {
        kafkaDecodeEventsPerSec: Math.min(...[...topics.values()].map((x) => x.kafka.perSec)),
        redisEventsPerSec: Math.min(...details.map((d) => d.redis.perSec)),
        sinkRowsPerSec: sink.perSec,
      },
      adapters,
    };
    const report: SpineReport = { figures, details: { kafka: [...topics.values()].map((x) => x.kafka), sink, adapters: details } };
    await mkdir(dirname(outPath), { recursive: true });
    await writeFile(outPath, JSON.stringify(report, null, 2) + '\n');
    process.stdout.write(values.json ? JSON.stringify(figures, null, 2) + '\n' : renderReport(report) + `\nJSON: ${outPath}\n`);
  } finally {
    await res.cleanup(log);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`spine bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
