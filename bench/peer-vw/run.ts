/**
 * Peer benchmark: Thaw's adapters beside Vowpal Wabbit and the running-rates LR on MovieLens-100K.
 * A thin wrapper of `thaw eval --protocol stream --source ml100k:DIR --peer vw,counts`
 * (evaluation/stream/run.ts `runStreamEval`), the one implementation of that comparison: the same
 * two-sided FM and meta-learned releases trained on the history, every side's worker in lockstep
 * through the production BatchProcessor with the cross-side read, shared parameters that keep
 * learning (a release every `--sync-every` events), the peers on the same rows. This bench fixes the
 * dataset, prints the command's tables and a summary of the early rows (1-5 prior events) per side,
 * and writes the command's JSON. See README.md in this folder.
 *
 *   node --import tsx bench/peer-vw/run.ts [--data DIR] [--history-fraction 0.2] [--sync-every 10000]
 *        [--adapters fm-adagrad,emerg,coldnas,fixed-adaptive] [--release-dir DIR] [--seed 7788] [--out .thaw/bench/peer-vw.json]
 *
 * The same as `npx thaw eval --protocol stream --source ml100k:DIR --peer vw,counts [options]`.
 * Markdown on stdout, progress and logs on stderr. Measures; never asserts.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EARLY_BUCKET } from '../../analytics/types.js';
import { STREAM_ADAPTERS } from '../../evaluation/stream/families.js';
import { formatStreamEval, streamEvalJson } from '../../evaluation/stream/report.js';
import { runStreamEval, type StreamEvalResult } from '../../evaluation/stream/run.js';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { SIDES } from '../../schemas/types.js';
import { markdownTable, positiveOption } from '../stats.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Per side, every method's AUC and log loss on the early rows (the goal's row), best AUC first. */
export function earlyTable(r: StreamEvalResult): string {
  const rows = r.rows.filter((x) => x.bucket === EARLY_BUCKET).sort((a, b) => SIDES.indexOf(a.side) - SIDES.indexOf(b.side) || b.auc - a.auc);
  return markdownTable(
    ['side', 'method', 'release', 'n', `AUC ${EARLY_BUCKET}`, `log loss ${EARLY_BUCKET}`],
    rows.map((x) => [x.side, x.adapter, x.release, x.n.toLocaleString('en-US'), Number.isFinite(x.auc) ? x.auc.toFixed(3) : '–', Number.isFinite(x.logLoss) ? x.logLoss.toFixed(3) : '–']),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: process.env.THAW_ML100K_DIR ?? fileURLToPath(new URL('../../../shared/data/ml-100k', import.meta.url)) },
      'history-fraction': { type: 'string', default: '0.2' },
      'sync-every': { type: 'string' },
      adapters: { type: 'string' },
      'release-dir': { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string', default: join(ROOT, '.thaw', 'bench', 'peer-vw.json') },
    },
  });
  const historyFraction = Number(values['history-fraction']);
  if (!(historyFraction > 0 && historyFraction < 1)) throw new ConfigError('history-fraction', `must be in (0, 1), got ${values['history-fraction']}`);
  const adapters = values.adapters
    ?.split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  for (const a of adapters ?? []) if (!STREAM_ADAPTERS.includes(a)) throw new ConfigError('adapters', `unknown adapter "${a}"; known: ${STREAM_ADAPTERS.join(', ')}`);
  const syncEvery = values['sync-every'] === undefined ? undefined : Number(values['sync-every']);
  if (syncEvery !== undefined && !(Number.isSafeInteger(syncEvery) && syncEvery >= 0)) throw new ConfigError('sync-every', `must be an integer >= 0, got ${String(values['sync-every'])}`);
  const seed = values.seed === undefined ? undefined : positiveOption('seed', values.seed);
  const dir = resolve(values.data);
  const source = `ml100k:${dir}`;
  const log = createLogger((process.env.THAW_LOG_LEVEL as 'info' | undefined) ?? 'info', { bench: 'peer-vw' });
  const result = await runStreamEval({
    source: { kind: 'ml100k', dir },
    historyFraction,
    peers: ['vw', 'counts'],
    out: join(ROOT, '.thaw', 'bench', 'peer-vw'),
    logger: log,
    ...(adapters === undefined ? {} : { adapters, required: adapters }),
    ...(syncEvery === undefined ? {} : { syncEvery }),
    ...(seed === undefined ? {} : { seed }),
    ...(values['release-dir'] === undefined ? {} : { releaseDir: resolve(values['release-dir']) }),
  });
  await mkdir(dirname(values.out), { recursive: true });
  await writeFile(values.out, JSON.stringify({ benchmark: 'peer-vw', command: `thaw eval --protocol stream --source ${source} --peer vw,counts`, ...streamEvalJson(result) }, null, 2) + '\n');
  process.stdout.write(
    [formatStreamEval(result, source), `Early rows (${EARLY_BUCKET} prior events of the row's entity), every method, best first:`, '', earlyTable(result), '', `JSON: ${values.out}`, ''].join('\n'),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`peer-vw failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
