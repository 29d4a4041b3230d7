/**
 * The CVAR/EmerG warm-up split on MovieLens-100K (brief section 4): label = rating ≥ 4; rows are
 * sorted by time (stable, so ties keep file order); item row counts are over all rows. Items with
 * more than 200 rows are hot (base training); items with 60–200 rows are new: each new item's
 * time-sorted rows give K = 20 rows to warm-a, then warm-b, then warm-c, and the rest to test.
 * The published sizes are asserted, so a data or convention change cannot pass silently.
 */
import { ThawError } from '../lib/errors.js';
import type { FieldLayout, RowBatch } from '../models/ctr-model.js';
import { loadFeatures } from './movielens-fields.js';
import { readRatings, type Rating } from './movielens-ratings.js';
import { defined } from '../lib/at.js';

export const PUBLISHED_SIZES = { hotItems: 117, hotRows: 33_480, coldItems: 419, warmRows: 8_380, testRows: 21_428 } as const;
export const K = 20;

export interface WarmupSplit {
  layout: FieldLayout;
  vocabSize: number;
  /** MovieLens ids of hot items; hot rows' entity = index here. */
  hotItems: number[];
  /** MovieLens ids of new items; warm/test rows' entity = index here. */
  coldItems: number[];
  hot: RowBatch;
  warmA: RowBatch;
  warmB: RowBatch;
  warmC: RowBatch;
  test: RowBatch;
}

function toBatch(rows: Rating[], entityOf: Map<number, number>, slots: number, encode: (u: number, i: number, idx: Int32Array, w: Float32Array, o: number) => void): RowBatch {
  const n = rows.length;
  const b = { n, featIdx: new Int32Array(n * slots), featW: new Float32Array(n * slots), label: new Float32Array(n), entity: new Int32Array(n) };
  rows.forEach((r, i) => {
    encode(r.user, r.item, b.featIdx, b.featW, i);
    b.label[i] = r.rating >= 4 ? 1 : 0;
    b.entity[i] = defined(entityOf.get(r.item), 'entityOf.get(r.item)');
  });
  return b;
}

/** Builds the split from a MovieLens-100K directory; throws DATA_FORMAT if sizes differ from the published ones. */
export function buildWarmupSplit(dir: string, opts: { assertSizes?: boolean } = {}): WarmupSplit {
  const features = loadFeatures(dir);
  const ratings = readRatings(dir);
  const count = new Map<number, number>();
  for (const r of ratings) count.set(r.item, (count.get(r.item) ?? 0) + 1);
  const ids = [...count.keys()].sort((a, b) => a - b);
  const hotItems = ids.filter((i) => defined(count.get(i), 'count.get(i)') > 200);
  const coldItems = ids.filter((i) => defined(count.get(i), 'count.get(i)') >= 60 && defined(count.get(i), 'count.get(i)') <= 200);
  const hotIdx = new Map(hotItems.map((id, i) => [id, i]));
  const coldIdx = new Map(coldItems.map((id, i) => [id, i]));
  const hot: Rating[] = [];
  const perCold = new Map<number, Rating[]>();
  for (const r of ratings) {
    if (hotIdx.has(r.item)) hot.push(r);
    else if (coldIdx.has(r.item)) {
      let l = perCold.get(r.item);
      if (l === undefined) perCold.set(r.item, (l = []));
      l.push(r);
    }
  }
  const a: Rating[] = [];
  const b: Rating[] = [];
  const c: Rating[] = [];
  const test: Rating[] = [];
  for (const id of coldItems) {
    const l = defined(perCold.get(id), 'perCold.get(id)');
    a.push(...l.slice(0, K));
    b.push(...l.slice(K, 2 * K));
    c.push(...l.slice(2 * K, 3 * K));
    test.push(...l.slice(3 * K));
  }
  const sizes = { hotItems: hotItems.length, hotRows: hot.length, coldItems: coldItems.length, warmRows: a.length, testRows: test.length };
  if (opts.assertSizes !== false) {
    for (const [k, v] of Object.entries(PUBLISHED_SIZES)) {
      if (sizes[k as keyof typeof sizes] !== v) {
        throw new ThawError('DATA_FORMAT', `warm-up split ${k} = ${sizes[k as keyof typeof sizes]}, published ${v}: is ${dir} MovieLens-100K?`);
      }
    }
  }
  const slots = features.layout.slotField.length;
  return {
    layout: features.layout,
    vocabSize: features.vocabSize,
    hotItems,
    coldItems,
    hot: toBatch(hot, hotIdx, slots, features.encode),
    warmA: toBatch(a, coldIdx, slots, features.encode),
    warmB: toBatch(b, coldIdx, slots, features.encode),
    warmC: toBatch(c, coldIdx, slots, features.encode),
    test: toBatch(test, coldIdx, slots, features.encode),
  };
}
