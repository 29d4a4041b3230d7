/**
 * `thaw eval --protocol warmup`: the papers' warm-up protocol on MovieLens-100K (see
 * evaluation/warmup-protocol.ts). Results go to stdout (a table, or JSON with --json); progress
 * and timings go to the stderr log.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { initBackend, type BackendPreference } from '../../models/backend.js';
import { buildWarmupSplit } from '../../evaluation/warmup-split.js';
import { buildMetaEmbSplit, isMetaEmbDir } from '../../evaluation/metaemb-ml1m.js';
import { DEFAULT_SEEDS, formatWarmupTable, runWarmupProtocol, WARMUP_MODELS, type WarmupModel } from '../../evaluation/warmup-protocol.js';
import { intArg } from '../raw-args.js';

export const usage = `thaw eval --protocol warmup --data DIR [options]

  --protocol warmup     the CVAR/EmerG item warm-up protocol
  --side item           new items (default; --side user: see below)
  --data DIR            MovieLens-100K (u.data, u.user, u.item, u.genre), or Meta-Embedding's ML-1M
                        splits (train_oneshot_a..d.tsv, test_oneshot_a..c.tsv: phases cold, warm-a,
                        warm-b on the held-out test_oneshot_c; see evaluation/metaemb-ml1m.ts)
  --seeds N             number of seeds (7788, 1234, 9999, then 1..) (default 3)
  --models LIST         comma list of ${WARMUP_MODELS.join(',')} (default all)
  --base-epochs N       supervised epochs on hot items (default 3)
  --meta-epochs N       episodic epochs (default 10)
  --adapt-steps N       SGD steps on item params per warm batch (default 5)
  --adapt-lr X          their learning rate; meta-training's inner loop uses the same steps and rate (default 0.3)
  --graph-lr-scale X    EmerG's graph learning rate as a multiple of --adapt-lr (default 1)
  --backend B           auto|native|wasm|cpu (default auto)
  --json                print { "rows": [...] } instead of a table`;

function num(key: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(key, `must be a positive number, got "${v}"`);
  return n;
}

/** `--side user` / `--side=user` in argv. */
function userSide(argv: readonly string[]): boolean {
  return argv.some((a, i) => a === '--side=user' || (a === '--side' && argv[i + 1] === 'user'));
}

export async function run(argv: string[]): Promise<number> {
  // The user side has its own options (cli/commands/eval-user.ts); hand over before parsing ours.
  if (userSide(argv)) return (await import('./eval-user.js')).run(argv);
  const { values } = parseArgs({
    args: argv,
    options: {
      protocol: { type: 'string' },
      side: { type: 'string' },
      data: { type: 'string' },
      seeds: { type: 'string' },
      models: { type: 'string' },
      'base-epochs': { type: 'string' },
      'meta-epochs': { type: 'string' },
      'adapt-steps': { type: 'string' },
      'adapt-lr': { type: 'string' },
      'graph-lr-scale': { type: 'string' },
      backend: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(usage + '\n');
    return 0;
  }
  if (values.side !== undefined && values.side !== 'item') throw new ConfigError('side', `must be item or user, got "${values.side}"`);
  if (values.protocol !== 'warmup') throw new ConfigError('protocol', `only "warmup" is supported, got "${values.protocol ?? ''}"`);
  if (values.data === undefined) throw new ConfigError('data', 'a MovieLens-100K or Meta-Embedding ML-1M directory is required');
  const nSeeds = intArg('seeds', values.seeds, 3, 1);
  const seeds = Array.from({ length: nSeeds }, (_, i) => DEFAULT_SEEDS[i] ?? i + 1);
  const models = (values.models ?? WARMUP_MODELS.join(',')).split(',').map((m) => m.trim());
  for (const m of models) if (!(WARMUP_MODELS as readonly string[]).includes(m)) throw new ConfigError('models', `unknown model "${m}" (known: ${WARMUP_MODELS.join(', ')})`);
  const backendPref = (values.backend ?? 'auto') as BackendPreference;
  if (!['auto', 'native', 'wasm', 'cpu'].includes(backendPref)) throw new ConfigError('backend', `must be auto|native|wasm|cpu, got "${backendPref}"`);
  const logger = createLogger();
  const backend = await initBackend(backendPref, logger);
  const adaptLr = num('adapt-lr', values['adapt-lr'], 0.3);
  const adaptSteps = intArg('adapt-steps', values['adapt-steps'], 5, 0);
  const graphLrScale = num('graph-lr-scale', values['graph-lr-scale'], 1);
  // The format is told by the files present: Meta-Embedding's TSV batches, else MovieLens-100K.
  const metaEmb = isMetaEmbDir(values.data);
  const split = metaEmb ? buildMetaEmbSplit(values.data) : buildWarmupSplit(values.data);
  logger.info('warm-up split loaded', {
    format: metaEmb ? 'metaemb-ml1m' : 'ml-100k',
    hotItems: split.hotItems.length,
    hotRows: split.hot.n,
    newItems: split.coldItems.length,
    testRows: split.test.n,
  });
  const res = await runWarmupProtocol(split, {
    seeds,
    models: models as WarmupModel[],
    adaptSteps,
    adaptLr,
    train: {
      baseEpochs: intArg('base-epochs', values['base-epochs'], 3, 0),
      metaEpochs: intArg('meta-epochs', values['meta-epochs'], 10, 0),
      innerLr: adaptLr,
      innerSteps: Math.max(1, adaptSteps),
      graphLrScale,
    },
    logger,
  });
  logger.info('warm-up protocol done', { backend, seeds, wallSec: Math.round(res.wallSec), trainExamplesPerSec: res.examplesPerSec, adaptEventsPerSec: Math.round(res.adaptEventsPerSec) });
  if (values.json) {
    const rows = res.rows.map((r) => ({ model: r.model, phase: r.phase, auc: r.auc, aucStd: r.aucStd, f1: r.f1 }));
    process.stdout.write(JSON.stringify({ rows }) + '\n');
  } else {
    process.stdout.write(formatWarmupTable(res.rows) + '\n');
    process.stdout.write(`seeds ${seeds.join(',')}; backend ${backend}; wall ${res.wallSec.toFixed(0)} s\n`);
  }
  return 0;
}
