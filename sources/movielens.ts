/**
 * MovieLens-100K and MovieLens-1M as labelled events, read from the dataset directories as
 * GroupLens ships them (never copied into this repository: the licence forbids redistribution).
 *
 * Label: rating >= 4 → 1 (the CVAR/EmerG convention). Events are yielded in time order; ties (same
 * second) by user id then item id, so the order is deterministic (`u.data`'s row order is not
 * the original one). Event ids: `ml100k-<user>-<item>` / `ml1m-<user>-<item>` (a user rates an item
 * once). timeMs = the rating's unix seconds × 1000. Entity ids are the dataset's numeric ids.
 *
 * Feature choices (they move AUC by more than the seed spread, so they are fixed and documented):
 * - user `age`: the ML-1M age band code (1 = under 18, 18, 25, 35, 45, 50, 56 = 56+). ML-100K's exact
 *   ages are bucketed into the same bands, so both datasets share one vocabulary.
 * - user `gender`: M / F.
 * - user `occupation`: ML-100K's occupation name, ML-1M's numeric code (0–20) as given.
 * - user `zip2`: first 2 characters of the zip code (the full zip code cost EmerG 0.038 AUC on 100K).
 * - item `year`: 4-digit release year (ML-100K: from the release date, else from the title;
 *   ML-1M: from the title's trailing "(yyyy)"); absent when unknown.
 * - item `genres`: multi-valued genre names (ML-100K: the 19 flags, including "unknown").
 * - item `title` (only with `titleTokens: true`): lower-cased words (Unicode letters and digits) of the title
 *   without the year.
 * No id features: entity identity is what adapters learn per entity.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { EntityProfile, Features, LabelledEvent } from '../schemas/types.js';
import { ThawError } from '../lib/errors.js';
import { at } from '../lib/at.js';

/** Options of the MovieLens readers. */
export interface MovieLensOptions {
  /** Add the item field `title` with the title's words. @default false */
  titleTokens?: boolean;
}

export type MovieLensKind = 'ml100k' | 'ml1m';

const GENRES_100K = [
  'unknown',
  'Action',
  'Adventure',
  'Animation',
  "Children's",
  'Comedy',
  'Crime',
  'Documentary',
  'Drama',
  'Fantasy',
  'Film-Noir',
  'Horror',
  'Musical',
  'Mystery',
  'Romance',
  'Sci-Fi',
  'Thriller',
  'War',
  'Western',
];

/** ML-1M age band code of an exact age. */
export function ageBand(age: number): string {
  if (age < 18) return '1';
  if (age < 25) return '18';
  if (age < 35) return '25';
  if (age < 45) return '35';
  if (age < 50) return '45';
  if (age < 56) return '50';
  return '56';
}

function formatError(file: string, line: number, why: string): ThawError {
  return new ThawError('DATA_FORMAT', `${file}:${line}: ${why}`);
}

/** Calls `fn(line, lineNo)` for every non-empty line of a latin1 file, streaming. */
async function eachLine(file: string, fn: (line: string, lineNo: number) => void): Promise<void> {
  let stream;
  try {
    stream = createReadStream(file, { encoding: 'latin1' });
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of rl) {
      lineNo++;
      if (line.trim() === '') continue;
      fn(line, lineNo);
    }
  } catch (err) {
    if (err instanceof ThawError) throw err;
    throw new ThawError('DATA_FORMAT', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  } finally {
    stream?.destroy();
  }
}

function titleWords(title: string): string[] {
  const words = title
    .replace(/\(\d{4}\)\s*$/, '')
    .toLowerCase()
    .match(/[\p{L}\p{N}]+/gu);
  return words ? [...new Set(words)] : [];
}

function itemFeatures(genres: string[], year: string | undefined, title: string, opts: MovieLensOptions): Features {
  // Keys in sorted order (genres < title < year): the feature encoder's fast path.
  const f: Features = {};
  if (genres.length > 0) f.genres = genres;
  if (opts.titleTokens) {
    const words = titleWords(title);
    if (words.length > 0) f.title = words;
  }
  if (year !== undefined) f.year = [year];
  return Object.freeze(f);
}

