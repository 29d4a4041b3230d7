/**
 * `thaw eval --protocol retrieval`: the temporal split (split.ts), then each model retrieves over the
 * whole catalogue for every evaluated user (evaluate.ts). Models: the popularity and item-feature kNN
 * baselines (retrieval/baselines.ts).
 */
import type { LabelledEvent } from '../../schemas/types.js';
import { ItemFeatureKnnRetriever, PopularityRetriever } from '../../retrieval/baselines.js';
import type { CatalogItem, Retriever } from '../../retrieval/types.js';
import { buildRetrievalSplit, type RetrievalSplit } from './split.js';
import { evaluateRetriever, type RetrievalCounts, type RetrievalRow } from './evaluate.js';

export const RETRIEVAL_MODELS = ['popularity', 'item-feature-knn'] as const;
export type RetrievalModel = (typeof RETRIEVAL_MODELS)[number];

/** Options of the protocol. */
export interface RetrievalProtocolOptions {
  /** Models to run, in this order. @default RETRIEVAL_MODELS */
  models?: readonly RetrievalModel[];
  /** Fraction of events (by time) in the training window. @default 0.8 */
  trainFraction?: number;
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

function buildRetriever(model: RetrievalModel, split: RetrievalSplit, catalog: CatalogItem[]): Retriever {
  const positives = split.train.filter((t) => t.label === 1).map((t) => t.item);
  switch (model) {
    case 'popularity':
      return PopularityRetriever.fromPositives(positives, catalog.length);
    case 'item-feature-knn':
      return new ItemFeatureKnnRetriever(catalog, positives);
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
    const retriever = buildRetriever(model, split, catalog);
    const res = evaluateRetriever(retriever, split);
    rows.push(res.row);
    counts = res.counts;
    opts.onModel?.(res.row.model, (performance.now() - t0) / 1000);
  }
  return { rows, counts, items: split.items.length, coldItems: split.items.filter((i) => i.cold).length, trainEvents: split.train.length };
}
