/**
 * `thaw eval --protocol retrieval`: the temporal split (split.ts), then each model retrieves over the
 * whole catalogue for every evaluated user (evaluate.ts). Models: the popularity and item-feature kNN
 * baselines (retrieval/baselines.ts); the dual encoder (retrieval/train.ts) trained on the training
 * window's positives with in-batch negatives (row `dual-encoder (in-batch)`), and the same with
 * RocketQA's cross-batch negatives (row `+cross-batch`). Both encoders use the same seed and options.
 */
import type { LabelledEvent } from '../../schemas/types.js';
import { ItemFeatureKnnRetriever, PopularityRetriever } from '../../retrieval/baselines.js';
import type { CatalogItem, Retriever } from '../../retrieval/types.js';
import { DualEncoderTrainer, type DualEncoderTrainOptions } from '../../retrieval/train.js';
import { buildRetrievalSplit, type RetrievalSplit } from './split.js';
import { evaluateRetriever, type RetrievalCounts, type RetrievalRow } from './evaluate.js';

export const RETRIEVAL_MODELS = ['popularity', 'item-feature-knn', 'dual-encoder', 'cross-batch'] as const;
export type RetrievalModel = (typeof RETRIEVAL_MODELS)[number];

/** Options of the protocol. */
export interface RetrievalProtocolOptions {
  /** Models to run, in this order. @default RETRIEVAL_MODELS */
  models?: readonly RetrievalModel[];
  /** Fraction of events (by time) in the training window. @default 0.8 */
  trainFraction?: number;
  /** The dual encoders' options (`crossBatches` applies to `cross-batch` only). */
  encoder?: DualEncoderTrainOptions;
  /** Past micro-batches whose item vectors are negatives in the `cross-batch` row. @default 8 */
  crossBatches?: number;
  /** Per-epoch training progress (row name, epoch, mean loss). */
  onEpoch?: (model: string, epoch: number, loss: number) => void;
  /** Progress callback (model name, seconds it took). */
  onModel?: (model: string, seconds: number) => void;
}

export interface RetrievalProtocolResult {
  rows: RetrievalRow[];
  counts: RetrievalCounts;
  items: number;
  coldItems: number;
  trainEvents: number;
}

/** The catalogue as retrievers see it: an item is `known` when it was seen in training. */
export function catalogOf(split: RetrievalSplit): CatalogItem[] {
  return split.items.map((it) => ({ id: it.id, features: it.features, known: !it.cold }));
}

/** Default `crossBatches` of the `cross-batch` row. */
export const DEFAULT_CROSS_BATCHES = 8;

function trainEncoder(name: string, split: RetrievalSplit, catalog: CatalogItem[], opts: DualEncoderTrainOptions, onEpoch?: RetrievalProtocolOptions['onEpoch']): Retriever {
  const trainer = new DualEncoderTrainer(catalog, opts);
  trainer.train(trainer.examples(split.train, split.userFeatures), (epoch, loss) => onEpoch?.(name, epoch, loss));
  return trainer.retriever(name);
}

function buildRetriever(model: RetrievalModel, split: RetrievalSplit, catalog: CatalogItem[], opts: RetrievalProtocolOptions): Retriever {
  const positives = split.train.filter((t) => t.label === 1).map((t) => t.item);
  switch (model) {
    case 'popularity':
      return PopularityRetriever.fromPositives(positives, catalog.length);
    case 'item-feature-knn':
      return new ItemFeatureKnnRetriever(catalog, positives);
    case 'dual-encoder':
      return trainEncoder('dual-encoder (in-batch)', split, catalog, { ...opts.encoder, crossBatches: 0 }, opts.onEpoch);
    case 'cross-batch':
      return trainEncoder('+cross-batch', split, catalog, { ...opts.encoder, crossBatches: opts.crossBatches ?? DEFAULT_CROSS_BATCHES }, opts.onEpoch);
  }
}

/** Runs the protocol on `events`. */
export function runRetrievalProtocol(events: readonly LabelledEvent[], opts: RetrievalProtocolOptions = {}): RetrievalProtocolResult {
  const split = buildRetrievalSplit(events, opts.trainFraction ?? 0.8);
  const catalog = catalogOf(split);
  const rows: RetrievalRow[] = [];
  let counts: RetrievalCounts = { users: split.testUsers.length, usersWithCold: 0, usersWithWarm: 0 };
  for (const model of opts.models ?? RETRIEVAL_MODELS) {
    const t0 = performance.now();
    const retriever = buildRetriever(model, split, catalog, opts);
    const res = evaluateRetriever(retriever, split);
    rows.push(res.row);
    counts = res.counts;
    opts.onModel?.(res.row.model, (performance.now() - t0) / 1000);
  }
  return { rows, counts, items: split.items.length, coldItems: split.items.filter((i) => i.cold).length, trainEvents: split.train.length };
}
