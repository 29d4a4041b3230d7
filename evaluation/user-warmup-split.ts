/**
 * The user-side mirror of the CVAR/EmerG warm-up split on MovieLens-100K (label rating ≥ 4, rows
 * sorted by time, stable). The rule is the item rule with users in place of items:
 * - users with more than 200 rows are "hot": all their rows train the base (148 users, 43,922 rows);
 * - users with 60–200 rows are new (349 users): each new user's time-sorted rows give K = 20 rows
 *   to warm-a, then warm-b, then warm-c (6,980 rows each) and the rest to test (19,734 rows);
 * - users with fewer than 60 rows are not used (as items under 60 on the item side).
 *
 * Fields are the item protocol's (evaluation/movielens-fields.ts) with the roles of the two IDs
 * swapped: field 0 is now the user ID, supplied per row as an entity parameter (CtrModel's
 * convention), and field 1 is the item ID, an ordinary feature-table row appended after the shared
 * vocabulary. The user-ID rows of that vocabulary stay unused. Sizes are asserted.
 */
import { ThawError } from '../lib/errors.js';
import type { FieldLayout, RowBatch } from '../models/ctr-model.js';
import { loadFeatures } from './movielens-fields.js';
import { readRatings, type Rating } from './movielens-ratings.js';
import { defined } from '../lib/at.js';

/** Rows per warm batch per new user. */
export const USER_K = 20;
/** Hot users have more than this many rows. */
export const USER_HOT_MIN_EXCLUSIVE = 200;
/** New users have between these row counts (inclusive). */
export const USER_NEW_RANGE = [60, 200] as const;
export const USER_SPLIT_SIZES = { hotUsers: 148, hotRows: 43_922, newUsers: 349, warmRows: 6_980, testRows: 19_734 } as const;

export const USER_FIELD_NAMES = ['user', 'item', 'gender', 'age', 'occupation', 'zip', 'year', 'title', 'genres'] as const;

export interface UserWarmupSplit {
  layout: FieldLayout;
  vocabSize: number;
  /** MovieLens ids of hot users; hot rows' entity = index here. */
  hotUsers: number[];
  /** MovieLens ids of new users; warm/test rows' entity = index here. */
  newUsers: number[];
  hot: RowBatch;
  warmA: RowBatch;
  warmB: RowBatch;
  warmC: RowBatch;
  test: RowBatch;
}

/** Builds the user split from a MovieLens-100K directory; throws DATA_FORMAT if sizes differ from USER_SPLIT_SIZES. */
export function buildUserWarmupSplit(dir: string, opts: { assertSizes?: boolean } = {}): UserWarmupSplit {
  const features = loadFeatures(dir);
  const ratings = readRatings(dir);
  const itemBase = features.vocabSize;
  const maxItem = Math.max(...features.items.keys());
  const vocabSize = itemBase + maxItem + 1;
  const baseLayout = features.layout;
  // Same slots; slot 0 (field 1) now holds the item ID instead of the user ID.
  const layout: FieldLayout = { fieldNames: USER_FIELD_NAMES, slotField: baseLayout.slotField, itemFields: [1, 6, 7, 8] };
  const slots = layout.slotField.length;

  const count = new Map<number, number>();
  for (const r of ratings) count.set(r.user, (count.get(r.user) ?? 0) + 1);
  const ids = [...count.keys()].sort((a, b) => a - b);
  const hotUsers = ids.filter((u) => defined(count.get(u), 'count.get(u)') > USER_HOT_MIN_EXCLUSIVE);
  const newUsers = ids.filter((u) => defined(count.get(u), 'count.get(u)') >= USER_NEW_RANGE[0] && defined(count.get(u), 'count.get(u)') <= USER_NEW_RANGE[1]);
  const hotIdx = new Map(hotUsers.map((id, i) => [id, i]));
  const newIdx = new Map(newUsers.map((id, i) => [id, i]));
  const hot: Rating[] = [];
  const perNew = new Map<number, Rating[]>();
  for (const r of ratings) {
    if (hotIdx.has(r.user)) hot.push(r);
    else if (newIdx.has(r.user)) {
      let l = perNew.get(r.user);
      if (l === undefined) perNew.set(r.user, (l = []));
      l.push(r);
    }
  }
  const a: Rating[] = [];
  const b: Rating[] = [];
  const c: Rating[] = [];
  const test: Rating[] = [];
  for (const id of newUsers) {
    const l = defined(perNew.get(id), 'perNew.get(id)');
    a.push(...l.slice(0, USER_K));
    b.push(...l.slice(USER_K, 2 * USER_K));
    c.push(...l.slice(2 * USER_K, 3 * USER_K));
    test.push(...l.slice(3 * USER_K));
  }
  const sizes = { hotUsers: hotUsers.length, hotRows: hot.length, newUsers: newUsers.length, warmRows: a.length, testRows: test.length };
  if (opts.assertSizes !== false) {
    for (const [k, v] of Object.entries(USER_SPLIT_SIZES)) {
      if (sizes[k as keyof typeof sizes] !== v) {
        throw new ThawError('DATA_FORMAT', `user warm-up split ${k} = ${sizes[k as keyof typeof sizes]}, expected ${v}: is ${dir} MovieLens-100K?`);
      }
    }
  }
  const toBatch = (rows: Rating[], entityOf: Map<number, number>): RowBatch => {
    const n = rows.length;
    const out = { n, featIdx: new Int32Array(n * slots), featW: new Float32Array(n * slots), label: new Float32Array(n), entity: new Int32Array(n) };
    rows.forEach((r, i) => {
      features.encode(r.user, r.item, out.featIdx, out.featW, i);
      out.featIdx[i * slots] = itemBase + r.item;
      out.label[i] = r.rating >= 4 ? 1 : 0;
      out.entity[i] = defined(entityOf.get(r.user), 'entityOf.get(r.user)');
    });
    return out;
  };
  return {
    layout,
    vocabSize,
    hotUsers,
    newUsers,
    hot: toBatch(hot, hotIdx),
    warmA: toBatch(a, newIdx),
    warmB: toBatch(b, newIdx),
    warmC: toBatch(c, newIdx),
    test: toBatch(test, newIdx),
  };
}
