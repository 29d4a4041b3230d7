import { fileURLToPath } from 'node:url';
/**
 * Peer benchmark: Thaw's online adapters beside Vowpal Wabbit on the same MovieLens-100K stream,
 * predict-then-learn, AUC and log loss by warm-up bucket per side. See README.md in this folder.
 * VW's learning rate and the adapters' step-size-like options (select.ts) are chosen on the prefix;
 * `<adapter>` columns use the adapter's defaults, `<adapter>-tuned` the chosen value.
 *
 *   node --import tsx bench/peer-vw/run.ts [--data DIR] [--train-fraction 0.2] [--select-fraction 0.1] [--batch 500]
 *        [--adapters none,fm-adagrad,none-emerg,emerg,...] [--lrs 0.05,0.1,0.25,0.5,1] [--vw-optimizers sgd]
 *        [--releases .thaw/bench/peer-vw-releases] [--out .thaw/bench/peer-vw.json]
 *
 * Prints Markdown tables on stdout, progress as JSON lines on stderr, writes the JSON result file.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { readMl100k } from '../../sources/movielens.js';
import { markdownTable } from '../stats.js';
import { BUCKET_KEYS, bucketMetrics, EARLY, priorCounts, type BucketKey, type BucketMetrics } from './evaluate.js';
import type { PeerTrial } from '../../evaluation/peers/types.js';
import type { VwIds } from '../../evaluation/peers/vw-format.js';
import { runVwPeer, VW_DEFAULT_TRIALS } from '../../evaluation/peers/vw-peer.js';
import { VW_OPTIMIZERS, type VwSetting } from '../../evaluation/peers/vw-runner.js';
import type { MetaReleaseInfo } from './meta-releases.js';
import { selectSettings, type Selection } from './select.js';
import { adaptersOfSide, PEER_ADAPTERS, runThawSide, type PeerVariant } from './thaw-peer.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const SIDES: readonly Side[] = ['user', 'item'];
const VW = 'vw';
/** VW with only the id of the side the row is about (user id on user rows, item id on item rows). */
const VW_OWN_ID = 'vw-own-id';

interface VwRun {
  ids: VwIds;
  args: string[];
  trials: PeerTrial[];
  chosen: VwSetting;
  scores: Float64Array;
  ms: number;
}

/** One row of the result: a side's bucket with every method's metrics on the same events. */
export interface PeerRow {
  side: Side;
  bucket: BucketKey;
  n: number;
  ctr: number;
  /** method name (adapter names and `vw`) → AUC and log loss. */
  methods: Record<string, { auc: number; logLoss: number; meanScore: number }>;
}

