/**
 * Meta-Embedding's own ML-1M warm-up splits (Pan et al., SIGIR'19; github.com/Feiyang/MetaEmbedding),
 * as the TSV files in `../shared/data/ml-1m-metaemb/`: `train_oneshot_a..d` hold 20 rows of each of
 * 1,058 old items per batch, `test_oneshot_a..c` 20 rows of each of 1,127 new items per batch.
 * Columns: UserID, MovieID, y, Gender, Age, Occupation, Year, Title (space-separated word ids),
 * Genres (space-separated genre ids); the ids are already encoded by the authors' preprocessing.
 *
 * The official notebook pre-trains the base on `big_train_main` and evaluates every phase on
 * `test_test`; neither file is in this copy. What the files here support, closest to the notebook:
 * - base (and meta) training on the old items: the four train batches are the hot rows (the
 *   notebook's Meta-Embedding episodes pair (a→b), (c→d), (b→c) of exactly these batches);
 * - new items: warm-a adapts on `test_oneshot_a`, warm-b on `test_oneshot_b`; `test_oneshot_c` is
 *   held out as the fixed test set of every phase (the notebook's role of `test_test`: the same
 *   rows scored at every phase, never trained on). With only three new-item batches there is no
 *   warm-c phase: the protocol reports cold, warm-a, warm-b.
 *
 * Fields (F = 8), as the notebook's: item ID, user ID, gender, age, occupation, year, title words
 * (a bag of at most 8, mean-pooled) and genres (a bag of at most 4); like its `pad_sequences` the
 * bags keep their last tokens. Year, title and genres are the item fields the generators read.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ThawError } from '../lib/errors.js';
import type { FieldLayout, RowBatch } from '../models/ctr-model.js';
import { at, defined } from '../lib/at.js';

export const TRAIN_FILES = ['train_oneshot_a.tsv', 'train_oneshot_b.tsv', 'train_oneshot_c.tsv', 'train_oneshot_d.tsv'] as const;
export const TEST_FILES = ['test_oneshot_a.tsv', 'test_oneshot_b.tsv', 'test_oneshot_c.tsv'] as const;
export const FIELD_NAMES = ['item', 'user', 'gender', 'age', 'occupation', 'year', 'title', 'genres'] as const;
export const TITLE_SLOTS = 8;
export const GENRE_SLOTS = 4;
/** Rows per item in every batch. */
export const K = 20;
/** Sizes of the published files; asserted so a different copy cannot pass silently. */
export const METAEMB_SIZES = { oldItems: 1_058, oldRowsPerBatch: 21_160, newItems: 1_127, newRowsPerBatch: 22_540 } as const;
const COLUMNS = ['UserID', 'MovieID', 'y', 'Gender', 'Age', 'Occupation', 'Year', 'Title', 'Genres'] as const;

/** The protocol's view of the split: hot rows, two warm batches and the held-out test batch (no warm-c). */
export interface MetaEmbSplit {
  layout: FieldLayout;
  vocabSize: number;
  /** MovieIDs of the old items; hot rows' entity = index here. */
  hotItems: number[];
  /** MovieIDs of the new items; warm/test rows' entity = index here. */
  coldItems: number[];
  /** train_oneshot_a..d concatenated (in that order). */
  hot: RowBatch;
  /** test_oneshot_a. */
  warmA: RowBatch;
  /** test_oneshot_b. */
  warmB: RowBatch;
  /** test_oneshot_c, the fixed test set of every phase. */
  test: RowBatch;
  /** Rows per file, for reporting and the size check. */
  rowsPerFile: Record<string, number>;
}

/** True when `dir` holds the Meta-Embedding split files (how `thaw eval` tells the format apart). */
export function isMetaEmbDir(dir: string): boolean {
  return [...TRAIN_FILES, ...TEST_FILES].every((f) => existsSync(path.join(dir, f)));
}

interface Row {
  user: string;
  item: number;
  y: number;
  gender: string;
  age: string;
  occupation: string;
  year: string;
  title: string[];
  genres: string[];
}

function tokens(cell: string, keep: number): string[] {
  const t = cell.split(' ').filter((s) => s !== '');
  return t.slice(Math.max(0, t.length - keep));
}

function readTsv(dir: string, file: string): Row[] {
  let text: string;
  try {
    text = readFileSync(path.join(dir, file), 'utf8');
  } catch (cause) {
    throw new ThawError('DATA_FORMAT', `cannot read ${file} in ${dir} (expected the Meta-Embedding ML-1M splits)`, { cause });
  }
  const lines = text.split('\n');
  const header = (lines[0] ?? '').trim().split('\t');
  if (COLUMNS.some((c, i) => header[i] !== c)) throw new ThawError('DATA_FORMAT', `${file}: header ${header.join(',')}, expected ${COLUMNS.join(',')}`);
  const out: Row[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = at(lines, i, 'lines');
    if (line.trim() === '') continue;
    const c = line.split('\t');
    const item = Number(c[1]);
    const y = Number(c[2]);
    if (c.length !== COLUMNS.length || !Number.isInteger(item) || (y !== 0 && y !== 1)) throw new ThawError('DATA_FORMAT', `${file} line ${i + 1}: bad row "${line}"`);
    out.push({
      user: at(c, 0, 'c'),
      item,
      y,
      gender: at(c, 3, 'c'),
      age: at(c, 4, 'c'),
      occupation: at(c, 5, 'c'),
      year: at(c, 6, 'c'),
      title: tokens(at(c, 7, 'c'), TITLE_SLOTS),
      genres: tokens(at(c, 8, 'c'), GENRE_SLOTS),
    });
  }
  return out;
}

