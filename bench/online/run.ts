/**
 * `npm run bench -- --only online [-- options]`: the online trainer's two gains, measured
 * prequentially without Kafka (see bench/README.md):
 *
 * 1. drift: fm-adagrad on the items of a drifting synthetic stream, shared FM frozen at the offline
 *    release vs refreshed every sync interval by the online learner (bench/online/drift.ts);
 * 2. meta: fixed-adaptive on MovieLens-100K users, offline release vs offline + the online meta
 *    stage (bench/online/meta-stage.ts);
 * 3. meta-items: EmerG on MovieLens-100K items, offline release vs + the online trainer
 *    (bench/online/meta-items.ts).
 *
 * Options: --events N (default 1000000) --drift X (0.5) --seed N (1) --prefix-share X (0.2)
 *          --sync-every N (50000) --batch N (1000) --only-part drift|meta|meta-items --data DIR (ml-100k)
 *          --validate [--round 1|2] (only the meta stage's hyper-parameter grid on the validation
 *          part: offline on the first 30% of ML-100K, scored 30-50%; round 2 refines round 1's best)
 * Prints Markdown tables on stdout; writes .thaw/bench/online.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runDriftExperiment, type DriftResult } from './drift.js';
import { gainTableOf } from './table.js';

const ROOT = resolve(import.meta.dirname, '../..');

function pct(x: number): string {
  return Number.isFinite(x) ? x.toFixed(4) : '–';
}

function driftReport(r: DriftResult, args: Record<string, unknown>): string {
  const tenths = r.byTenth.map((t, i) => `| ${i + 1} | ${pct(t.frozen)} | ${pct(t.refreshed)} | ${((t.refreshed - t.frozen) * 100).toFixed(2)} |`);
  return [
    `## Fresh shared parameters on a drifting stream (fm-adagrad, items)`,
    '',
    `synthetic ${JSON.stringify(args)}: offline FM trained on the first ${r.prefixEvents} events; ${r.evaluated} events evaluated prequentially; ` +
      `refreshed arm: ${r.releases} releases (every ${String(args.syncEvery)} events), ${r.metaTasks} meta tasks; ${r.seconds.toFixed(0)} s`,
    '',
    gainTableOf('frozen', r.frozen, 'refreshed', r.refreshed),
    '',
    'AUC by tenth of the evaluated stream (drift grows along it):',
    '',
    '| tenth | frozen | refreshed | gain (points) |',
    '|---:|---:|---:|---:|',
    ...tenths,
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      events: { type: 'string' },
      drift: { type: 'string' },
      seed: { type: 'string' },
      'prefix-share': { type: 'string' },
      'sync-every': { type: 'string' },
      batch: { type: 'string' },
      'only-part': { type: 'string' },
      data: { type: 'string' },
      validate: { type: 'boolean' },
      round: { type: 'string' },
    },
  });
  const num = (v: string | undefined, d: number): number => (v === undefined ? d : Number(v));
  const out: Record<string, unknown> = {};
  // --validate runs the meta stage's validation grid only (never the scored parts).
  const part = values.validate === true ? 'validate' : values['only-part'];
  if (part === undefined || part === 'drift') {
    const args = {
      events: num(values.events, 1_000_000),
      drift: num(values.drift, 0.5),
      seed: num(values.seed, 1),
      prefixShare: num(values['prefix-share'], 0.2),
      syncEvery: num(values['sync-every'], 50_000),
    };
    process.stderr.write(`online/drift: ${JSON.stringify(args)}\n`);
    const r = await runDriftExperiment({
      stream: { events: args.events, drift: args.drift, seed: args.seed },
      prefixShare: args.prefixShare,
      syncEvery: args.syncEvery,
      batch: num(values.batch, 1000),
      onProgress: (n) => process.stderr.write(`  evaluated ${n}\n`),
    });
    process.stdout.write(driftReport(r, args) + '\n\n');
    out.drift = { args, ...r };
  }
  if (part === 'validate') {
    // Hyper-parameters of the online meta stage, chosen before (never on) the scored half.
    const { validateMetaStage, validationReport } = await import('./meta-stage.js');
    const r = await validateMetaStage({ dataDir: values.data ?? resolve(ROOT, '../shared/data/ml-100k'), seed: num(values.seed, 1), round: num(values.round, 1) });
    process.stdout.write(validationReport(r) + '\n\n');
    out.validation = r;
  } else if (part === undefined || part === 'meta') {
    const { runMetaStage, metaReport } = await import('./meta-stage.js');
    const r = await runMetaStage({ dataDir: values.data ?? resolve(ROOT, '../shared/data/ml-100k'), seed: num(values.seed, 1) });
    process.stdout.write(metaReport(r) + '\n\n');
    out.meta = r;
  }
  if (part === undefined || part === 'meta-items') {
    const { runItemMeta, itemMetaReport } = await import('./meta-items.js');
    const r = await runItemMeta({ dataDir: values.data ?? resolve(ROOT, '../shared/data/ml-100k'), seed: num(values.seed, 1) });
    process.stdout.write(itemMetaReport(r) + '\n\n');
    out.metaItems = r;
  }
  await mkdir(resolve(ROOT, '.thaw/bench'), { recursive: true });
  await writeFile(resolve(ROOT, values.validate === true ? '.thaw/bench/online-validation.json' : '.thaw/bench/online.json'), JSON.stringify(out, null, 2) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench online failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