function numberList(key: string, s: string): number[] {
  const xs = s.split(',').map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x) || x <= 0)) throw new ConfigError(key, `must be a comma-separated list of positive numbers, got "${s}"`);
  return xs;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: process.env.THAW_ML100K_DIR ?? fileURLToPath(new URL('../../../shared/data/ml-100k', import.meta.url)) },
      'train-fraction': { type: 'string', default: '0.2' },
      'select-fraction': { type: 'string', default: '0.1' },
      batch: { type: 'string', default: '500' },
      adapters: { type: 'string', default: Object.keys(PEER_ADAPTERS).join(',') },
      lrs: { type: 'string', default: '0.05,0.1,0.25,0.5,1' },
      'vw-optimizers': { type: 'string', default: 'sgd' },
      bits: { type: 'string', default: '22' },
      out: { type: 'string', default: join(ROOT, '.thaw', 'bench', 'peer-vw.json') },
      releases: { type: 'string', default: join(ROOT, '.thaw', 'bench', 'peer-vw-releases') },
    },
  });
  const log = createLogger(undefined, { bench: 'peer-vw' });
  const trainFraction = Number(values['train-fraction']);
  if (!(trainFraction > 0 && trainFraction < 1)) throw new ConfigError('train-fraction', `must be in (0, 1), got ${values['train-fraction']}`);
  const selectFraction = Number(values['select-fraction']);
  if (!(selectFraction >= 0 && selectFraction < trainFraction)) throw new ConfigError('select-fraction', `must be in [0, train-fraction), 0 = no selection, got ${values['select-fraction']}`);
  const batchSize = Number(values.batch);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ConfigError('batch', `must be an integer >= 1, got ${values.batch}`);
  const bits = Number(values.bits);
  if (!Number.isInteger(bits) || bits < 10 || bits > 30) throw new ConfigError('bits', `must be an integer in [10, 30], got ${values.bits}`);
  const rates = numberList('lrs', values.lrs);
  const optimizers = values['vw-optimizers'].split(',');
  if (optimizers.length === 0 || optimizers.some((x) => !(VW_OPTIMIZERS as readonly string[]).includes(x))) throw new ConfigError('vw-optimizers', `must be a comma-separated list of ${VW_OPTIMIZERS.join(', ')}, got "${values['vw-optimizers']}"`);
  // sgd tries --lrs; ftrl and pistol their default grids (evaluation/peers/vw-peer.ts).
  const vwTrials: VwSetting[] = [
    ...(optimizers.includes('sgd') ? rates.map((learningRate): VwSetting => ({ optimizer: 'sgd', learningRate })) : []),
    ...VW_DEFAULT_TRIALS.filter((t) => t.optimizer !== 'sgd' && optimizers.includes(t.optimizer)),
  ];
  const adapters = values.adapters.split(',').filter((a) => a !== '');
  const dataDir = resolve(values.data);
  const t0 = performance.now();

  const events: LabelledEvent[] = [];
  for await (const ev of readMl100k(dataDir)) events.push(ev);
  const trainN = Math.floor(events.length * trainFraction);
  const selN = Math.floor(events.length * selectFraction);
  const labels = Uint8Array.from(events, (e) => e.label);
  log.info('stream loaded', { events: events.length, trainN, dataDir });

  // VW: per variant, settings chosen on the prefix only, then one progressive pass over the whole
  // stream (evaluation/peers/vw-peer.ts). `both` sees user and item ids (the classic VW setup);
  // `user`/`item` see only that side's id, the identity information a Thaw adapter of that side has.
  const vwRuns = new Map<VwIds, VwRun>();
  let vwVersion = '';
  for (const ids of ['both', 'user', 'item'] as const) {
    const run = await runVwPeer(events, trainN, { ids, bits, trials: vwTrials, cacheDir: join(ROOT, '.thaw'), workDir: join(ROOT, '.thaw', 'bench'), logger: log });
    vwVersion = run.version;
    vwRuns.set(ids, { ids, args: run.args, trials: run.trials, chosen: run.chosen, scores: run.scores, ms: Math.round(run.ms) });
    log.info('vw run done', { ids, trials: run.trials, chosen: run.chosen });
  }

  const rows: PeerRow[] = [];
  const thawInfo: Record<string, { hotEntities: number; releases: Record<string, string>; ms: Record<string, number>; metaReleases: MetaReleaseInfo[]; selection: Selection[] }> = {};
  for (const side of SIDES) {
    const prior = priorCounts(events, side);
    // Settings chosen on the selection split (FM and releases on [0, selN), scored on [selN, trainN)),
    // then the reported run adds a `<adapter>-tuned` column where the choice differs from the default.
    const selection = selN > 0 ? await selectSettings(events, { side, adapters, selN, selEnd: trainN, batchSize, releaseDir: resolve(values.releases), logger: log }) : [];
    const tuned: PeerVariant[] = selection.filter((s) => s.chosen !== s.default).map((s) => ({ column: tunedColumn(s.adapter), adapter: s.adapter, options: s.options }));
    const { hotEntities, runs, releases } = await runThawSide(events, prior, { side, adapters: [...adapters, ...tuned], trainN, batchSize, releaseDir: resolve(values.releases), logger: log });
    // A choice equal to the default is the default run.
    for (const s of selection) {
      const same = runs.find((r) => r.adapter === s.adapter);
      if (s.chosen === s.default && same !== undefined) runs.push({ ...same, adapter: tunedColumn(s.adapter) });
    }
    thawInfo[side] = {
      hotEntities,
      releases: Object.fromEntries(runs.map((r) => [r.adapter, r.release])),
      ms: Object.fromEntries(runs.map((r) => [r.adapter, Math.round(r.ms)])),
      metaReleases: releases,
      selection,
    };
    log.info('thaw side done', { side, hotEntities, ms: thawInfo[side].ms });
    const perMethod = new Map<string, Record<BucketKey, BucketMetrics>>();
    for (const r of runs) perMethod.set(r.adapter, bucketMetrics(r.scores, labels, prior, trainN));
    perMethod.set(VW, bucketMetrics(vwRuns.get('both')!.scores, labels, prior, trainN));
    perMethod.set(VW_OWN_ID, bucketMetrics(vwRuns.get(side)!.scores, labels, prior, trainN));
    for (const bucket of BUCKET_KEYS) {
      const ref = perMethod.get(VW)![bucket];
      const methods: PeerRow['methods'] = {};
      for (const [m, b] of perMethod) methods[m] = { auc: b[bucket].auc, logLoss: b[bucket].logLoss, meanScore: b[bucket].meanScore };
      rows.push({ side, bucket, n: ref.n, ctr: ref.ctr, methods });
    }
  }

  const label = (b: BucketKey): string => (b === EARLY ? `**${EARLY} (early)**` : b);
  // One table per side: each side has its own adapters (meta-learned ones run on one side only).
  const table = (metric: 'auc' | 'logLoss', side: Side): string => {
    const methods = [...adaptersOfSide(adapters, side).flatMap((a) => (thawInfo[side]?.selection.some((s) => s.adapter === a) === true ? [a, tunedColumn(a)] : [a])), VW, VW_OWN_ID];
    return markdownTable(
      ['side', 'bucket', 'n', ...methods.map((m) => `${metric === 'auc' ? 'AUC' : 'log loss'} ${m}`)],
      rows.filter((r) => r.side === side).map((r) => [r.side, label(r.bucket), r.n.toLocaleString('en-US'), ...methods.map((m) => r.methods[m]?.[metric] ?? NaN)]),
    );
  };
  const metaLines = SIDES.flatMap((side) =>
    (thawInfo[side]?.metaReleases ?? []).map(
      (m) => `  ${m.kind} (${side}): ${m.release}, ${m.hotEntities} hot ${side}s, ${m.trainRows} rows, ${m.reused ? 'reused' : `trained in ${m.trainSec.toFixed(0)} s`}; ${JSON.stringify(m.hyper)}`,
    ),
  );
  // Early rows, default vs chosen settings, beside VW.
  const early = SIDES.flatMap((side) => {
    const row = rows.find((r) => r.side === side && r.bucket === EARLY);
    return (thawInfo[side]?.selection ?? []).map((s) => [
      side,
      s.adapter,
      `${s.option} ${s.default} → ${s.chosen}`,
      s.trials.map((t) => `${t.value}: ${t.auc.toFixed(4)}`).join(', ') + ` (${s.rows}, n ${s.trials[0]?.n ?? 0})`,
      row?.methods[s.adapter]?.auc ?? NaN,
      row?.methods[tunedColumn(s.adapter)]?.auc ?? NaN,
      row?.methods[VW]?.auc ?? NaN,
      row?.methods[VW_OWN_ID]?.auc ?? NaN,
    ]);
  });
  const earlyTable = markdownTable(['side', 'adapter', 'default → chosen', 'selection AUC per value', 'early AUC default', 'early AUC tuned', 'vw', 'vw-own-id'], early);
  const result = {
    benchmark: 'peer-vw',
    dataset: 'ml100k',
    dataDir,
    events: events.length,
    trainEvents: trainN,
    selection: { selectEvents: selN, scoredOn: [selN, trainN], minEarly: 200 },
    evalEvents: events.length - trainN,
    batchSize,
    thaw: thawInfo,
    vw: { version: vwVersion, runs: [...vwRuns.values()].map((r) => ({ ids: r.ids, args: r.args, trials: r.trials, chosen: r.chosen, ms: r.ms })) },
    rows,
    totalMs: Math.round(performance.now() - t0),
  };
  await mkdir(dirname(values.out), { recursive: true });
  await writeFile(values.out, JSON.stringify(result, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');

  process.stdout.write(
    [
      `Peer benchmark on MovieLens-100K (${events.length.toLocaleString('en-US')} events, label rating >= 4). Evaluated on the last ` +
        `${(events.length - trainN).toLocaleString('en-US')} events; the first ${trainN.toLocaleString('en-US')} train the shared FM and are seen online by every method.`,
      `VW ${result.vw.version}; setting chosen per variant by progressive AUC on the first ${trainN.toLocaleString('en-US')} events only:`,
      ...[...vwRuns.values()].map((r) => `  ids ${r.ids}: ${r.args.join(' ')}   (tried ${r.trials.map((t) => `${Object.values(t.settings).join(' ')} → ${t.auc.toFixed(4)}`).join(', ')})`),
      `Columns: vw = VW with user and item ids; vw-own-id = VW with only the id of the row's side (what a Thaw adapter of that side can know);`,
      `none = the shared FM frozen; none-<kind> = the <kind> release frozen (its initial states, never adapted);`,
      `<adapter> = default options; <adapter>-tuned = the setting chosen on the selection split (below).`,
      ...(metaLines.length > 0 ? [`Meta-learned releases (trainFromEvents on the same ${trainN.toLocaleString('en-US')}-event prefix):`, ...metaLines] : []),
      '',
      ...(early.length > 0
        ? [
            `Adapter settings chosen on a selection run (FM and releases trained on the first ${selN.toLocaleString('en-US')} events, adapters scored on events ` +
              `${selN.toLocaleString('en-US')}-${trainN.toLocaleString('en-US')}); <adapter>-tuned columns use the choice. Early row (1-5) of the evaluation window:`,
            earlyTable,
            '',
          ]
        : []),
      ...SIDES.flatMap((side) => [table('auc', side), '']),
      ...SIDES.flatMap((side) => [table('logLoss', side), '']),
      `JSON: ${values.out}`,
      '',
    ].join('\n'),
  );
}

function tunedColumn(adapter: string): string {
  return `${adapter}-tuned`;
}

main().catch((err: unknown) => {
  process.stderr.write(`peer-vw failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
