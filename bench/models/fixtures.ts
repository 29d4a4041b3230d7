/**
 * Rows for the model benchmark: ML-100K-shaped synthetic rows by default (the MovieLens-100K field
 * layout of evaluation/movielens-fields.ts: 9 fields, 20 slots, 943 users, 1,682 items with fixed
 * year/title/genre features, ~4,000 vocabulary rows), or the real split's rows with `--data DIR`.
 * Throughput does not depend on what the values mean, only on the shapes, so synthetic rows are the
 * default: the bench then needs no data and runs the same everywhere.
 */
import type { FieldLayout, RowBatch } from '../../models/ctr-model.js';
import { Rng } from '../../models/rng.js';
import { FIELD_NAMES, GENRE_SLOTS, TITLE_SLOTS } from '../../evaluation/movielens-fields.js';
import { buildWarmupSplit } from '../../evaluation/warmup-split.js';
import { at as atIndex } from '../../lib/at.js';

export interface BenchData {
  layout: FieldLayout;
  vocabSize: number;
  /** Rows to train on; entity = hot item index in [0, hotItems). */
  train: RowBatch;
  hotItems: number;
  /** Rows to adapt and score; entity = item index in [0, adaptItems). */
  adapt: RowBatch;
  adaptItems: number;
  source: string;
}

const USERS = 943;
const ITEMS = 1_682;
const SLOTS = 6 + TITLE_SLOTS + GENRE_SLOTS;

/** The MovieLens-100K layout: item, user, gender, age, occupation, zip, year | title × 8 | genres × 6. */
export function ml100kLayout(): FieldLayout {
  const slotField = [1, 2, 3, 4, 5, 6, ...new Array<number>(TITLE_SLOTS).fill(7), ...new Array<number>(GENRE_SLOTS).fill(8)];
  return { fieldNames: FIELD_NAMES, slotField: Int32Array.from(slotField), itemFields: [6, 7, 8] };
}

/** `n` synthetic rows over `items` items (uniform), seeded; slot rows and bag weights as the real encoder makes them. */
export function syntheticRows(n: number, items: number, seed: number): { batch: RowBatch; vocabSize: number } {
  const rng = new Rng(seed);
  const int = (k: number): number => Math.min(k - 1, Math.floor(rng.next() * k));
  // Vocabulary ranges per field, laid out one after another from row 1 (row 0 = padding).
  const sizes = [USERS, 2, 7, 21, 100, 72, 2_900, 19];
  const base: number[] = [];
  let at = 1;
  for (const s of sizes) {
    base.push(at);
    at += s;
  }
  const users = Array.from({ length: USERS }, () => [int(2), int(7), int(21), int(100)]);
  const itemFeat = Array.from({ length: ITEMS }, () => ({
    year: int(72),
    title: Array.from({ length: 1 + int(TITLE_SLOTS) }, () => int(2_900)),
    genres: Array.from({ length: 1 + int(3) }, () => int(19)),
  }));
  const b = { n, featIdx: new Int32Array(n * SLOTS), featW: new Float32Array(n * SLOTS), label: new Float32Array(n), entity: new Int32Array(n) };
  for (let i = 0; i < n; i++) {
    const e = int(items);
    const u = int(USERS);
    const it = atIndex(itemFeat, e % ITEMS);
    const uf = atIndex(users, u);
    const o = i * SLOTS;
    const single = [
      atIndex(base, 0) + u,
      atIndex(base, 1) + atIndex(uf, 0),
      atIndex(base, 2) + atIndex(uf, 1),
      atIndex(base, 3) + atIndex(uf, 2),
      atIndex(base, 4) + atIndex(uf, 3),
      atIndex(base, 5) + it.year,
    ];
    single.forEach((v, k) => ((b.featIdx[o + k] = v), (b.featW[o + k] = 1)));
    it.title.forEach((t, k) => ((b.featIdx[o + 6 + k] = atIndex(base, 6) + t), (b.featW[o + 6 + k] = 1 / it.title.length)));
    it.genres.forEach((g, k) => ((b.featIdx[o + 6 + TITLE_SLOTS + k] = atIndex(base, 7) + g), (b.featW[o + 6 + TITLE_SLOTS + k] = 1 / it.genres.length)));
    b.label[i] = rng.next() < 0.55 ? 1 : 0;
    b.entity[i] = e;
  }
  return { batch: b, vocabSize: at };
}

/** Synthetic rows (default) or, with `dataDir`, the MovieLens-100K warm-up split's hot and warm rows. */
export function benchData(dataDir: string | undefined, trainRows: number): BenchData {
  if (dataDir !== undefined) {
    const s = buildWarmupSplit(dataDir);
    const warm = [s.warmA, s.warmB, s.warmC];
    const n = warm.reduce((a, w) => a + w.n, 0);
    const adapt = { n, featIdx: new Int32Array(n * SLOTS), featW: new Float32Array(n * SLOTS), label: new Float32Array(n), entity: new Int32Array(n) };
    let o = 0;
    for (const w of warm) {
      adapt.featIdx.set(w.featIdx, o * SLOTS);
      adapt.featW.set(w.featW, o * SLOTS);
      adapt.label.set(w.label, o);
      adapt.entity.set(w.entity, o);
      o += w.n;
    }
    return { layout: s.layout, vocabSize: s.vocabSize, train: s.hot, hotItems: s.hotItems.length, adapt, adaptItems: s.coldItems.length, source: `MovieLens-100K warm-up split (${dataDir})` };
  }
  const train = syntheticRows(trainRows, 117, 11);
  // 256 items in the pool: a 1024-event micro-batch touches ~250 of them, ~4 events each.
  const adapt = syntheticRows(16_384, 256, 12);
  return { layout: ml100kLayout(), vocabSize: train.vocabSize, train: train.batch, hotItems: 117, adapt: adapt.batch, adaptItems: 256, source: 'synthetic, ML-100K-shaped (9 fields, 20 slots)' };
}
