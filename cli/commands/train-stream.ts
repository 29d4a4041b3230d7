/**
 * `thaw train <kind> --source ...`: trains a STREAM release (trainers/event-trainer.ts) on the first
 * part of a time-ordered event stream and publishes + promotes it in a release directory. The rest
 * of the stream is what workers will later score and adapt on; it is never read for training.
 * Prints the version on stdout (the manifest with --json).
 *
 * Dispatched from `thaw train emerg|metaemb|deepfm|coldnas|fixed-adaptive` when argv has --source.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_RELEASE_DIR } from '../../config/common.js';
import { ConfigError } from '../../lib/errors.js';
import { at } from '../../lib/at.js';
import { createLogger } from '../../lib/log.js';
import { initBackend, type BackendPreference } from '../../models/backend.js';
import { ReleaseStore } from '../../model-store/releases.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { openSource, parseSourceSpec, type SourceSpec } from '../../sources/index.js';
import { STREAM_DEFAULTS, STREAM_KINDS, trainFromEvents, type StreamKind } from '../../trainers/event-trainer.js';
import { DEFAULT_HISTORY_FRACTION, HISTORY_MINIMUM, historyEventCount, resolveHistory, type ResolvedHistory } from '../../trainers/history.js';
import { EXIT, type CommandContext } from '../context.js';

const d = STREAM_DEFAULTS;
export const usage = `thaw train <emerg|metaemb|deepfm|coldnas|fixed-adaptive> --source SOURCE [options]

Trains the model's shared parameters on the history, the first part of a time-ordered event
stream (its hot entities: --min-events events or more), and publishes + promotes a release whose
architecture records the event layout workers use. Prints the release version. A history that
leaves fewer than ${HISTORY_MINIMUM.entities} hot entities or ${HISTORY_MINIMUM.rows.toLocaleString('en-US')} rows (coldnas: fewer than ${HISTORY_MINIMUM.validationEntities} validation users for
its search) refuses with exit code 2 and says which flag to change.

  --source S            synthetic | movielens-100k | movielens-1m | file, or a spec such as
                        synthetic:events=20000,seed=3,drift=0.5 / ml100k:DIR / csv:PATH / jsonl:PATH
  --data DIR|FILE       MovieLens directory, or the CSV/JSONL file of --source file
  --events N            synthetic: stream length (default 100000); others: read the first N events
  --history-fraction F  share of the stream's events that forms the history, 0 < F < 1
                        (default ${DEFAULT_HISTORY_FRACTION}: the first half trains; the rest is left for the workers,
                        so their warm-up curves never score events the release trained on)
  --history-events N    the first N events form the history instead (excludes --history-fraction)
  --drift X             synthetic drift 0..1 (default 0)
  --source-seed N       synthetic stream seed (default 1)
  --release-dir D       release directory (default $THAW_RELEASE_DIR or ${DEFAULT_RELEASE_DIR})
  --model NAME          release model name (default: the kind)
  --seed N              training seed (default ${d.seed})
  --min-events N        events an entity needs in the history to be a training entity (default
                        ${d.minEvents} = 2·K: one task of K = 20 support and K query rows; thaw train fm: 20)
  --epochs N            supervised epochs; coldnas: retrain epochs
                        (default deepfm/metaemb/emerg/fixed-adaptive ${d.epochs.deepfm}, coldnas ${d.epochs.coldnas})
  --meta-epochs N       episodic epochs (default metaemb/emerg ${d.metaEpochs.emerg}, fixed-adaptive ${d.metaEpochs['fixed-adaptive']})
  --search-epochs N     coldnas structure-search epochs (default ${d.searchEpochs})
  --inner-lr X          metaemb/emerg inner SGD rate, reuse when adapting (default 0.1)
  --dim N               embedding size (default 16)
  --vocab N             hashed table rows (default 65536)
  --no-promote          publish only
  --backend B           auto|native|wasm|cpu (default auto)
  --json                print the manifest as JSON instead of the version`;

const OPTIONS = {
  source: { type: 'string' },
  data: { type: 'string' },
  events: { type: 'string' },
  'history-fraction': { type: 'string' },
  'history-events': { type: 'string' },
  drift: { type: 'string' },
  'source-seed': { type: 'string' },
  'release-dir': { type: 'string' },
  model: { type: 'string' },
  seed: { type: 'string' },
  'min-events': { type: 'string' },
  epochs: { type: 'string' },
  'meta-epochs': { type: 'string' },
  'search-epochs': { type: 'string' },
  'inner-lr': { type: 'string' },
  dim: { type: 'string' },
  vocab: { type: 'string' },
  'no-promote': { type: 'boolean', default: false },
  backend: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', default: false },
} as const;

function intOpt(key: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min) throw new ConfigError(key, `must be an integer >= ${min}, got "${v}"`);
  return n;
}

/** A number flag's text (1_000 allowed), unchecked beyond being a number; undefined when not given. */
function numText(key: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = v.trim() === '' ? NaN : Number(v.replace(/_/g, ''));
  if (!Number.isFinite(n)) throw new ConfigError(key, `expected a number, got "${v}"`);
  return n;
}

