/**
 * The feature fields of the MovieLens-100K warm-up protocol, as in the brief's EmerG reference
 * run (F = 9): item ID, user ID, gender, age (bucketed as ML-1M: 1, 18, 25, 35, 45, 50, 56),
 * occupation, zip code (first 2 characters: the full zip moved EmerG's warm-c AUC by −0.038),
 * release year, title tokens (lower-cased words, year removed; a bag, mean-pooled) and genres (a
 * bag, mean-pooled; the official code sum-pools its sequence fields). Year, title and genres are
 * the item fields the generators read.
 *
 * The vocabulary is field-indexed ("field:token" → row) over all users and items, row 0 being the
 * padding row. Item features are known when an item arrives, so cold items' tokens are in the
 * vocabulary; tokens seen only on cold items simply keep their initial embedding.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ThawError } from '../lib/errors.js';
import type { FieldLayout } from '../models/ctr-model.js';
import { at } from '../lib/at.js';

export const FIELD_NAMES = ['item', 'user', 'gender', 'age', 'occupation', 'zip', 'year', 'title', 'genres'] as const;
/** Slots per row of the bag fields. */
export const TITLE_SLOTS = 8;
export const GENRE_SLOTS = 6;

export interface UserInfo {
  age: string;
  gender: string;
  occupation: string;
  zip: string;
}

export interface ItemInfo {
  year: string;
  title: string[];
  genres: string[];
}

export interface MovieLensFeatures {
  layout: FieldLayout;
  vocabSize: number;
  users: Map<number, UserInfo>;
  items: Map<number, ItemInfo>;
  /** Slot rows and weights for one (user, item) pair (a closure: safe to pass around unbound). */
  encode: (user: number, item: number, idx: Int32Array, w: Float32Array, offset: number) => void;
}

function ageBucket(age: number): string {
  for (const b of [56, 50, 45, 35, 25, 18]) if (age >= b) return String(b);
  return '1';
}

function read(dir: string, file: string, encoding: BufferEncoding): string {
  try {
    return readFileSync(path.join(dir, file), encoding);
  } catch (cause) {
    throw new ThawError('DATA_FORMAT', `cannot read ${file} in ${dir} (expected MovieLens-100K)`, { cause });
  }
}

export function loadFeatures(dir: string): MovieLensFeatures {
  const users = new Map<number, UserInfo>();
  for (const line of read(dir, 'u.user', 'latin1').split('\n')) {
    if (line.trim() === '') continue;
    const [id, age, gender, occupation, zip] = line.split('|');
    if (id === undefined || age === undefined || gender === undefined || occupation === undefined || zip === undefined) {
      throw new ThawError('DATA_FORMAT', `bad u.user line: ${line}`);
    }
    users.set(Number(id), { age: ageBucket(Number(age)), gender, occupation, zip: zip.slice(0, 2) });
  }
  const genreNames = read(dir, 'u.genre', 'latin1')
    .split('\n')
    .filter((l) => l.includes('|'))
    .map((l) => at(l.split('|'), 0, "l.split('|')"));
  const items = new Map<number, ItemInfo>();
  for (const line of read(dir, 'u.item', 'latin1').split('\n')) {
    if (line.trim() === '') continue;
    const parts = line.split('|');
    const id = Number(parts[0]);
    const rawTitle = parts[1] ?? '';
    const m = /\((\d{4})\)\s*$/.exec(rawTitle);
    const date = parts[2] ?? '';
    const year = m?.[1] ?? (date.length >= 4 ? date.slice(-4) : 'unknown');
    const title = rawTitle
      .replace(/\(\d{4}\)\s*$/, '')
      .toLowerCase()
      .split(/[^a-z0-9]+/)
      .filter((t) => t !== '')
      .slice(0, TITLE_SLOTS);
    const flags = parts.slice(5);
    const genres = genreNames.filter((_, i) => flags[i] === '1').slice(0, GENRE_SLOTS);
    items.set(id, { year, title, genres });
  }
  const vocab = new Map<string, number>();
  const row = (key: string): number => {
    let r = vocab.get(key);
    if (r === undefined) {
      r = vocab.size + 1;
      vocab.set(key, r);
    }
    return r;
  };
  const userRows = new Map<number, number[]>();
  for (const [id, u] of [...users].sort((a, b) => a[0] - b[0])) {
    userRows.set(id, [row(`user:${id}`), row(`gender:${u.gender}`), row(`age:${u.age}`), row(`occupation:${u.occupation}`), row(`zip:${u.zip}`)]);
  }
  const itemRows = new Map<number, { year: number; title: number[]; genres: number[] }>();
  for (const [id, it] of [...items].sort((a, b) => a[0] - b[0])) {
    itemRows.set(id, { year: row(`year:${it.year}`), title: it.title.map((t) => row(`title:${t}`)), genres: it.genres.map((g) => row(`genre:${g}`)) });
  }
  const slotField: number[] = [1, 2, 3, 4, 5, 6];
  for (let i = 0; i < TITLE_SLOTS; i++) slotField.push(7);
  for (let i = 0; i < GENRE_SLOTS; i++) slotField.push(8);
  const slots = slotField.length;
  const layout: FieldLayout = { fieldNames: FIELD_NAMES, slotField: Int32Array.from(slotField), itemFields: [6, 7, 8] };
  const encode = (user: number, item: number, idx: Int32Array, w: Float32Array, offset: number): void => {
    const u = userRows.get(user);
    const it = itemRows.get(item);
    if (u === undefined || it === undefined) throw new ThawError('DATA_FORMAT', `unknown user ${user} or item ${item}`);
    const o = offset * slots;
    for (let k = 0; k < 5; k++) {
      idx[o + k] = at(u, k, 'u');
      w[o + k] = 1;
    }
    idx[o + 5] = it.year;
    w[o + 5] = 1;
    it.title.forEach((r, k) => {
      idx[o + 6 + k] = r;
      w[o + 6 + k] = 1 / it.title.length;
    });
    it.genres.forEach((r, k) => {
      idx[o + 6 + TITLE_SLOTS + k] = r;
      w[o + 6 + TITLE_SLOTS + k] = 1 / it.genres.length;
    });
  };
  return { layout, vocabSize: vocab.size + 1, users, items, encode };
}
