/**
 * `thaw eval --protocol stream`: Thaw's adapters and their peers on one stream, predict then learn,
 * by warm-up bucket, with no services (evaluation/stream/run.ts). Tables (or JSON with --json) on
 * stdout, a plot, progress and logs on stderr. SIGINT/SIGTERM stop it (exit 130).
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { renderCurvesBySideSvg, writePlot } from '../../analytics/plot.js';
import type { ReleaseAdapterOptions } from '../../adapters/registry.js';
import { adapterOptionsSchema } from '../../config/adapter-options.js';
import { validate } from '../../config/load.js';
import { ConfigError, ThawError } from '../../lib/errors.js';
import { createLogger, type LogLevel } from '../../lib/log.js';
import { PEER_NAMES, type PeerName } from '../../evaluation/peers/index.js';
import { STREAM_ADAPTERS } from '../../evaluation/stream/families.js';
import { formatStreamEval, streamEvalJson } from '../../evaluation/stream/report.js';
import { DEFAULT_SYNC_EVERY_EVENTS, runStreamEval } from '../../evaluation/stream/run.js';
import { SIDES, type Side } from '../../schemas/types.js';
import { parseSourceSpec } from '../../sources/index.js';
import { EXIT } from '../context.js';

export const usage = `thaw eval --protocol stream --source SRC [options]

  Replays a stream in time order, predict then learn, and compares Thaw's adapters (each beside its
  own none: the same release, never adapted) with peers on the same rows, by the entity's prior
  events: 0, 1-2, 3-5, 6-10, 11-20, 21-50, 51+ and the pooled 1-5. No services: the production
  BatchProcessor and adapters on an in-process store, rows in embedded ClickHouse (chDB).

  --source SRC            synthetic[:k=v,...] | ml100k:DIR | ml1m:DIR | csv:FILE | jsonl:FILE
  --history-fraction F    the first share F of the events trains the releases; rows are scored
                          after it (default 0.2)
  --max-events N          read only the first N events of the source (a validation run inside a
                          longer run's history: --max-events 20000 --history-fraction 0.5 on
                          ML-100K trains on its first 10 % and scores the next 10 %)
  --side S                user | item | both: the sides reported (default both)
  --adapters LIST         comma list of ${STREAM_ADAPTERS.join(',')} (default all). An adapter
                          whose release cannot be trained on the history is skipped with a warning,
                          unless named here
  --sync-every N          the shared parameters keep learning from the stream (the learners of
                          thaw train --online) and a release is switched in every N events; 0 keeps
                          the history's releases (default ${DEFAULT_SYNC_EVERY_EVENTS}: production publishes by wall
                          time, --sync-interval-ms; a replay counts events, as thaw train --online
                          --sync-every does)
  --cross-side on|off     on: each side scores with the other side's fresh state, as thaw run
                          --cross-adapter auto; off: with the other side cold, as --cross-adapter
                          off (default on)
  --peer LIST             comma list of ${PEER_NAMES.join(',')}: Vowpal Wabbit (-q ui, user and item
                          ids, optimizer and step size chosen on the history; installed from PyPI
                          on first use) and an online LR on running positive rates (default none)
  --adapter-options JSON  options per adapter, as thaw run's adapterOptions, e.g.
                          '{"emerg":{"crossSide":"off"}}' (default: each adapter's)
  --release-dir DIR       start from the current releases of DIR (models fm, emerg, coldnas,
                          fixed-adaptive) instead of training on the history
  --seed N                seed of the trainers (default 7788)
  --out DIR               work directory: chDB data, peer files (default .thaw/eval-stream)
  --plot FILE             where the SVG plot goes (default <out>/curves.svg)
  --json                  print one JSON document: { events, windowFrom, rows: [{ side, adapter,
                          release, bucket, n, auc, logLoss }], ... }
  --log-level L           debug | info | warn | error | silent (default info)`;

/** `--adapter-options` JSON, validated as thaw run's adapterOptions (config/adapter-options.ts). */
function parseAdapterOptions(text: string): ReleaseAdapterOptions {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('adapter-options', `must be JSON: ${(err as Error).message}`);
  }
  try {
    return validate(adapterOptionsSchema, raw);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`adapter-options.${err.key}`, err.message.replace(/^invalid config "[^"]*": /, ''));
    throw err;
  }
}

