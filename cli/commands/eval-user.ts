/**
 * `thaw eval --protocol warmup --side user`: the user-side mirror of the warm-up protocol on
 * MovieLens-100K (see evaluation/user-warmup-protocol.ts). Results go to stdout (a table, or JSON
 * with --json, including the ColdNAS structure chosen per seed); progress goes to the stderr log.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { initBackend, type BackendPreference } from '../../models/backend.js';
import { buildUserWarmupSplit } from '../../evaluation/user-warmup-split.js';
import { formatUserWarmupTable, runUserWarmupProtocol, USER_WARMUP_MODELS, type UserWarmupModel } from '../../evaluation/user-warmup-protocol.js';
import { DEFAULT_SEEDS } from '../../evaluation/warmup-protocol.js';
import { intArg } from '../raw-args.js';

export const usage = `thaw eval --protocol warmup --side user --data DIR [options]

  --protocol warmup     the warm-up protocol, user side (MovieLens-100K directory)
  --side user           new users instead of new items
  --data DIR            directory with u.data, u.user, u.item, u.genre
  --seeds N             number of seeds (7788, 1234, 9999, then 1..) (default 3)
  --models LIST         comma list of ${USER_WARMUP_MODELS.join(',')} (default all)
  --base-epochs N       supervised epochs of the DeepFM baseline on hot users (default 3)
  --finetune-steps N    SGD steps on the user-ID embedding per warm batch (default 5)
  --finetune-lr X       their learning rate (default 0.3)
  --search-epochs N     ColdNAS search epochs (default 20)
  --epochs N            ColdNAS retrain and fixed/adaptive meta-training epochs (default 40)
  --adapt-steps N       fixed/adaptive Meta-SGD steps per warm batch (default 1)
  --backend B           auto|native|wasm|cpu (default auto)
  --json                print { "rows": [...], "structures": [...] } instead of a table`;

function num(key: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(key, `must be a positive number, got "${v}"`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      protocol: { type: 'string' },
      side: { type: 'string' },
      data: { type: 'string' },
      seeds: { type: 'string' },
      models: { type: 'string' },
      'base-epochs': { type: 'string' },
      'finetune-steps': { type: 'string' },
      'finetune-lr': { type: 'string' },
      'search-epochs': { type: 'string' },
      epochs: { type: 'string' },
      'adapt-steps': { type: 'string' },
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
  if (values.protocol !== undefined && values.protocol !== 'warmup') throw new ConfigError('protocol', `only "warmup" is supported, got "${values.protocol}"`);
  if (values.side !== undefined && values.side !== 'user') throw new ConfigError('side', `this command evaluates the user side, got "${values.side}"`);
  if (values.data === undefined) throw new ConfigError('data', 'a MovieLens-100K directory is required');
  const nSeeds = intArg('seeds', values.seeds, 3, 1);
  const seeds = Array.from({ length: nSeeds }, (_, i) => DEFAULT_SEEDS[i] ?? i + 1);
  const models = (values.models ?? USER_WARMUP_MODELS.join(',')).split(',').map((m) => m.trim());
  for (const m of models) if (!(USER_WARMUP_MODELS as readonly string[]).includes(m)) throw new ConfigError('models', `unknown model "${m}" (known: ${USER_WARMUP_MODELS.join(', ')})`);
  const backendPref = (values.backend ?? 'auto') as BackendPreference;
  if (!['auto', 'native', 'wasm', 'cpu'].includes(backendPref)) throw new ConfigError('backend', `must be auto|native|wasm|cpu, got "${backendPref}"`);
  const epochs = intArg('epochs', values.epochs, 40, 0);
  const logger = createLogger();
  const backend = await initBackend(backendPref, logger);
  const split = buildUserWarmupSplit(values.data);
  const res = await runUserWarmupProtocol(split, {
    seeds,
    models: models as UserWarmupModel[],
    baseEpochs: intArg('base-epochs', values['base-epochs'], 3, 0),
    finetuneSteps: intArg('finetune-steps', values['finetune-steps'], 5, 0),
    finetuneLr: num('finetune-lr', values['finetune-lr'], 0.3),
    adaptSteps: intArg('adapt-steps', values['adapt-steps'], 1, 0),
    coldnas: { searchEpochs: intArg('search-epochs', values['search-epochs'], 20, 0), epochs },
    fixedAdaptive: { epochs },
    logger,
  });
  logger.info('user warm-up protocol done', { backend, seeds, wallSec: Math.round(res.wallSec), trainSec: res.trainSec, adaptEventsPerSec: res.adaptEventsPerSec });
  if (values.json) {
    const rows = res.rows.map((r) => ({ model: r.model, phase: r.phase, auc: r.auc, aucStd: r.aucStd, f1: r.f1 }));
    process.stdout.write(JSON.stringify({ rows, structures: res.structures }) + '\n');
  } else {
    process.stdout.write(formatUserWarmupTable(res.rows) + '\n');
    for (const s of res.structures) process.stdout.write(`coldnas structure (seed ${s.seed}): ${s.structure.ops.join(', ')}\n`);
    process.stdout.write(`seeds ${seeds.join(',')}; backend ${backend}; wall ${res.wallSec.toFixed(0)} s\n`);
  }
  return 0;
}
