/**
 * `npm run bench -- --only curves -- [options]`: warm-up curves of every adapter and its `none`
 * baseline, per side, from the prediction rows the production pieces write into ClickHouse.
 *
 *   --dataset ml100k|synthetic   @default ml100k (MovieLens-100K in time order)
 *   --transport kafka|direct     kafka: produce → rekey → AdaptationWorkers (@default for ml100k);
 *                                direct: BatchProcessor, same adapters/Redis/ClickHouse, no Kafka (@default for synthetic)
 *   --adapters a,b,...           of none, fm-adagrad, emerg, coldnas, fixed-adaptive @default all
 *   --events N                   synthetic stream length @default 10000000
 *   --users N --items N --seed N synthetic generator @default 50000, 10000, 1
 *   --history-events N           history prefix the releases train on (synthetic @default 200000)
 *   --history-fraction F         (ml100k) @default 0.5
 *   --meta-events N              direct: events the meta workers and their frozen baselines run on @default all
 *   --limit N                    synthetic: use only the first N events of the --events stream @default all
 *   --sides item,user            the sides to run (one side per process runs two processes side by side;
 *                                bench/curves/merge.ts joins their JSON into one report and plot) @default both
 *   --workers a,b,...            only these workers of the plan, e.g. item-none-emerg,item-emerg (one process per
 *                                group; merge.ts joins the parts) @default every worker of the sides
 *   --worker-timeout-min N       kafka transport: a worker (or the rekey stage) taking longer fails the run @default 60
 *   --reuse DIR                  reuse releases DIR/<kind> (e.g. /tmp/thaw/releases) @default none
 *   --releases DIR               releases trained here @default .thaw/bench/curves/releases-<dataset>
 *   --plot PATH                  @default bench/curves/<dataset>[-<limit>]-curves.svg
 *   --keep                       keep the run's topics, keys and table (to query them again)
 *
 * Prints Markdown tables on stdout; writes the plot and .thaw/bench/curves-<plot name>.{json,md}.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writePlot } from '../../analytics/plot.js';
import { ConfigError, errorMessage } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { runCurves, type CurvesRunOptions, type CurvesRunResult } from './bench.js';
import { CURVE_ADAPTERS, parseAdapters } from './plan.js';
import { aucTable, longTable, releaseModel, sideBySideSvg } from './report.js';
import { CurvesResources, servicesFromEnv } from './resources.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const ML100K = resolve(ROOT, '..', 'shared', 'data', 'ml-100k');

function int(key: string, v: string | undefined, dflt: number, min?: number): number;
function int(key: string, v: string | undefined, dflt: number | undefined, min?: number): number | undefined;
function int(key: string, v: string | undefined, dflt: number | undefined, min = 1): number | undefined {
  if (v === undefined) return dflt;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min) throw new ConfigError(key, `must be an integer >= ${min}, got "${v}"`);
  return n;
}

export function parseCurvesArgs(argv: readonly string[]): { run: Omit<CurvesRunOptions, 'logger'>; plot: string; keep: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      dataset: { type: 'string', default: 'ml100k' },
      transport: { type: 'string' },
      adapters: { type: 'string', default: CURVE_ADAPTERS.join(',') },
      events: { type: 'string' },
      users: { type: 'string' },
      items: { type: 'string' },
      seed: { type: 'string' },
      'history-events': { type: 'string' },
      'history-fraction': { type: 'string' },
      'meta-events': { type: 'string' },
      limit: { type: 'string' },
      sides: { type: 'string', default: 'item,user' },
      workers: { type: 'string' },
      'worker-timeout-min': { type: 'string' },
      reuse: { type: 'string' },
      releases: { type: 'string' },
      plot: { type: 'string' },
      keep: { type: 'boolean', default: false },
    },
  });
  const dataset = values.dataset;
  if (dataset !== 'ml100k' && dataset !== 'synthetic') throw new ConfigError('dataset', `must be ml100k or synthetic, got "${dataset}"`);
  const transport = values.transport ?? (dataset === 'ml100k' ? 'kafka' : 'direct');
  if (transport !== 'kafka' && transport !== 'direct') throw new ConfigError('transport', `must be kafka or direct, got "${transport}"`);
  const fraction = values['history-fraction'] === undefined ? undefined : Number(values['history-fraction']);
  if (fraction !== undefined && !(fraction > 0 && fraction < 1)) throw new ConfigError('history-fraction', 'must be in (0, 1)');
  const events = int('events', values.events, 10_000_000);
  const synthetic = { events, users: int('users', values.users, 50_000), items: int('items', values.items, 10_000), seed: int('seed', values.seed, 1, 0) };
  const historyEvents = int('history-events', values['history-events'], dataset === 'synthetic' ? 200_000 : undefined);
  const metaEvents = int('meta-events', values['meta-events'], undefined);
  const limit = int('limit', values.limit, undefined);
  const sides = values.sides.split(',').map((x) => x.trim());
  if (sides.length === 0 || sides.some((x) => x !== 'item' && x !== 'user')) throw new ConfigError('sides', `must be item, user or item,user, got "${values.sides}"`);
  const workers = values.workers
    ?.split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  if (workers !== undefined && workers.length === 0) throw new ConfigError('workers', 'at least one worker label');
  const timeoutMin = int('worker-timeout-min', values['worker-timeout-min'], 60);
  const [onlySide] = sides;
  const oneSide = sides.length === 1 && onlySide !== undefined ? `-${onlySide}` : '';
  if (limit !== undefined && dataset !== 'synthetic') throw new ConfigError('limit', 'applies to --dataset synthetic only');
  const tag = dataset === 'ml100k' ? 'ml100k' : `synthetic-${events}-${synthetic.users}-${synthetic.items}-${synthetic.seed}-h${historyEvents}`;
  return {
    run: {
      dataset,
      transport,
      adapters: parseAdapters(values.adapters),
      ...(dataset === 'ml100k' ? { ml100kDir: ML100K } : { synthetic }),
      ...(fraction === undefined ? {} : { historyFraction: fraction }),
      ...(historyEvents === undefined ? {} : { historyEvents }),
      ...(metaEvents === undefined ? {} : { metaEvents }),
      ...(limit === undefined ? {} : { limit }),
      sides: sides as ('item' | 'user')[],
      ...(workers === undefined ? {} : { workers }),
      timeoutMs: timeoutMin * 60_000,
      ...(values.reuse === undefined ? {} : { reuseRoot: resolve(values.reuse) }),
      trainRoot: resolve(values.releases ?? join(ROOT, '.thaw', 'bench', 'curves', `releases-${tag}`)),
    },
    plot: resolve(values.plot ?? join(ROOT, 'bench', 'curves', `${dataset}${limit === undefined ? '' : `-${limit}`}${oneSide}-curves.svg`)),
    keep: values.keep,
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The Markdown report of a run (what goes into bench/curves/README.md). */
export function markdownReport(r: CurvesRunResult, transport: string): string {
  const out: string[] = [];
  out.push(`Run ${r.runId}: ${r.events} events, history ${r.historyEvents} events; transport ${transport}; ClickHouse table thaw.${r.table}.`);
  out.push(
    `Evaluation window: event_time_ms >= ${r.since} (${iso(r.since)}) = after the last history event${r.metaUntil === undefined ? '' : `; meta workers up to ${iso(r.metaUntil)} (exclusive)`}.`,
  );
  out.push('');
  out.push('| release | reused | historyEndMs | train s |', '|---|---|--:|--:|');
  for (const x of r.releases) out.push(`| ${x.id} | ${x.reused ? 'yes' : 'no'} | ${x.historyEndMs} | ${x.trainSec.toFixed(0)} |`);
  out.push('');
  const st = r.stages;
  if (st.produce !== undefined) out.push(`Produce: ${st.produce.events} events in ${(st.produce.ms / 1000).toFixed(1)} s (${Math.round(st.produce.perSec)} events/s).`);
  if (st.rekey !== undefined) out.push(`Re-key: ${(st.rekey.ms / 1000).toFixed(1)} s (${Math.round(st.rekey.perSec)} events/s).`);
  out.push('', '| worker | transport | release | events | s | events/s | cross-side reads: read / refused |', '|---|---|---|--:|--:|--:|--:|');
  for (const w of r.workers) {
    const cross = w.spec.cross ? `${w.crossRead} / ${w.crossRefused}` : 'off';
    out.push(`| ${w.spec.label} | ${w.transport} | ${releaseModel(w.release)} | ${w.events} | ${(w.ms / 1000).toFixed(1)} | ${Math.round(w.perSec)} | ${cross} |`);
  }
  out.push('', "Workers of a group (the fm-adagrad pair, which reads each other's states) ran together; events/s is each worker's own.");
  out.push('', `AUC by prior-interaction bucket${r.commonCurves === undefined ? '' : ' (each worker on its whole window)'}:`, '', aucTable(r.curves));
  if (r.commonCurves !== undefined && r.metaUntil !== undefined) out.push(`Every adapter on the meta workers' window [${iso(r.since)}, ${iso(r.metaUntil)}):`, '', aucTable(r.commonCurves));
  out.push('<details><summary>Long table (side, adapter, release, bucket, n, AUC, log loss)</summary>', '', longTable(r.commonCurves ?? r.curves), '</details>');
  return out.join('\n') + '\n';
}

