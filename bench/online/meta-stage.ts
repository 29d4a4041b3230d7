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
}

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
  const m = userModelFromRelease({ manifest: { model: 'bench', version: 'clone', parent: null, createdAtMs: 0, architecture: b.architecture, metrics: {}, files: {} }, files: b.files });
  if (!(m instanceof FixedAdaptive)) throw new Error('clone is not fixed-adaptive');
  return m;
}

export async function runMetaStage(opts: MetaStageOptions): Promise<MetaStageResult> {
  const t0 = performance.now();
  await initBackend('auto');
  const events: LabelledEvent[] = [];
  for await (const ev of readMl100k(opts.dataDir)) events.push(ev);
  const cut = Math.floor(events.length * (opts.historyShare ?? 0.5));
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
  mk('+meta', { fixedLr: 0, trainTable: false });
  mk('+meta+fixed', {});
  let releases = 0;
  let since = 0;
  for (let from = cut; from < events.length; from += batch) {
    const items: BatchItem[] = events.slice(from, from + batch).map((event, i) => ({ offset: from + i, event }));
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
    arms: [
      { name: 'offline', metaTasks: 0, aucs: bucketAucs(frozen.sink) },
      ...online.map((o) => ({ name: o.arm.name, metaTasks: o.learner.stats().metaTasks, aucs: bucketAucs(o.arm.sink) })),
    ],
    seconds: (performance.now() - t0) / 1000,
  };
}

export function metaReport(r: MetaStageResult): string {
  const [base, ...rest] = r.arms;
  return [
    '## Online meta stage: fixed-adaptive on MovieLens-100K users',
    '',
    `offline release trained on the first ${r.history} ratings (time order, ${r.trainSec.toFixed(0)} s); ${r.evaluated} later ratings scored prequentially; ` +
      `online arms: ${r.releases} releases; meta tasks ${rest.map((a) => `${a.name} ${a.metaTasks}`).join(', ')}; ${r.seconds.toFixed(0)} s`,
    '',
    ...rest.flatMap((a) => [gainTableOf(base!.name, base!.aucs, a.name, a.aucs), '']),
  ].join('\n');
}
