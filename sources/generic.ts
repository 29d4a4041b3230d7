/**
 * Generic event files: CSV and JSONL, read line by line (streaming, O(1) memory in the file size)
 * and validated strictly: the first bad line stops the read with a DATA_FORMAT error naming the
 * file and line number. The format is documented in docs/event-format.md.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Features, LabelledEvent } from '../schemas/types.js';
import { ThawError } from '../lib/errors.js';
import { at, defined } from '../lib/at.js';

const REQUIRED = ['event_id', 'time', 'user_id', 'item_id', 'label'] as const;

function bad(file: string, line: number, why: string): ThawError {
  return new ThawError('DATA_FORMAT', `${file}:${line}: ${why}`);
}

/** Lines of a UTF-8 file with 1-based numbers; a missing file is a DATA_FORMAT error. */
async function* lines(file: string): AsyncGenerator<[string, number], void, undefined> {
  const stream = createReadStream(file, { encoding: 'utf8' });
  try {
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    let n = 0;
    for await (const line of rl) yield [line, ++n];
  } catch (err) {
    throw new ThawError('DATA_FORMAT', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  } finally {
    stream.destroy();
  }
}

/**
 * Event time from unix milliseconds (an integer, or digits in a string) or an ISO-8601 string: a
 * date (`2024-01-31`, UTC midnight) or a date-time with a zone (`2024-01-31T12:00:00Z`,
 * `2024-01-31T13:00:00+01:00`). Undefined when neither.
 */
export function parseTime(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  if (/^\d+$/.test(value)) {
    const ms = Number(value);
    return Number.isSafeInteger(ms) ? ms : undefined;
  }
  // A time of day needs a zone (Z or ±hh:mm): without one JS would read it as the machine's local
  // time and the same file would give different times on different hosts. A bare date is UTC.
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** Splits one CSV line (RFC 4180 quoting within the line: `"a,b"`, `"say ""hi"""`). */
export function splitCsvLine(line: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let cell = '';
      i++;
      for (;;) {
        if (i >= line.length) return undefined; // unterminated quote
        const c = at(line, i, 'line');
        if (c === '"') {
          if (line[i + 1] === '"') {
            cell += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        cell += c;
        i++;
      }
      out.push(cell);
      if (i === line.length) return out;
      if (line[i] !== ',') return undefined;
      i++;
    } else {
      const comma = line.indexOf(',', i);
      if (comma < 0) {
        out.push(line.slice(i));
        return out;
      }
      out.push(line.slice(i, comma));
      i = comma + 1;
    }
  }
}

/**
 * Reads a CSV event file. Header: `event_id,time,user_id,item_id,label` in any order plus feature
 * columns `u_<field>` / `i_<field>`; a feature cell holds `|`-separated tokens, empty = absent.
 */
export async function* readCsvEvents(file: string): AsyncGenerator<LabelledEvent, void, undefined> {
  let header: string[] | undefined;
  let col: Record<(typeof REQUIRED)[number], number> | undefined;
  let userCols: [string, number][] = [];
  let itemCols: [string, number][] = [];
  for await (const [line, n] of lines(file)) {
    if (header === undefined) {
      const h = splitCsvLine(line.replace(/^\uFEFF/, ''));
      if (!h) throw bad(file, n, 'malformed header');
      header = h.map((c) => c.trim());
      const seen = new Set<string>();
      for (const c of header) {
        if (seen.has(c)) throw bad(file, n, `duplicate column "${c}"`);
        seen.add(c);
        const known = (REQUIRED as readonly string[]).includes(c) || /^[ui]_.+$/.test(c);
        if (!known) throw bad(file, n, `unknown column "${c}" (expected ${REQUIRED.join(', ')}, u_<field>, i_<field>)`);
      }
      const missing = REQUIRED.filter((c) => !seen.has(c));
      if (missing.length > 0) throw bad(file, n, `missing column(s) ${missing.join(', ')}`);
      const h2 = header;
      col = Object.fromEntries(REQUIRED.map((c) => [c, h2.indexOf(c)])) as Record<(typeof REQUIRED)[number], number>;
      // Sorted field order: feature objects come out with sorted keys (the encoder's fast path).
      const feats = (p: string): [string, number][] => h2.flatMap((c, i): [string, number][] => (c.startsWith(p) ? [[c.slice(2), i]] : [])).sort((a, b) => (a[0] < b[0] ? -1 : 1));
      userCols = feats('u_');
      itemCols = feats('i_');
      continue;
    }
    if (line.trim() === '') continue;
    const cells = splitCsvLine(line);
    if (!cells) throw bad(file, n, 'malformed CSV (unterminated quote or text after a closing quote)');
    if (cells.length !== header.length) throw bad(file, n, `expected ${header.length} cells, got ${cells.length}`);
    const c = defined(col, 'col');
    const eventId = at(cells, c.event_id, 'cells');
    const userId = at(cells, c.user_id, 'cells');
    const itemId = at(cells, c.item_id, 'cells');
    if (eventId === '') throw bad(file, n, 'empty event_id');
    if (userId === '') throw bad(file, n, 'empty user_id');
    if (itemId === '') throw bad(file, n, 'empty item_id');
    const timeMs = parseTime(cells[c.time]);
    if (timeMs === undefined) throw bad(file, n, `time "${cells[c.time]}" is neither unix ms nor ISO-8601`);
    const labelCell = cells[c.label];
    if (labelCell !== '0' && labelCell !== '1') throw bad(file, n, `label must be 0 or 1, got "${labelCell}"`);
    const feats = (cols: [string, number][]): Features => {
      const f: Features = {};
      for (const [field, i] of cols) {
        const cell = at(cells, i, 'cells');
        if (cell === '') continue;
        const tokens = cell.split('|');
        if (tokens.some((t) => t === '')) throw bad(file, n, `empty token in column "${defined(header, 'header')[i]}"`);
        f[field] = tokens;
      }
      return f;
    };
    yield { eventId, timeMs, userId, itemId, label: labelCell === '1' ? 1 : 0, userFeatures: feats(userCols), itemFeatures: feats(itemCols) };
  }
  if (header === undefined) throw bad(file, 1, 'empty file (no header)');
}

const JSON_KEYS = new Set(['eventId', 'time', 'timeMs', 'userId', 'itemId', 'label', 'userFeatures', 'itemFeatures']);

function jsonFeatures(value: unknown, key: string, file: string, n: number): Features {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(file, n, `${key} must be an object of string arrays`);
  const f: Features = {};
  for (const field of Object.keys(value).sort()) {
    const tokens = (value as Record<string, unknown>)[field];
    if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string' || t === '')) {
      throw bad(file, n, `${key}.${field} must be an array of non-empty strings`);
    }
    f[field] = tokens as string[];
  }
  return f;
}

/**
 * Reads a JSONL event file: one LabelledEvent-shaped object per line; `time` (ISO-8601 or unix ms)
 * or `timeMs` (unix ms); blank lines are skipped; unknown keys are errors.
 */
export async function* readJsonlEvents(file: string): AsyncGenerator<LabelledEvent, void, undefined> {
  for await (const [line, n] of lines(file)) {
    if (line.trim() === '') continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (err) {
      throw new ThawError('DATA_FORMAT', `${file}:${n}: invalid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw bad(file, n, 'expected a JSON object');
    const o = obj as Record<string, unknown>;
    for (const key of Object.keys(o)) if (!JSON_KEYS.has(key)) throw bad(file, n, `unknown key "${key}"`);
    for (const key of ['eventId', 'userId', 'itemId'] as const) {
      if (typeof o[key] !== 'string' || o[key] === '') throw bad(file, n, `${key} must be a non-empty string`);
    }
    if (o.time !== undefined && o.timeMs !== undefined) throw bad(file, n, 'give either time or timeMs, not both');
    const rawTime = o.timeMs ?? o.time;
    if (rawTime === undefined) throw bad(file, n, 'missing time (or timeMs)');
    const timeMs = o.timeMs !== undefined ? (Number.isSafeInteger(o.timeMs) && (o.timeMs as number) >= 0 ? (o.timeMs as number) : undefined) : parseTime(rawTime);
    if (timeMs === undefined) throw bad(file, n, `time ${JSON.stringify(rawTime)} is neither unix ms nor ISO-8601`);
    if (o.label !== 0 && o.label !== 1) throw bad(file, n, `label must be 0 or 1, got ${JSON.stringify(o.label)}`);
    yield {
      eventId: o.eventId as string,
      timeMs,
      userId: o.userId as string,
      itemId: o.itemId as string,
      label: o.label,
      userFeatures: jsonFeatures(o.userFeatures, 'userFeatures', file, n),
      itemFeatures: jsonFeatures(o.itemFeatures, 'itemFeatures', file, n),
    };
  }
}
