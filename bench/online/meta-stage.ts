/**
 * The online META stage (meta parameter partition, arXiv 1912.04108: +2.46 AUC points from online
 * meta-training on streaming users) on MovieLens-100K users with the fixed/adaptive split:
 *
 * - offline release: trainers/event-trainer.ts `trainFromEvents` (kind fixed-adaptive) on the first
 *   half of the ratings in time order;
 * - the second half is scored prequentially by the `fixed-adaptive` adapter (consumers/processor.ts,
 *   in-memory store) in three arms, all starting from that release:
 *   offline:      the release as is;
 *   +meta:        + the online meta stage: fa.init / fa.lr re-learned from users warming up in the
 *                 stream, fixed part untouched (FixedAdaptiveOnlineLearner with fixedLr 0, no table);
 *   +meta+fixed:  + the trunk and table trained from the stream too (the online trainer's defaults).
 *   The online arms get a new release every `syncEvery` events, swapped between batches.
 *
 * Validation (`validateMetaStage`, run.ts `--validate`): the same protocol moved before the scored
 * half: offline release on the first 30% of the ratings, online arms scored on 30–50%. The online
 * meta stage's hyper-parameters (objective, window K, meta lr, tasks per step, steps per batch) are
 * chosen there, by overall AUC of the +meta arm; the scored half (50–100%) is never looked at.
 */
import { FixedAdaptiveAdapter } from '../../adapters/fixed-adaptive.js';
import type { BatchItem } from '../../consumers/processor.js';
import { initBackend } from '../../models/backend.js';
import type { EventLayout } from '../../models/event-layout.js';
import { FixedAdaptive } from '../../models/fixed-adaptive.js';
import { bundleUser, userModelFromRelease } from '../../models/onnx/bundle.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { readMl100k } from '../../sources/movielens.js';
import { trainFromEvents } from '../../trainers/event-trainer.js';
import { FixedAdaptiveOnlineLearner, type FixedAdaptiveLearnerOptions } from '../../trainers/online/fixed-adaptive-learner.js';
import { PrequentialArm, bucketAucs, type BucketAuc } from './prequential.js';
import { gainTableOf } from './table.js';

export interface MetaStageOptions {
  /** MovieLens-100K directory. */
  dataDir: string;
  /** Share of the ratings (time order) the offline release trains on. @default 0.5 */
  historyShare?: number;
  /** Events between releases of the online arms. @default 5000 */
  syncEvery?: number;
  /** Micro-batch size. @default 500 */
  batch?: number;
  /** Seed of the offline training. @default 7788 */
  seed?: number;
  /** Share of the ratings (time order) where scoring stops. @default 1 */
  endShare?: number;
  /** Online arms (name and learner options). @default +meta (fixedLr 0, no table) and +meta+fixed (defaults) */
  arms?: { name: string; learner: FixedAdaptiveLearnerOptions }[];
}

/** The two arms of the scored protocol, with the learner's defaults. */
export const DEFAULT_META_ARMS: { name: string; learner: FixedAdaptiveLearnerOptions }[] = [
  { name: '+meta', learner: { fixedLr: 0, trainTable: false } },
  { name: '+meta+fixed', learner: {} },
];

export interface MetaStageResult {
  history: number;
  evaluated: number;
  releases: number;
  trainSec: number;
  arms: { name: string; metaTasks: number; aucs: BucketAuc[] }[];
  seconds: number;
}

function cloneModel(model: FixedAdaptive, layout: EventLayout): FixedAdaptive {
  const b = bundleUser(model, { eventLayout: layout });
  const m = userModelFromRelease({ manifest: { model: 'bench', version: 'clone', architecture: b.architecture }, files: b.files });
  if (!(m instanceof FixedAdaptive)) throw new Error('clone is not fixed-adaptive');
  return m;
}