function numOpt(key: string, v: string | undefined, ok: (x: number) => boolean, range: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || !ok(n)) throw new ConfigError(key, `must be ${range}, got "${v}"`);
  return n;
}

/** The source spec of --source/--data/--events/--drift/--source-seed. */
export function sourceOf(values: { source?: string; data?: string; events?: string; drift?: string; 'source-seed'?: string }): { spec: SourceSpec; limit?: number } {
  const name = values.source;
  if (name === undefined || name === '') throw new ConfigError('source', 'is required (synthetic, movielens-100k, movielens-1m or file)');
  const events = intOpt('events', values.events, 1);
  const needData = (what: string): string => {
    if (values.data === undefined || values.data === '') throw new ConfigError('data', `--source ${name} needs --data ${what}`);
    return values.data;
  };
  let spec: SourceSpec;
  if (name === 'movielens-100k') spec = { kind: 'ml100k', dir: needData('DIR') };
  else if (name === 'movielens-1m') spec = { kind: 'ml1m', dir: needData('DIR') };
  else if (name === 'file') {
    const file = needData('FILE');
    if (/\.jsonl?$/i.test(file)) spec = { kind: 'jsonl', path: file };
    else if (/\.csv$/i.test(file)) spec = { kind: 'csv', path: file };
    else throw new ConfigError('data', `cannot tell the format of "${file}": expected a .csv, .jsonl or .json file`);
  } else spec = parseSourceSpec(name);
  if (spec.kind === 'synthetic') {
    const drift = numOpt('drift', values.drift, (x) => x >= 0 && x <= 1, 'in [0, 1]');
    const seed = intOpt('source-seed', values['source-seed'], 0);
    if (events !== undefined) spec.events = events;
    if (drift !== undefined) spec.drift = drift;
    if (seed !== undefined) spec.seed = seed;
    return { spec };
  }
  if (values.drift !== undefined) throw new ConfigError('drift', 'applies to --source synthetic only');
  if (values['source-seed'] !== undefined) throw new ConfigError('source-seed', 'applies to --source synthetic only');
  return events === undefined ? { spec } : { spec, limit: events };
}

/** The history options of the parsed flags: the same options, defaults and checks as thaw train fm (trainers/history.ts). */
function historyOptionsOf(values: { 'history-fraction'?: string; 'history-events'?: string; 'min-events'?: string }): ResolvedHistory {
  return resolveHistory(
    {
      historyFraction: numText('history-fraction', values['history-fraction']),
      historyEvents: numText('history-events', values['history-events']),
      minEvents: numText('min-events', values['min-events']),
    },
    'meta',
  );
}

/** The history options of a `thaw train <kind> --source ...` command line (throws ConfigError as the command would). */
export function streamHistoryOptions(argv: readonly string[]): ResolvedHistory {
  return historyOptionsOf(parseArgs({ args: [...argv], allowPositionals: true, options: OPTIONS, strict: true }).values);
}

/** Reads the whole stream (up to `limit` events), stably sorted by time. */
async function readStream(spec: SourceSpec, limit: number | undefined): Promise<LabelledEvent[]> {
  const out: LabelledEvent[] = [];
  for await (const e of openSource(spec)) {
    out.push(e);
    if (limit !== undefined && out.length >= limit) break;
  }
  // Array.prototype.sort is stable; sources that are already in time order are left as they are.
  let sorted = true;
  for (let i = 1; i < out.length && sorted; i++) sorted = at(out, i).timeMs >= at(out, i - 1).timeMs;
  return sorted ? out : out.sort((a, b) => a.timeMs - b.timeMs);
}