function userFeatures(age: string, gender: string, occupation: string, zip: string): Features {
  return Object.freeze({ age: [age], gender: [gender], occupation: [occupation], zip2: [zip.slice(0, 2)] });
}

const yearOfTitle = (title: string): string | undefined => /\((\d{4})\)\s*$/.exec(title)?.[1];

/** Users and items of a dataset: id → features. */
export interface MovieLensCatalog {
  users: Map<string, Features>;
  items: Map<string, Features>;
}

/** Reads `u.user` and `u.item` (ML-100K) or `users.dat` and `movies.dat` (ML-1M). */
export async function readCatalog(kind: MovieLensKind, dir: string, opts: MovieLensOptions = {}): Promise<MovieLensCatalog> {
  const users = new Map<string, Features>();
  const items = new Map<string, Features>();
  if (kind === 'ml100k') {
    const uf = join(dir, 'u.user');
    await eachLine(uf, (line, n) => {
      const p = line.split('|');
      if (p.length !== 5) throw formatError(uf, n, `expected 5 '|'-separated fields, got ${p.length}`);
      const age = Number(p[1]);
      if (!Number.isInteger(age) || age < 0) throw formatError(uf, n, `bad age "${p[1]}"`);
      users.set(at(p, 0, 'p'), userFeatures(ageBand(age), at(p, 2, 'p'), at(p, 3, 'p'), at(p, 4, 'p')));
    });
    const itf = join(dir, 'u.item');
    await eachLine(itf, (line, n) => {
      const p = line.split('|');
      if (p.length !== 5 + GENRES_100K.length) throw formatError(itf, n, `expected ${5 + GENRES_100K.length} '|'-separated fields, got ${p.length}`);
      const title = at(p, 1, 'p');
      const year = /(\d{4})$/.exec(at(p, 2, 'p'))?.[1] ?? yearOfTitle(title);
      const genres = GENRES_100K.filter((_, g) => p[5 + g] === '1');
      items.set(at(p, 0, 'p'), itemFeatures(genres, year, title, opts));
    });
  } else {
    const uf = join(dir, 'users.dat');
    await eachLine(uf, (line, n) => {
      const p = line.split('::');
      if (p.length !== 5) throw formatError(uf, n, `expected 5 '::'-separated fields, got ${p.length}`);
      users.set(at(p, 0, 'p'), userFeatures(at(p, 2, 'p'), at(p, 1, 'p'), at(p, 3, 'p'), at(p, 4, 'p')));
    });
    const mf = join(dir, 'movies.dat');
    await eachLine(mf, (line, n) => {
      const p = line.split('::');
      if (p.length !== 3) throw formatError(mf, n, `expected 3 '::'-separated fields, got ${p.length}`);
      const genres = p[2] === '' ? [] : at(p, 2, 'p').split('|');
      items.set(at(p, 0, 'p'), itemFeatures(genres, yearOfTitle(at(p, 1, 'p')), at(p, 1, 'p'), opts));
    });
  }
  return { users, items };
}

/** Ratings in columns (O(ratings) typed memory; sorting needs them all). */
interface Ratings {
  user: Int32Array;
  item: Int32Array;
  rating: Uint8Array;
  timeS: Float64Array;
  n: number;
}

