/**
 * Sparse encodings of user and item features for retrieval: every `field=token` becomes one
 * hashed row (models/features.ts's FNV-1a), so a brand-new item's profile lands on rows that
 * other items with the same genres, year bucket or title words have trained.
 *
 * A numeric `year` token is bucketed into 5-year spans (`year=1995` → `year5=1995`) next to the exact
 * year, so films of neighbouring years share a row. The item id is a separate field (`__id`), used
 * only by the dual encoder and only for items seen in training (retrieval/towers.ts).
 */
import type { Features } from '../schemas/types.js';
import { hashFeature } from '../models/features.js';

/** Width of a year bucket, in years. */
export const YEAR_BUCKET_YEARS = 5;

/** Field under which an item's own id is hashed. */
export const ID_FIELD = '__id';

/** The `field=token` pairs an entity's features encode into (year buckets added). */
export function featureTokens(features: Features): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const field of Object.keys(features).sort()) {
    for (const token of features[field] ?? []) {
      out.push([field, token]);
      if (field === 'year') {
        const y = Number(token);
        if (Number.isInteger(y)) out.push(['year5', String(y - (((y % YEAR_BUCKET_YEARS) + YEAR_BUCKET_YEARS) % YEAR_BUCKET_YEARS))]);
      }
    }
  }
  return out;
}

/** Distinct hashed rows (sorted) of an entity's features in a table of `buckets` rows. */
export function featureRows(features: Features, buckets: number): Int32Array {
  const rows = new Set<number>();
  for (const [field, token] of featureTokens(features)) rows.add(hashFeature(field, token, buckets));
  return Int32Array.from([...rows].sort((a, b) => a - b));
}

/** Hashed row of an item id in a table of `buckets` rows. */
export function idRow(itemId: string, buckets: number): number {
  return hashFeature(ID_FIELD, itemId, buckets);
}