function itemsOf(batches: Row[][]): number[] {
  const seen = new Set<number>();
  const ids: number[] = [];
  for (const b of batches) {
    for (const r of b) {
      if (seen.has(r.item)) continue;
      seen.add(r.item);
      ids.push(r.item);
    }
  }
  return ids;
}

/** Loads the split from `dir`; throws DATA_FORMAT when the files or their sizes differ from the published ones. */
export function buildMetaEmbSplit(dir: string, opts: { assertSizes?: boolean } = {}): MetaEmbSplit {
  const train = TRAIN_FILES.map((f) => readTsv(dir, f));
  const test = TEST_FILES.map((f) => readTsv(dir, f));
  const rowsPerFile: Record<string, number> = {};
  [...TRAIN_FILES, ...TEST_FILES].forEach((f, i) => (rowsPerFile[f] = defined(i < 4 ? train[i] : test[i - 4], '(i < 4 ? train[i] : test[i - 4])').length));
  // Item order = order of first appearance, as in the files (grouped by item, K rows each).
  const hotItems = itemsOf(train);
  const coldItems = itemsOf(test);
  if (opts.assertSizes !== false) {
    const check = (what: string, got: number, want: number): void => {
      if (got !== want) throw new ThawError('DATA_FORMAT', `Meta-Embedding split ${what} = ${got}, published ${want}: is ${dir} the ML-1M Meta-Embedding split?`);
    };
    check('old items', hotItems.length, METAEMB_SIZES.oldItems);
    check('new items', coldItems.length, METAEMB_SIZES.newItems);
    train.forEach((b, i) => check(`${TRAIN_FILES[i]} rows`, b.length, METAEMB_SIZES.oldRowsPerBatch));
    test.forEach((b, i) => check(`${TEST_FILES[i]} rows`, b.length, METAEMB_SIZES.newRowsPerBatch));
  }
  const hotSet = new Set(hotItems);
  const overlap = coldItems.filter((i) => hotSet.has(i));
  if (overlap.length > 0) throw new ThawError('DATA_FORMAT', `${overlap.length} new items also appear in the old items' batches (e.g. MovieID ${overlap[0]})`);

  // Field-indexed vocabulary over every file ("field:token" → row, row 0 = padding): item features
  // are known when an item arrives, so new items' tokens belong in it.
  const vocab = new Map<string, number>();
  const row = (key: string): number => {
    let r = vocab.get(key);
    if (r === undefined) vocab.set(key, (r = vocab.size + 1));
    return r;
  };
  const all = [...train, ...test];
  for (const b of all)
    for (const r of b) {
      row(`user:${r.user}`);
      row(`gender:${r.gender}`);
      row(`age:${r.age}`);
      row(`occupation:${r.occupation}`);
      row(`year:${r.year}`);
      for (const t of r.title) row(`title:${t}`);
      for (const g of r.genres) row(`genre:${g}`);
    }
  const slotField: number[] = [1, 2, 3, 4, 5];
  for (let i = 0; i < TITLE_SLOTS; i++) slotField.push(6);
  for (let i = 0; i < GENRE_SLOTS; i++) slotField.push(7);
  const slots = slotField.length;
  const layout: FieldLayout = { fieldNames: FIELD_NAMES, slotField: Int32Array.from(slotField), itemFields: [5, 6, 7] };

  const toBatch = (rows: Row[], entityOf: Map<number, number>): RowBatch => {
    const n = rows.length;
    const b = { n, featIdx: new Int32Array(n * slots), featW: new Float32Array(n * slots), label: new Float32Array(n), entity: new Int32Array(n) };
    rows.forEach((r, i) => {
      const o = i * slots;
      const single = [row(`user:${r.user}`), row(`gender:${r.gender}`), row(`age:${r.age}`), row(`occupation:${r.occupation}`), row(`year:${r.year}`)];
      single.forEach((v, k) => ((b.featIdx[o + k] = v), (b.featW[o + k] = 1)));
      r.title.forEach((t, k) => ((b.featIdx[o + 5 + k] = row(`title:${t}`)), (b.featW[o + 5 + k] = 1 / r.title.length)));
      r.genres.forEach((g, k) => ((b.featIdx[o + 5 + TITLE_SLOTS + k] = row(`genre:${g}`)), (b.featW[o + 5 + TITLE_SLOTS + k] = 1 / r.genres.length)));
      b.label[i] = r.y;
      b.entity[i] = defined(entityOf.get(r.item), 'entityOf.get(r.item)');
    });
    return b;
  };
  const hotIdx = new Map(hotItems.map((id, i) => [id, i]));
  const coldIdx = new Map(coldItems.map((id, i) => [id, i]));
  return {
    layout,
    vocabSize: vocab.size + 1,
    hotItems,
    coldItems,
    hot: toBatch(train.flat(), hotIdx),
    warmA: toBatch(at(test, 0, 'test'), coldIdx),
    warmB: toBatch(at(test, 1, 'test'), coldIdx),
    test: toBatch(at(test, 2, 'test'), coldIdx),
    rowsPerFile,
  };
}
