/** MovieLens-100K ratings (u.data) in time order, read by both warm-up splits (evaluation/warmup-split.ts and evaluation/user-warmup-split.ts). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ThawError } from '../lib/errors.js';

/** One u.data row: MovieLens user and item ids, rating 1..5, unix time in seconds. */
export interface Rating {
  user: number;
  item: number;
  rating: number;
  time: number;
}

/** Every rating of `dir`/u.data, sorted by time; throws DATA_FORMAT on a missing file or a bad line. */
export function readRatings(dir: string): Rating[] {
  let text: string;
  try {
    text = readFileSync(path.join(dir, 'u.data'), 'utf8');
  } catch (cause) {
    throw new ThawError('DATA_FORMAT', `cannot read u.data in ${dir}`, { cause });
  }
  const out: Rating[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [u, i, r, t] = line.split('\t').map(Number);
    if (u === undefined || i === undefined || r === undefined || t === undefined || [u, i, r, t].some(Number.isNaN)) {
      throw new ThawError('DATA_FORMAT', `bad u.data line: ${line}`);
    }
    out.push({ user: u, item: i, rating: r, time: t });
  }
  // Array.prototype.sort is stable: ties keep file order.
  return out.sort((a, b) => a.time - b.time);
}