function list(key: string, v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const xs = v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  if (xs.length === 0) throw new ConfigError(key, 'must be a non-empty comma-separated list');
  return xs;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      protocol: { type: 'string' },
      source: { type: 'string' },
      'history-fraction': { type: 'string' },
      'max-events': { type: 'string' },
      'adapter-options': { type: 'string' },
      side: { type: 'string' },
      adapters: { type: 'string' },
      'sync-every': { type: 'string' },
      'cross-side': { type: 'string' },
      peer: { type: 'string' },
      'release-dir': { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      plot: { type: 'string' },
      json: { type: 'boolean', default: false },
      'log-level': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage + '\n');
    return EXIT.ok;
  }
  if (values.protocol !== 'stream') throw new ConfigError('protocol', `this command runs --protocol stream, got "${values.protocol ?? ''}"`);
  if (values.source === undefined) throw new ConfigError('source', 'is required: synthetic[:k=v,...] | ml100k:DIR | ml1m:DIR | csv:FILE | jsonl:FILE');
  const source = parseSourceSpec(values.source);
  const side = values.side ?? 'both';
  if (side !== 'both' && side !== 'user' && side !== 'item') throw new ConfigError('side', `must be user, item or both, got "${side}"`);
  const sides: readonly Side[] = side === 'both' ? SIDES : [side];
  const adapters = list('adapters', values.adapters);
  for (const a of adapters ?? []) if (!STREAM_ADAPTERS.includes(a)) throw new ConfigError('adapters', `unknown adapter "${a}"; known: ${STREAM_ADAPTERS.join(', ')}`);
  const peers = list('peer', values.peer);
  for (const p of peers ?? []) if (!(PEER_NAMES as readonly string[]).includes(p)) throw new ConfigError('peer', `unknown peer "${p}"; known: ${PEER_NAMES.join(', ')}`);
  const num = (key: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x)) throw new ConfigError(key, `must be a number, got "${v}"`);
    return x;
  };
  const level = (values['log-level'] ?? 'info') as LogLevel;
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(level)) throw new ConfigError('log-level', `must be debug|info|warn|error|silent, got "${level}"`);
  const logger = createLogger(level, { cmd: 'eval stream' });
  const out = resolve(values.out ?? join('.thaw', 'eval-stream'));
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const historyFraction = num('history-fraction', values['history-fraction']);
    const syncEvery = num('sync-every', values['sync-every']);
    const seed = num('seed', values.seed);
    const maxEvents = num('max-events', values['max-events']);
    const crossSide = values['cross-side'] ?? 'on';
    if (crossSide !== 'on' && crossSide !== 'off') throw new ConfigError('cross-side', `must be on or off, got "${crossSide}"`);
    const adapterOptions = values['adapter-options'] === undefined ? undefined : parseAdapterOptions(values['adapter-options']);
    const result = await runStreamEval({
      source,
      sides,
      out,
      logger,
      signal: ac.signal,
      required: adapters ?? [],
      ...(historyFraction === undefined ? {} : { historyFraction }),
      ...(syncEvery === undefined ? {} : { syncEvery }),
      crossSide: crossSide === 'on',
      ...(seed === undefined ? {} : { seed }),
      ...(maxEvents === undefined ? {} : { maxEvents }),
      ...(adapterOptions === undefined ? {} : { adapterOptions }),
      ...(adapters === undefined ? {} : { adapters }),
      ...(peers === undefined ? {} : { peers: peers as PeerName[] }),
      ...(values['release-dir'] === undefined ? {} : { releaseDir: resolve(values['release-dir']) }),
    });
    const plot = resolve(values.plot ?? join(out, 'curves.svg'));
    await writePlot(
      plot,
      renderCurvesBySideSvg(
        result.curves.filter((c) => c.bucket !== '1-5'),
        { title: `Stream evaluation (${result.events.toLocaleString('en-US')} events)`, label: (r) => (r.release === 'peer' ? r.adapter : `${r.adapter} (${r.release})`) },
      ),
    );
    if (values.json) process.stdout.write(JSON.stringify({ ...streamEvalJson(result), plot }) + '\n');
    else process.stdout.write(`${formatStreamEval(result, values.source)}Plot: ${plot}\n`);
    return EXIT.ok;
  } catch (err) {
    if (ac.signal.aborted && err instanceof ThawError && err.code === 'LIFECYCLE') {
      logger.warn('interrupted');
      return EXIT.interrupted;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