async function main(): Promise<void> {
  const args = parseCurvesArgs(process.argv.slice(2));
  const log = createLogger(undefined, { bench: 'curves' });
  const res = new CurvesResources(servicesFromEnv());
  const t0 = performance.now();
  let result: CurvesRunResult;
  try {
    result = await runCurves(res, { ...args.run, logger: log });
  } finally {
    if (!args.keep) {
      const failed = await res.cleanup(log);
      if (failed.length > 0) process.stderr.write(`curves: clean-up left ${failed.join(', ')}\n`);
    }
  }
  const wallS = (performance.now() - t0) / 1000;
  const rows = result.commonCurves ?? result.curves;
  const title = args.run.dataset === 'ml100k' ? 'MovieLens-100K' : `synthetic ${args.run.synthetic?.events ?? ''}`;
  await writePlot(args.plot, sideBySideSvg(rows, title));
  if (result.commonCurves !== undefined) await writePlot(args.plot.replace(/\.svg$/, '-full.svg'), sideBySideSvg(result.curves, `${title} (full window)`));
  const report = markdownReport(result, args.run.transport) + `\nWall time ${wallS.toFixed(0)} s.\n`;
  process.stdout.write(report);
  const json = join(ROOT, '.thaw', 'bench', `curves-${basename(args.plot, '.svg')}.json`);
  await mkdir(dirname(json), { recursive: true });
  await writeFile(json, JSON.stringify({ ...result, wallS, transport: args.run.transport }, null, 1));
  await writeFile(json.replace(/\.json$/, '.md'), report);
  process.stderr.write(`curves: plot ${args.plot}, JSON ${json}\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  main().catch((err: unknown) => {
    process.stderr.write(`curves bench failed: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  });
}
