/**
 * The two baselines of the retrieval protocol.
 * - popularity: an item's count of training positives; brand-new items score 0.
 * - item-feature kNN: items as L2-normalised binary vectors of their hashed features (genres, year and
 *   5-year bucket, title words; retrieval/features.ts); a user's profile is the mean of their history's
 *   vectors, and an item's score is the cosine of profile and item. A user with no history gets the
 *   mean profile of all training positives. Brand-new items are scored like any other.
 */
import { featureRows } from './features.js';
import type { CatalogItem, RetrievalQuery, Retriever } from './types.js';

/** Hashed feature space of the kNN baseline, in rows. @default 4096 */
export const KNN_BUCKETS = 4096;

/** Popularity: `counts[i]` training positives of item i. */
export class PopularityRetriever implements Retriever {
  readonly name = 'popularity';
  constructor(private readonly counts: Float32Array) {}

  /** Counts of `positives` (catalogue indices) over a catalogue of `size` items. */
  static fromPositives(positives: Iterable<number>, size: number): PopularityRetriever {
    const counts = new Float32Array(size);
    for (const i of positives) counts[i] = (counts[i] ?? 0) + 1;
    return new PopularityRetriever(counts);
  }

  score(_query: RetrievalQuery, out: Float32Array): void {
    out.set(this.counts);
  }
}

/** Item-feature kNN (cosine of the user's mean history vector and each item's feature vector). */
export class ItemFeatureKnnRetriever implements Retriever {
  readonly name = 'item-feature-knn';
  private readonly rows: Int32Array[];
  private readonly weight: Float32Array;
  private readonly globalProfile: Float32Array;

  constructor(
    catalog: readonly CatalogItem[],
    trainPositives: Iterable<number>,
    private readonly buckets = KNN_BUCKETS,
  ) {
    this.rows = catalog.map((it) => featureRows(it.features, buckets));
    this.weight = Float32Array.from(this.rows, (r) => (r.length === 0 ? 0 : 1 / Math.sqrt(r.length)));
    this.globalProfile = this.profile([...trainPositives]);
  }

  private profile(history: readonly number[]): Float32Array {
    const p = new Float32Array(this.buckets);
    for (const i of history) {
      const w = this.weight[i] ?? 0;
      for (const r of this.rows[i] ?? []) p[r] = (p[r] ?? 0) + w;
    }
    return p;
  }

  score(query: RetrievalQuery, out: Float32Array): void {
    const p = query.history.length > 0 ? this.profile(query.history) : this.globalProfile;
    let norm = 0;
    for (const v of p) norm += v * v;
    const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    for (let i = 0; i < this.rows.length; i++) {
      let s = 0;
      for (const r of this.rows[i] ?? []) s += p[r] ?? 0;
      out[i] = s * (this.weight[i] ?? 0) * inv;
    }
  }
}