/**
 * Runs `thaw train <kind> --source ...`; returns the exit code. `argv` may start with the kind (a
 * positional equal to `kind` is ignored). `ctx` is optional: without it output goes to
 * process.stdout and logs to a stderr JSON logger.
 */
export async function trainStreamCommand(kind: string, argv: string[], ctx: Partial<CommandContext> = {}): Promise<number> {
  const stdout = ctx.stdout ?? process.stdout;
  // Before parsing: `--source --help` must print the usage, not fail on a missing value.
  if (argv.includes('--help') || argv.includes('-h')) {
    stdout.write(usage + '\n');
    return EXIT.ok;
  }
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS, strict: true });
  if (values.help) {
    stdout.write(usage + '\n');
    return EXIT.ok;
  }
  if (!(STREAM_KINDS as readonly string[]).includes(kind)) throw new ConfigError('model', `expected one of ${STREAM_KINDS.join('|')}, got "${kind}"`);
  const extra = positionals.filter((p) => p !== kind);
  const [first] = extra;
  if (first !== undefined) throw new ConfigError('args', `unexpected argument "${first}"`);
  const { spec, limit } = sourceOf(values);
  const historyOpts = historyOptionsOf(values);
  const backendPref = (values.backend ?? 'auto') as BackendPreference;
  if (!['auto', 'native', 'wasm', 'cpu'].includes(backendPref)) throw new ConfigError('backend', `must be auto|native|wasm|cpu, got "${backendPref}"`);
  const model = values.model ?? kind;
  const releaseDir = resolve(values['release-dir'] ?? ctx.env?.THAW_RELEASE_DIR ?? process.env.THAW_RELEASE_DIR ?? DEFAULT_RELEASE_DIR);
  const innerLr = numOpt('inner-lr', values['inner-lr'], (x) => x > 0, 'a positive number');
  const opts = {
    seed: intOpt('seed', values.seed, 0),
    minEvents: historyOpts.minEvents,
    epochs: intOpt('epochs', values.epochs, 0),
    metaEpochs: intOpt('meta-epochs', values['meta-epochs'], 0),
    searchEpochs: intOpt('search-epochs', values['search-epochs'], 0),
    dim: intOpt('dim', values.dim, 1),
    vocab: intOpt('vocab', values.vocab, 2),
    innerLr,
  };
  const logger = ctx.logger ?? createLogger();
  const backend = await initBackend(backendPref, logger);
  const t0 = performance.now();
  const stream = await readStream(spec, limit);
  if (stream.length === 0) throw new ConfigError('source', 'has no events');
  const historyEvents = historyEventCount(historyOpts.length, stream.length);
  if (historyEvents === stream.length) logger.warn('the history is the whole stream: no event is left for workers to score that the release has not seen', { historyEvents });
  const historyFraction = 'fraction' in historyOpts.length ? historyOpts.length.fraction : historyEvents / stream.length;
  const history = stream.slice(0, historyEvents);
  const historyEndMs = at(history, history.length - 1, 'history event').timeMs;
  logger.info('stream read', { source: spec.kind, events: stream.length, historyEvents, historyEndMs, backend });
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const res = await trainFromEvents({ kind: kind as StreamKind, events: history, logger, ...defined });

  const store = new ReleaseStore({ root: releaseDir });
  const parent = (await store.current(model)) ?? null;
  const metrics: Record<string, number> = {
    ...res.hyper,
    streamEvents: stream.length,
    historyEvents,
    historyFraction,
    // Workers and the demo start scoring after this time: the history's last event.
    historyEndMs,
    hotEntities: res.stats.entities,
    trainRows: res.stats.rows,
    validationEntities: res.stats.validationEntities,
    finalLoss: res.stats.finalLoss,
    examplesPerSec: Math.round(res.stats.examplesPerSec),
    trainSec: Math.round(res.stats.trainSec * 10) / 10,
    // The chosen prior itself is architecture.biasFilter.
    ...(res.biasFit === undefined ? {} : { biasFitLogloss: res.biasFit.logLoss }),
  };
  const manifest = await store.publish({ model, parent, architecture: res.bundle.architecture, metrics, files: res.bundle.files });
  if (!values['no-promote']) await store.promote(model, manifest.version);
  logger.info('release published', { model, version: manifest.version, promoted: !values['no-promote'], releaseDir, ms: Math.round(performance.now() - t0) });
  stdout.write(values.json ? JSON.stringify(manifest) + '\n' : `${manifest.version}\n`);
  return EXIT.ok;
}
