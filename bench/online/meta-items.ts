/**
 * The online trainer on ITEMS with EmerG, same protocol as meta-stage.ts on MovieLens-100K:
 *
 * - offline release: trainers/event-trainer.ts `trainFromEvents` (kind emerg) on the first half of
 *   the ratings in time order;
 * - the second half is scored prequentially by the `emerg` adapter (consumers/processor.ts,
 *   in-memory store, adapter defaults) in arms that all start from that release:
 *   offline:        the release as is;
 *   +meta:          + the online meta steps only (generators, hypernetwork and the shared dense
 *                   params through the meta loss, from items warming up now; no supervised steps);
 *   +meta+shared:   + the supervised steps of the shared part on every event (the trainer's defaults).
 *   The online arms get a new release every `syncEvery` events, swapped between batches (states kept).
 */
import { EmergAdapter } from '../../adapters/emerg.js';
import type { BatchItem } from '../../consumers/processor.js';
import { initBackend } from '../../models/backend.js';
import { Emerg } from '../../models/emerg.js';
import type { EventLayout } from '../../models/event-layout.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { readMl100k } from '../../sources/movielens.js';
import { trainFromEvents } from '../../trainers/event-trainer.js';
import { EmergOnlineLearner, type EmergLearnerOptions } from '../../trainers/online/emerg-learner.js';
import { PrequentialArm, bucketAucs, type BucketAuc } from './prequential.js';
import { gainTableOf } from './table.js';
import { at } from '../../lib/at.js';

export interface ItemMetaOptions {
  /** MovieLens-100K directory. */
  dataDir: string;
  /** Share of the ratings (time order) the offline release trains on. @default 0.5 */
  historyShare?: number;
  /** Share of the ratings where scoring stops. @default 1 */
  endShare?: number;
  /** Events between releases of the online arms. @default 5000 */
  syncEvery?: number;
  /** Micro-batch size. @default 500 */
  batch?: number;
  /** Seed of the offline training. @default 7788 */
  seed?: number;
  /** Online arms. @default +meta and +meta+shared */
  arms?: { name: string; learner: EmergLearnerOptions }[];
}

export const DEFAULT_ITEM_ARMS: { name: string; learner: EmergLearnerOptions }[] = [
  { name: '+meta', learner: { sharedLr: 0, trainTable: false, idLr: 0 } },
  { name: '+meta+shared', learner: {} },
];

export interface ItemMetaResult {
  history: number;
  evaluated: number;
  releases: number;
  trainSec: number;
  arms: { name: string; metaTasks: number; aucs: BucketAuc[] }[];
  seconds: number;
}

/** An independent copy of an EmerG (adapters freeze theirs; the learner trains its own). */
export function cloneEmerg(m: Emerg): Emerg {
  const c = new Emerg({ layout: m.layout, vocab: m.table.rows, dim: m.dim, layers: m.layers, genHidden: at(m.dense.get('gen.graph.w1').shape, 2, 'gen.graph.w1 dimension'), firstOrder: m.firstOrder });
  c.table.data.set(m.table.data);
  for (const n of m.dense.names()) c.dense.get(n).data.set(m.dense.get(n).data);
  return c;
}

export async function runItemMeta(opts: ItemMetaOptions): Promise<ItemMetaResult> {
  const t0 = performance.now();
  await initBackend('auto');
  const events: LabelledEvent[] = [];
  for await (const ev of readMl100k(opts.dataDir)) events.push(ev);
  const cut = Math.floor(events.length * (opts.historyShare ?? 0.5));
  const end = Math.floor(events.length * (opts.endShare ?? 1));
  const trained = await trainFromEvents({ kind: 'emerg', events: events.slice(0, cut), ...(opts.seed === undefined ? {} : { seed: opts.seed }) });
  const offline = trained.model as Emerg;
  const layout: EventLayout = trained.layout;
  const syncEvery = opts.syncEvery ?? 5000;
  const batch = opts.batch ?? 500;
  const arm = (name: string, m: Emerg, v: string): PrequentialArm => new PrequentialArm(name, new EmergAdapter(m, layout, v));
  const frozen = arm('offline', cloneEmerg(offline), 'offline');
  const online = (opts.arms ?? DEFAULT_ITEM_ARMS).map((a) => {
    const learner = new EmergOnlineLearner(cloneEmerg(offline), layout, a.learner);
    return { arm: arm(a.name, cloneEmerg(learner.model), `${a.name}/0`), learner };
  });
  let releases = 0;
  let since = 0;
  for (let from = cut; from < end; from += batch) {
    const items: BatchItem[] = events.slice(from, Math.min(end, from + batch)).map((event, i) => ({ offset: from + i, event }));
    await frozen.process(items);
    for (const o of online) {
      await o.arm.process(items);
      // The trainer learns from the batch after the workers scored it (its own consumer group).
      o.learner.observe(items.map((x) => x.event));
    }
    since += items.length;
    if (since >= syncEvery) {
      since = 0;
      releases++;
      for (const o of online) {
        o.learner.flush();
        o.arm.swap(new EmergAdapter(cloneEmerg(o.learner.model), layout, `${o.arm.name}/${releases}`));
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

export function itemMetaReport(r: ItemMetaResult): string {
  const [base, ...rest] = r.arms;
  if (base === undefined) throw new RangeError('no arms: nothing to report');
  return [
    '## Online meta stage on items: EmerG on MovieLens-100K items',
    '',
    `offline release trained on the first ${r.history} ratings (time order, ${r.trainSec.toFixed(0)} s); ${r.evaluated} later ratings scored prequentially; ` +
      `online arms: ${r.releases} releases; meta tasks ${rest.map((a) => `${a.name} ${a.metaTasks}`).join(', ')}; ${r.seconds.toFixed(0)} s`,
    '',
    ...rest.flatMap((a) => [gainTableOf(base.name, base.aucs, a.name, a.aucs), '']),
  ].join('\n');
}
