/**
 * Builds a retrieval snapshot (retrieval/index/encoder-snapshot.ts) from labelled events: trains
 * the dual encoder on every event in time order (retrieval/train.ts, in-batch negatives plus the
 * given cross-batch queue), then indexes every item of the catalogue (its id row used: all were
 * seen in training) into the HNSW graph.
 */
import { performance } from 'node:perf_hooks';
import type { Features, LabelledEvent } from '../../schemas/types.js';
import { DualEncoderTrainer, type DualEncoderTrainOptions, type TrainInteraction } from '../train.js';
import type { CatalogItem } from '../types.js';
import { AnnIndex } from './ann-index.js';
import { saveRetrievalSnapshot } from './encoder-snapshot.js';
import type { AnnIndexOptions } from './options.js';

export interface BuildSnapshotOptions {
  encoder?: DualEncoderTrainOptions;
  index?: Omit<AnnIndexOptions, 'dim'>;
  onEpoch?: (epoch: number, loss: number) => void;
}

export interface BuildSnapshotResult {
  items: number;
  events: number;
  positives: number;
  trainSeconds: number;
  indexSeconds: number;
}

/** Trains on `events`, indexes the catalogue, writes the snapshot to `dir`. */
export async function buildRetrievalSnapshot(events: readonly LabelledEvent[], dir: string, opts: BuildSnapshotOptions = {}): Promise<BuildSnapshotResult> {
  const sorted = [...events].sort((a, b) => a.timeMs - b.timeMs);
  const itemIndex = new Map<string, number>();
  const catalog: CatalogItem[] = [];
  const userFeatures = new Map<string, Features>();
  const interactions: TrainInteraction[] = [];
  for (const e of sorted) {
    let item = itemIndex.get(e.itemId);
    if (item === undefined) {
      item = catalog.length;
      itemIndex.set(e.itemId, item);
      catalog.push({ id: e.itemId, features: e.itemFeatures, known: true });
    }
    if (!userFeatures.has(e.userId)) userFeatures.set(e.userId, e.userFeatures);
    interactions.push({ userId: e.userId, item, label: e.label });
  }
  const t0 = performance.now();
  const trainer = new DualEncoderTrainer(catalog, opts.encoder ?? {});
  const examples = trainer.examples(interactions, userFeatures);
  trainer.train(examples, opts.onEpoch);
  const t1 = performance.now();
  const { dim } = trainer.model.opts;
  const vectors = trainer.itemVectors();
  const index = await AnnIndex.create({ ...opts.index, dim, initialCapacity: Math.max(1024, catalog.length) });
  catalog.forEach((it, i) => index.upsertSealed(it.id, vectors.subarray(i * dim, (i + 1) * dim)));
  saveRetrievalSnapshot(
    dir,
    trainer.model,
    catalog.map((it) => it.id),
    index,
  );
  return { items: catalog.length, events: sorted.length, positives: examples.length, trainSeconds: (t1 - t0) / 1000, indexSeconds: (performance.now() - t1) / 1000 };
}
