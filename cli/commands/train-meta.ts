/**
 * `thaw train emerg|deepfm|metaemb|coldnas|fixed-adaptive`: offline training from files.
 * The item models train on the hot items of MovieLens-100K's warm-up split or on the old items of
 * Meta-Embedding's ML-1M splits (told apart by the files in --data); the user models (coldnas,
 * fixed-adaptive) train on the hot users of MovieLens-100K's user warm-up split, as
 * evaluation/user-warmup-protocol.ts does. Every model checkpoints after every epoch in --out and
 * continues with --resume after a kill. With --release-dir the trained model is published and
 * promoted as a release. --validate trains on part of the hot items (users) and reports the
 * warm-up AUC on the held-out rest, to choose hyper-parameters without the test rows.
 * With --source the command is handed to cli/commands/train-stream.ts (training from events).
 */
import { parseArgs } from 'node:util';
import { ConfigError } from '../../lib/errors.js';
import { at } from '../../lib/at.js';
import { createLogger } from '../../lib/log.js';
import { initBackend, type BackendPreference } from '../../models/backend.js';
import { isMetaEmbDir } from '../../evaluation/metaemb-ml1m.js';
import { loadItemData } from '../../evaluation/item-data.js';
import { buildUserWarmupSplit } from '../../evaluation/user-warmup-split.js';
import { formatValidationTable, runUserValidation, runValidation, type ValidationRow } from '../../evaluation/validation.js';
import { lossTap } from '../../trainers/loss-tap.js';
import { trainMeta, type TrainKind } from '../../trainers/meta-trainer.js';
import { trainColdNas } from '../../trainers/coldnas-trainer.js';
import { trainFixedAdaptive } from '../../trainers/fixed-adaptive-trainer.js';
import { bundleCtr, bundleUser, type Bundle } from '../../models/onnx/bundle.js';
import { selectRows, type RowBatch } from '../../models/ctr-model.js';
import { DeepFm } from '../../models/deepfm.js';
import { Emerg } from '../../models/emerg.js';
import { ReleaseStore } from '../../model-store/releases.js';
import type { CommandContext } from '../context.js';

export const usage = `thaw train emerg|deepfm|metaemb --data DIR --out CKPT_DIR [options]
thaw train coldnas|fixed-adaptive --data DIR --out CKPT_DIR [options]
thaw train <model> --data DIR --validate [options]
thaw train <model> --source ...   train on a streamed source instead; see thaw train <model> --source --help

  --data DIR          emerg|deepfm|metaemb: MovieLens-100K (hot items of the warm-up split) or Meta-Embedding's
                      ML-1M splits (old items: train_oneshot_a..d.tsv); coldnas|fixed-adaptive: MovieLens-100K
                      (hot users of the user warm-up split)
  --out DIR           checkpoint directory (checkpoint.bin, replaced atomically after every epoch); required
                      unless --validate
  --resume            continue from the checkpoint in --out
  --epochs N          supervised epochs (default 3); coldnas: retrain epochs (default 40)
  --meta-epochs N     episodic epochs: metaemb and emerg (default 10), fixed-adaptive (default 40)
  --search-epochs N   coldnas structure-search epochs (default 20)
  --seed N            seed (default 7788)
  --inner-lr X        inner SGD rate on item params, and the warm-up rate with --validate (default 0.3)
  --inner-steps N     inner SGD steps per task, and the warm-up steps with --validate (default 5)
  --graph-lr-scale X  EmerG graph inner rate as a multiple of --inner-lr (default 1)
  --release-dir DIR   publish the trained model to this release store and promote it (prints the version)
  --validate          hold out part of the hot items/users (by --seed), train on the rest and print the warm-up
                      AUC on the held-out ones (no checkpoint, no release); item models: --inner-lr and
                      --inner-steps then take comma lists, every pair is tried (deepfm: the finetune baseline's
                      rate and steps)
  --validation-fraction F  share of the hot items/users held out by --validate (default 0.2)
  --limit-entities N  train on the first N hot items/users only (a quick smoke run; default all)
  --json              with --validate: print { "rows": [...] } instead of a table
  --backend B         auto|native|wasm|cpu (default auto)`;

type UserKind = 'coldnas' | 'fixed-adaptive';
const ITEM_KINDS: readonly TrainKind[] = ['emerg', 'deepfm', 'metaemb'];
const USER_KINDS: readonly UserKind[] = ['coldnas', 'fixed-adaptive'];
const KINDS: readonly string[] = [...ITEM_KINDS, ...USER_KINDS];

/** The rows of the first `limit` entities (all when undefined), and their entity count. */
function firstEntities(hot: RowBatch, count: number, limit: number | undefined): { hot: RowBatch; count: number } {
  if (limit === undefined || limit >= count) return { hot, count };
  const rows: number[] = [];
  for (let i = 0; i < hot.n; i++) if (at(hot.entity, i, 'row') < limit) rows.push(i);
  return { hot: selectRows(hot, rows), count: limit };
}

