/** Shapes shared by the retrievers of this folder. */
import type { Features } from '../schemas/types.js';

/** One item of the catalogue a retriever ranks; its position in the catalogue is its index. */
export interface CatalogItem {
  id: string;
  features: Features;
  /** Seen in the training window: its id row may carry learned weights. Brand-new items are not. */
  known: boolean;
}

/** What a retriever knows of the user it retrieves for. */
export interface RetrievalQuery {
  features: Features;
  /** Catalogue indices of the user's past positives, oldest first. */
  history: readonly number[];
}

/** Scores every catalogue item for a user (higher is better). */
export interface Retriever {
  readonly name: string;
  /** Writes one score per catalogue item into `out` (length = catalogue size). */
  score(query: RetrievalQuery, out: Float32Array): void;
}

/**
 * A stronger model than the retriever, used by RocketQA's denoising and pseudo-labels
 * (retrieval/hard-negatives.ts): the probability that a user likes each of some catalogue items.
 */
export interface Ranker {
  /** Writes into out[j] the probability (0..1) that the user likes catalogue item items[j]. */
  score(userId: string, userFeatures: Features, items: readonly number[], out: Float32Array): void;
}