async function readRatings(kind: MovieLensKind, dir: string): Promise<Ratings> {
  const file = join(dir, kind === 'ml100k' ? 'u.data' : 'ratings.dat');
  const sep = kind === 'ml100k' ? '\t' : '::';
  let cap = 1 << 17;
  let r: Ratings = { user: new Int32Array(cap), item: new Int32Array(cap), rating: new Uint8Array(cap), timeS: new Float64Array(cap), n: 0 };
  await eachLine(file, (line, lineNo) => {
    const p = line.split(sep);
    if (p.length !== 4) throw formatError(file, lineNo, `expected 4 fields separated by ${JSON.stringify(sep)}, got ${p.length}`);
    const [u, i, rating, t] = p.map(Number) as [number, number, number, number];
    if (!Number.isInteger(u) || !Number.isInteger(i) || u <= 0 || i <= 0) throw formatError(file, lineNo, 'user and item ids must be positive integers');
    if (!Number.isInteger(rating) || rating < 1 || rating > 5) throw formatError(file, lineNo, `rating must be 1..5, got "${p[2]}"`);
    if (!Number.isInteger(t) || t < 0) throw formatError(file, lineNo, `bad timestamp "${p[3]}"`);
    if (r.n === cap) {
      cap *= 2;
      const g: Ratings = { user: new Int32Array(cap), item: new Int32Array(cap), rating: new Uint8Array(cap), timeS: new Float64Array(cap), n: r.n };
      g.user.set(r.user);
      g.item.set(r.item);
      g.rating.set(r.rating);
      g.timeS.set(r.timeS);
      r = g;
    }
    r.user[r.n] = u;
    r.item[r.n] = i;
    r.rating[r.n] = rating;
    r.timeS[r.n] = t;
    r.n++;
  });
  return r;
}

/**
 * The rating events of a MovieLens directory in time order (see the file comment). The catalog
 * and the ratings (as typed arrays) are loaded first, since time order needs every row; events are
 * then built lazily.
 */
export async function* readMovieLens(kind: MovieLensKind, dir: string, opts: MovieLensOptions = {}): AsyncGenerator<LabelledEvent, void, undefined> {
  const { users, items } = await readCatalog(kind, dir, opts);
  const r = await readRatings(kind, dir);
  const order = new Uint32Array(r.n);
  for (let j = 0; j < r.n; j++) order[j] = j;
  order.sort((a, b) => (r.timeS[a] ?? 0) - (r.timeS[b] ?? 0) || (r.user[a] ?? 0) - (r.user[b] ?? 0) || (r.item[a] ?? 0) - (r.item[b] ?? 0));
  const ratingsFile = join(dir, kind === 'ml100k' ? 'u.data' : 'ratings.dat');
  for (let q = 0; q < r.n; q++) {
    const j = order[q] ?? 0;
    const userId = String(r.user[j]);
    const itemId = String(r.item[j]);
    const uf = users.get(userId);
    const itf = items.get(itemId);
    if (!uf) throw new ThawError('DATA_FORMAT', `${ratingsFile}: rating of unknown user ${userId}`);
    if (!itf) throw new ThawError('DATA_FORMAT', `${ratingsFile}: rating of unknown item ${itemId}`);
    yield {
      eventId: `${kind}-${userId}-${itemId}`,
      timeMs: (r.timeS[j] ?? 0) * 1000,
      userId,
      itemId,
      label: (r.rating[j] ?? 0) >= 4 ? 1 : 0,
      userFeatures: uf,
      itemFeatures: itf,
    };
  }
}

/** MovieLens-100K (`u.data`, `u.user`, `u.item`) as events. */
export function readMl100k(dir: string, opts: MovieLensOptions = {}): AsyncGenerator<LabelledEvent, void, undefined> {
  return readMovieLens('ml100k', dir, opts);
}

/** MovieLens-1M (`ratings.dat`, `users.dat`, `movies.dat`) as events. */
export function readMl1m(dir: string, opts: MovieLensOptions = {}): AsyncGenerator<LabelledEvent, void, undefined> {
  return readMovieLens('ml1m', dir, opts);
}

/** Profiles of every user then every item (timeMs 0: the datasets have no arrival times). */
export async function readMovieLensProfiles(kind: MovieLensKind, dir: string, opts: MovieLensOptions = {}): Promise<EntityProfile[]> {
  const { users, items } = await readCatalog(kind, dir, opts);
  const out: EntityProfile[] = [];
  for (const [entityId, features] of users) out.push({ side: 'user', entityId, timeMs: 0, features });
  for (const [entityId, features] of items) out.push({ side: 'item', entityId, timeMs: 0, features });
  return out;
}