function list(key: string, v: string | undefined, dflt: number, check: (n: number) => boolean, what: string, many: boolean): number[] {
  const parts = v === undefined ? [String(dflt)] : v.split(',');
  if (!many && parts.length > 1) throw new ConfigError(key, `takes one value without --validate, got "${v}"`);
  return parts.map((p) => {
    const n = Number(p.trim());
    if (p.trim() === '' || !check(n)) throw new ConfigError(key, `must be ${what}, got "${v}"`);
    return n;
  });
}

/**
 * Runs the command; returns the exit code. `ctx` is optional (raw commands get none from main):
 * output goes to `ctx.stdout`, else process.stdout.
 */
export async function run(argv: string[], ctx: Partial<CommandContext> = {}): Promise<number> {
  const stdout = ctx.stdout ?? process.stdout;
  // Training from a streamed source is another command with its own options (train-stream.ts).
  if (argv.includes('--source') || argv.some((a) => a.startsWith('--source='))) {
    const kind = argv[0] !== undefined && !argv[0].startsWith('-') ? argv[0] : '';
    return (await import('./train-stream.js')).trainStreamCommand(kind, argv, ctx);
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      epochs: { type: 'string' },
      'meta-epochs': { type: 'string' },
      'search-epochs': { type: 'string' },
      seed: { type: 'string' },
      'inner-lr': { type: 'string' },
      'inner-steps': { type: 'string' },
      'graph-lr-scale': { type: 'string' },
      resume: { type: 'boolean', default: false },
      'release-dir': { type: 'string' },
      validate: { type: 'boolean', default: false },
      'validation-fraction': { type: 'string' },
      'limit-entities': { type: 'string' },
      json: { type: 'boolean', default: false },
      backend: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    stdout.write(usage + '\n');
    return 0;
  }
  const kind = positionals[0];
  if (kind === undefined || !KINDS.includes(kind)) throw new ConfigError('model', `expected one of ${KINDS.join('|')}, got "${kind ?? ''}"`);
  if (values.data === undefined) throw new ConfigError('data', 'a data directory is required');
  const userKind = (USER_KINDS as readonly string[]).includes(kind);
  const validate = values.validate;
  if (validate) {
    for (const k of ['out', 'release-dir'] as const) if (values[k] !== undefined) throw new ConfigError(k, '--validate writes no checkpoint or release');
    if (values.resume) throw new ConfigError('resume', '--validate writes no checkpoint');
  } else {
    if (values.out === undefined) throw new ConfigError('out', 'a checkpoint directory is required (or --validate)');
    for (const k of ['validation-fraction', 'json'] as const) if (values[k] !== undefined && values[k] !== false) throw new ConfigError(k, 'only with --validate');
  }
  if (values['release-dir'] === '') throw new ConfigError('release-dir', 'must be a directory path');
  if (userKind && isMetaEmbDir(values.data)) throw new ConfigError('data', `${values.data} holds Meta-Embedding's item splits; ${kind} trains on MovieLens-100K users`);
  const int = (key: string, v: string | undefined, d: number): number => {
    const n = v === undefined ? d : Number(v);
    if (!Number.isInteger(n) || n < 0) throw new ConfigError(key, `must be a non-negative integer, got "${v}"`);
    return n;
  };
  const seed = int('seed', values.seed, 7788);
  const innerLrs = list('inner-lr', values['inner-lr'], 0.3, (n) => Number.isFinite(n) && n > 0, 'a positive number (list)', validate && !userKind);
  const innerSteps = list('inner-steps', values['inner-steps'], 5, (n) => Number.isInteger(n) && n >= 1, 'a positive integer (list)', validate && !userKind);
  const graphLrScale = values['graph-lr-scale'] === undefined ? 1 : Number(values['graph-lr-scale']);
  if (!Number.isFinite(graphLrScale) || graphLrScale < 0) throw new ConfigError('graph-lr-scale', `must be a non-negative number, got "${values['graph-lr-scale']}"`);
  const fraction = values['validation-fraction'] === undefined ? 0.2 : Number(values['validation-fraction']);
  if (!(fraction > 0 && fraction < 1)) throw new ConfigError('validation-fraction', `must be in (0, 1), got "${values['validation-fraction']}"`);
  const backendPref = (values.backend ?? 'auto') as BackendPreference;
  if (!['auto', 'native', 'wasm', 'cpu'].includes(backendPref)) throw new ConfigError('backend', `must be auto|native|wasm|cpu, got "${backendPref}"`);
  const limitRaw = values['limit-entities'];
  const limit = limitRaw === undefined ? undefined : int('limit-entities', limitRaw, 0);
  if (limit === 0) throw new ConfigError('limit-entities', 'must be at least 1');
  const logger = ctx.logger ?? createLogger();
  // The trainers report losses only in their log; the release carries the last epoch's.
  const { logger: tapped, losses } = lossTap(logger, 0);
  const backend = await initBackend(backendPref, logger);
  const checkpointDir = values.out;
  const printValidation = (rows: ValidationRow[], what: string): void => {
    if (values.json) stdout.write(JSON.stringify({ rows }) + '\n');
    else stdout.write(`${formatValidationTable(rows)}\n${what}; seed ${seed}; backend ${backend}\n`);
  };

  let bundle: Bundle;
  if (userKind) {
    const split = buildUserWarmupSplit(values.data);
    const some = firstEntities(split.hot, split.hotUsers.length, limit);
    const data = { layout: split.layout, vocabSize: split.vocabSize, hot: some.hot, hotUserCount: some.count };
    if (validate) {
      const res = await runUserValidation(
        { ...split, hot: some.hot, hotUsers: split.hotUsers.slice(0, some.count) },
        {
          models: [kind as UserKind],
          seed,
          fraction,
          protocol: {
            coldnas: { searchEpochs: int('search-epochs', values['search-epochs'], 20), epochs: int('epochs', values.epochs, 40) },
            fixedAdaptive: { baseEpochs: int('epochs', values.epochs, 3), epochs: int('meta-epochs', values['meta-epochs'], 40) },
          },
          logger: tapped,
        },
      );
      printValidation(res.rows, `ml-100k users: ${res.split.hotUsers.length} training users, ${res.split.newUsers.length} validation users (${res.split.test.n} validation test rows)`);
      return 0;
    }
    if (kind === 'coldnas') {
      const res = await trainColdNas(data, {
        seed,
        searchEpochs: int('search-epochs', values['search-epochs'], 20),
        epochs: int('epochs', values.epochs, 40),
        checkpointDir,
        resume: values.resume,
        logger: tapped,
      });
      stdout.write(`coldnas: ${res.epochsDone} epochs, structure ${res.structure.ops.join(', ')}, ${Math.round(res.examplesPerSec)} examples/s on ${backend}, checkpoint in ${checkpointDir}\n`);
      bundle = bundleUser(res.model);
    } else {
      const res = await trainFixedAdaptive(data, {
        seed,
        baseEpochs: int('epochs', values.epochs, 3),
        epochs: int('meta-epochs', values['meta-epochs'], 40),
        checkpointDir,
        resume: values.resume,
        logger: tapped,
      });
      stdout.write(`fixed-adaptive: ${res.epochsDone} epochs, ${Math.round(res.examplesPerSec)} examples/s on ${backend}, checkpoint in ${checkpointDir}\n`);
      bundle = bundleUser(res.model);
    }
  } else {
    const { format, split: full } = loadItemData(values.data);
    const some = firstEntities(full.hot, full.hotItems.length, limit);
    const split = { ...full, hot: some.hot, hotItems: full.hotItems.slice(0, some.count) };
    logger.info('training data loaded', { format, hotItems: split.hotItems.length, hotRows: split.hot.n });
    const train = {
      baseEpochs: int('epochs', values.epochs, 3),
      metaEpochs: int('meta-epochs', values['meta-epochs'], 10),
      graphLrScale,
    };
    if (validate) {
      const grid = innerLrs.flatMap((lr) => innerSteps.map((steps) => ({ lr, steps })));
      const res = await runValidation(split, { kind: kind as TrainKind, seed, fraction, grid, train, logger: tapped });
      printValidation(res.rows, `${format}: ${res.split.hotItems.length} training items, ${res.split.coldItems.length} validation items (${res.split.test.n} validation test rows)`);
      return 0;
    }
    const res = await trainMeta(
      { layout: split.layout, vocabSize: split.vocabSize, hot: split.hot, hotItemCount: split.hotItems.length },
      {
        ...train,
        kind: kind as TrainKind,
        seed,
        innerLr: at(innerLrs, 0, '--inner-lr value'),
        innerSteps: at(innerSteps, 0, '--inner-steps value'),
        checkpointDir,
        resume: values.resume,
        logger: tapped,
      },
    );
    stdout.write(
      `${kind}: ${res.epochsDone} epochs on ${split.hot.n} rows of ${split.hotItems.length} ${format} items, ${Math.round(res.examplesPerSec)} examples/s on ${backend}, checkpoint in ${checkpointDir}\n`,
    );
    if (values['release-dir'] === undefined) return 0;
    if (!(res.model instanceof DeepFm || res.model instanceof Emerg)) throw new ConfigError('model', `${kind} trained a model that cannot be bundled`);
    bundle = bundleCtr(res.model);
  }
  const releaseDir = values['release-dir'];
  if (releaseDir === undefined) return 0;
  const store = new ReleaseStore({ root: releaseDir });
  const lastLoss = losses.at(-1);
  const manifest = await store.publish({
    model: kind,
    architecture: bundle.architecture,
    metrics: lastLoss === undefined ? {} : { trainLoss: lastLoss.loss },
    files: bundle.files,
  });
  await store.promote(kind, manifest.version);
  stdout.write(`release ${kind}/${manifest.version} published and promoted in ${releaseDir}\n${manifest.version}\n`);
  return 0;
}
