/**
 * Fresh shared parameters on a drifting stream: the prequential AUC of fm-adagrad on the items
 * (predict, log, then adapt; consumers/processor.ts with an in-memory store) with the shared FM
 * (i) frozen at the offline release trained on the stream's first part, vs (ii) refreshed every
 * sync interval by the online trainer's learner (trainers/online/fm-learner.ts) fed the same
 * stream after it is scored. The interval is simulated in event time (every `syncEvery` events);
 * the refreshed arm's adapter is swapped between micro-batches with states kept, as the worker does.
 */
import { FmAdagradAdapter } from '../../adapters/fm-adagrad.js';
import type { BatchItem } from '../../consumers/processor.js';
import { FactorizationMachine } from '../../models/fm.js';
import { syntheticStream, type SyntheticOptions } from '../../sources/synthetic.js';
import { trainFm } from '../../trainers/fm-trainer.js';
import { FmOnlineLearner, type FmLearnerOptions } from '../../trainers/online/fm-learner.js';
import { auc as aucOf } from '../../lib/metrics.js';
import { PrequentialArm, bucketAucs, type BucketAuc } from './prequential.js';

export interface DriftExperimentOptions {
  /** Synthetic stream (events, drift, seed...). @default { events: 1_000_000, drift: 0.5 } */
  stream?: SyntheticOptions;
  /** Share of the stream the offline release is trained on (then not evaluated). @default 0.2 */
  prefixShare?: number;
  /** Events between two releases of the refreshed arm. @default 50_000 */
  syncEvery?: number;
  /** Micro-batch size. @default 1000 */
  batch?: number;
  /** Offline training epochs. @default 3 */
  epochs?: number;
  /** Online learner options. @default the learner's defaults */
  learner?: FmLearnerOptions;
  /** Progress callback (events evaluated so far). */
  onProgress?: (evaluated: number) => void;
}

export interface DriftResult {
  events: number;
  prefixEvents: number;
  evaluated: number;
  releases: number;
  metaTasks: number;
  frozen: BucketAuc[];
  refreshed: BucketAuc[];
  /** AUC of the frozen and refreshed arm over consecutive tenths of the evaluated stream. */
  byTenth: { frozen: number; refreshed: number }[];
  seconds: number;
}

function clone(fm: FactorizationMachine): FactorizationMachine {
  return FactorizationMachine.fromBuffer(fm.toBuffer());
}

export async function runDriftExperiment(opts: DriftExperimentOptions = {}): Promise<DriftResult> {
  const t0 = performance.now();
  const stream: SyntheticOptions = { events: 1_000_000, drift: 0.5, ...opts.stream };
  const total = stream.events ?? 1_000_000;
  const prefix = Math.floor(total * (opts.prefixShare ?? 0.2));
  const syncEvery = opts.syncEvery ?? 50_000;
  const batch = opts.batch ?? 1000;
  const trained = await trainFm(syntheticStream(stream), { maxEvents: prefix, epochs: opts.epochs ?? 3, release: 'offline' });
  const offline = trained.model;
  const frozen = new PrequentialArm('frozen', new FmAdagradAdapter('item', clone(offline)));
  const learner = new FmOnlineLearner(clone(offline), opts.learner ?? {});
  let releases = 0;
  const refreshed = new PrequentialArm('refreshed', new FmAdagradAdapter('item', clone(learner.fm)));
  let n = 0;
  let sinceSync = 0;
  let items: BatchItem[] = [];
  const flush = async (): Promise<void> => {
    if (items.length === 0) return;
    await frozen.process(items);
    await refreshed.process(items);
    // The trainer consumes the same stream (its own group): it learns from the batch after the workers scored it.
    learner.observe(items.map((x) => x.event));
    sinceSync += items.length;
    items = [];
    if (sinceSync >= syncEvery) {
      sinceSync = 0;
      learner.flush();
      const fm = clone(learner.fm);
      fm.release = `online-${++releases}`;
      refreshed.swap(new FmAdagradAdapter('item', fm));
    }
  };
  for await (const ev of syntheticStream(stream)) {
    n++;
    if (n <= prefix) continue;
    items.push({ offset: n, event: ev });
    if (items.length >= batch) {
      await flush();
      if ((n - prefix) % 100_000 < batch) opts.onProgress?.(n - prefix);
    }
  }
  await flush();
  const tenth = (arm: PrequentialArm, i: number): number => {
    const s = arm.sink;
    const from = Math.floor((s.n * i) / 10);
    const to = Math.floor((s.n * (i + 1)) / 10);
    return aucOf(s.scores.subarray(from, to), s.labels.subarray(from, to));
  };
  return {
    events: n,
    prefixEvents: prefix,
    evaluated: frozen.sink.n,
    releases,
    metaTasks: learner.stats().metaTasks,
    frozen: bucketAucs(frozen.sink),
    refreshed: bucketAucs(refreshed.sink),
    byTenth: Array.from({ length: 10 }, (_, i) => ({ frozen: tenth(frozen, i), refreshed: tenth(refreshed, i) })),
    seconds: (performance.now() - t0) / 1000,
  };
}