export async function runMetaStage(opts: MetaStageOptions): Promise<MetaStageResult> {
  const t0 = performance.now();
  await initBackend('auto');
  const events: LabelledEvent[] = [];
  for await (const ev of readMl100k(opts.dataDir)) events.push(ev);
  const cut = Math.floor(events.length * (opts.historyShare ?? 0.5));
  const end = Math.floor(events.length * (opts.endShare ?? 1));
  const trained = await trainFromEvents({ kind: 'fixed-adaptive', events: events.slice(0, cut), ...(opts.seed === undefined ? {} : { seed: opts.seed }) });
  const offline = trained.model as FixedAdaptive;
  const layout = trained.layout;
  const syncEvery = opts.syncEvery ?? 5000;
  const batch = opts.batch ?? 500;
  const arm = (name: string, m: FixedAdaptive, v: string): PrequentialArm => new PrequentialArm(name, new FixedAdaptiveAdapter(m, layout, v));
  const online: { arm: PrequentialArm; learner: FixedAdaptiveOnlineLearner }[] = [];
  const mk = (name: string, o: FixedAdaptiveLearnerOptions): void => {
    const learner = new FixedAdaptiveOnlineLearner(cloneModel(offline, layout), layout, o);
    online.push({ arm: arm(name, cloneModel(learner.model, layout), `${name}/0`), learner });
  };
  const frozen = arm('offline', cloneModel(offline, layout), 'offline');
  for (const a of opts.arms ?? DEFAULT_META_ARMS) mk(a.name, a.learner);
  let releases = 0;
  let since = 0;
  for (let from = cut; from < end; from += batch) {
    const items: BatchItem[] = events.slice(from, Math.min(end, from + batch)).map((event, i) => ({ offset: from + i, event }));
    await frozen.process(items);
    for (const o of online) {
      await o.arm.process(items);
      o.learner.observe(items.map((x) => x.event));
    }
    since += items.length;
    if (since >= syncEvery) {
      since = 0;
      releases++;
      for (const o of online) {
        o.learner.flush();
        o.arm.swap(new FixedAdaptiveAdapter(cloneModel(o.learner.model, layout), layout, `${o.arm.name}/${releases}`));
      }
    }
  }
  return {
    history: cut,
    evaluated: frozen.sink.n,
    releases,
    trainSec: trained.stats.trainSec,
    arms: [{ name: 'offline', metaTasks: 0, aucs: bucketAucs(frozen.sink) }, ...online.map((o) => ({ name: o.arm.name, metaTasks: o.learner.stats().metaTasks, aucs: bucketAucs(o.arm.sink) }))],
    seconds: (performance.now() - t0) / 1000,
  };
}

export function metaReport(r: MetaStageResult): string {
  const [base, ...rest] = r.arms;
  if (base === undefined) throw new RangeError('no arms: nothing to report');
  return [
    '## Online meta stage: fixed-adaptive on MovieLens-100K users',
    '',
    `offline release trained on the first ${r.history} ratings (time order, ${r.trainSec.toFixed(0)} s); ${r.evaluated} later ratings scored prequentially; ` +
      `online arms: ${r.releases} releases; meta tasks ${rest.map((a) => `${a.name} ${a.metaTasks}`).join(', ')}; ${r.seconds.toFixed(0)} s`,
    '',
    ...rest.flatMap((a) => [gainTableOf(base.name, base.aucs, a.name, a.aucs), '']),
  ].join('\n');
}

/** One validation candidate: learner options of the +meta arm (fixed part frozen). */
export interface MetaCandidate {
  name: string;
  learner: FixedAdaptiveLearnerOptions;
}

/** The grid searched on the validation part (the scored half is never used). */
export function metaValidationGrid(round = 1): MetaCandidate[] {
  if (round === 2) {
    // Round 2: around round 1's best (prequential, K 20, lr 0.05, 4 steps per batch).
    const r2: MetaCandidate[] = [
      { name: 'preq K20 lr0.05 x4', learner: { windows: { size: 20 }, metaLr: 0.05, stepsPerBatch: 4 } },
      { name: 'preq K20 lr0.05 x8', learner: { windows: { size: 20 }, metaLr: 0.05, stepsPerBatch: 8 } },
      { name: 'preq K20 lr0.1 x4', learner: { windows: { size: 20 }, metaLr: 0.1, stepsPerBatch: 4 } },
      { name: 'preq K30 lr0.05 x4', learner: { windows: { size: 30 }, metaLr: 0.05, stepsPerBatch: 4 } },
      { name: 'preq K20 lr0.05 x4 u8', learner: { windows: { size: 20 }, metaLr: 0.05, stepsPerBatch: 4, usersPerStep: 8 } },
      { name: 'preq K20 lr0.05 x4 cold.2', learner: { windows: { size: 20 }, metaLr: 0.05, stepsPerBatch: 4, coldWeight: 0.2 } },
      { name: 'preq K20 lr0.05 x8 cold.2', learner: { windows: { size: 20 }, metaLr: 0.05, stepsPerBatch: 8, coldWeight: 0.2 } },
    ];
    return r2.map((c) => ({ name: c.name, learner: { fixedLr: 0, trainTable: false, objective: 'prequential', ...c.learner } }));
  }
  const out: MetaCandidate[] = [{ name: 'split K10 lr.005 (old default)', learner: { objective: 'split' } }];
  out.push({ name: 'split K10 lr.02 x4', learner: { objective: 'split', metaLr: 0.02, stepsPerBatch: 4 } });
  for (const size of [10, 20])
    for (const metaLr of [0.005, 0.02, 0.05])
      for (const steps of [1, 4]) out.push({ name: `preq K${size} lr${metaLr} x${steps}`, learner: { objective: 'prequential', windows: { size }, metaLr, stepsPerBatch: steps } });
  for (const usersPerStep of [8, 32])
    out.push({ name: `preq K10 lr.02 x4 u${usersPerStep}`, learner: { objective: 'prequential', windows: { size: 10 }, metaLr: 0.02, stepsPerBatch: 4, usersPerStep } });
  return out.map((c) => ({ name: c.name, learner: { fixedLr: 0, trainTable: false, ...c.learner } }));
}

/** Runs the grid on the validation part: offline on [0, 30%), scored on [30%, 50%). */
export async function validateMetaStage(opts: MetaStageOptions & { candidates?: MetaCandidate[]; round?: number }): Promise<MetaStageResult> {
  return runMetaStage({ ...opts, historyShare: opts.historyShare ?? 0.3, endShare: opts.endShare ?? 0.5, arms: opts.candidates ?? metaValidationGrid(opts.round) });
}

/** Overall and early-bucket AUC of every validation arm against the offline arm. */
export function validationReport(r: MetaStageResult): string {
  const [base, ...rest] = r.arms;
  if (base === undefined) throw new RangeError('no arms: nothing to report');
  const get = (a: BucketAuc[], b: string): number => a.find((x) => x.bucket === b)?.auc ?? NaN;
  const pts = (x: number): string => (Number.isFinite(x) ? (x * 100).toFixed(2) : '–');
  const lines = [
    '## Online meta stage, validation part (offline on the first 30% of ML-100K, scored 30–50%)',
    '',
    `${r.evaluated} ratings scored; offline AUC ${get(base.aucs, 'all').toFixed(4)}; ${r.seconds.toFixed(0)} s`,
    '',
    '| arm | all AUC | gain all | gain 0 | gain 1-2 | gain 3-5 | gain 6-10 |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  const sorted = [...rest].sort((x, y) => get(y.aucs, 'all') - get(x.aucs, 'all'));
  for (const a of sorted) {
    const g = (b: string): string => pts(get(a.aucs, b) - get(base.aucs, b));
    lines.push(`| ${a.name} | ${get(a.aucs, 'all').toFixed(4)} | ${g('all')} | ${g('0')} | ${g('1-2')} | ${g('3-5')} | ${g('6-10')} |`);
  }
  return lines.join('\n');
}
