/**
 * PredictionRow → the JSONEachRow object both engines insert. Rows are validated here, before they
 * reach a server or the spool: a malformed row would otherwise fail its whole batch on every replay.
 * ClickHouse 18.16 ignores column DEFAULTs for fields omitted from JSONEachRow (it writes zeros), so
 * every column, `inserted_at` included, is sent explicitly.
 */
import { ThawError } from '../lib/errors.js';
import { bucketOf, type PredictionRow } from './types.js';

export interface StoredRow {
  event_id: string;
  /** Unix seconds. */
  event_time: number;
  event_time_ms: number;
  /** UTC date, YYYY-MM-DD (18.16 does not parse day numbers in JSONEachRow). */
  day: string;
  side: 'user' | 'item';
  entity_id: string;
  prior_count: number;
  bucket: string;
  score: number;
  label: 0 | 1;
  adapter: string;
  release: string;
  namespace: string;
  /** Unix seconds. */
  inserted_at: number;
}

const MAX_DATETIME_MS = 4_294_967_295_000; // DateTime is UInt32 seconds

const DAY_MS = 86_400_000;
let lastDay = { n: NaN, text: '' };
/** YYYY-MM-DD of a unix ms time; consecutive rows mostly share a day, so the last one is cached. */
function utcDay(ms: number): string {
  const n = Math.floor(ms / DAY_MS);
  if (n !== lastDay.n) lastDay = { n, text: new Date(n * DAY_MS).toISOString().slice(0, 10) };
  return lastDay.text;
}

function invalid(row: PredictionRow, why: string): ThawError {
  return new ThawError('VALIDATION_FAILED', `prediction row ${JSON.stringify(String(row.eventId)).slice(0, 80)}: ${why}`);
}

export function toStoredRow(row: PredictionRow, insertedAtSec: number): StoredRow {
  if (typeof row.eventId !== 'string' || row.eventId.length === 0) throw invalid(row, 'eventId must be a non-empty string');
  if (!Number.isSafeInteger(row.eventTimeMs) || row.eventTimeMs < 0 || row.eventTimeMs > MAX_DATETIME_MS) {
    throw invalid(row, 'eventTimeMs must be an integer unix time in ms within DateTime range');
  }
  if (row.side !== 'user' && row.side !== 'item') throw invalid(row, 'side must be user or item');
  if (!Number.isSafeInteger(row.priorCount) || row.priorCount < 0 || row.priorCount > 0xffffffff) {
    throw invalid(row, 'priorCount must be a UInt32');
  }
  if (!Number.isFinite(row.score)) throw invalid(row, 'score must be finite');
  if (row.label !== 0 && row.label !== 1) throw invalid(row, 'label must be 0 or 1');
  for (const k of ['entityId', 'adapter', 'release', 'namespace'] as const) {
    if (typeof row[k] !== 'string') throw invalid(row, `${k} must be a string`);
  }
  return {
    event_id: row.eventId,
    event_time: Math.floor(row.eventTimeMs / 1000),
    event_time_ms: row.eventTimeMs,
    day: utcDay(row.eventTimeMs),
    side: row.side,
    entity_id: row.entityId,
    prior_count: row.priorCount,
    bucket: bucketOf(row.priorCount),
    score: row.score,
    label: row.label,
    adapter: row.adapter,
    release: row.release,
    namespace: row.namespace,
    inserted_at: insertedAtSec,
  };
}

export function toStoredRows(rows: readonly PredictionRow[], nowMs = Date.now()): StoredRow[] {
  const at = Math.floor(nowMs / 1000);
  return rows.map((r) => toStoredRow(r, at));
}

// TabSeparated escapes of a String value (ClickHouse's text format): backslash, tab, line breaks.
const TSV_SPECIAL = /[\\\t\n\r]/;
const TSV_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function tsvString(v: string): string {
  return TSV_SPECIAL.test(v) ? v.replace(/[\\\t\n\r]/g, (c) => TSV_ESCAPES[c] ?? c) : v;
}

/**
 * TabSeparated body of the rows, columns in `PREDICTION_COLUMNS` order (analytics/ddl.ts), one line
 * per row, trailing newline. What the server sink inserts: a plain string build, cheaper in Node than
 * JSONEachRow's JSON.stringify per row and cheaper for the server to parse (bench/spine: sink).
 */
export function toTabSeparated(rows: readonly StoredRow[]): string {
  let out = '';
  for (const r of rows) {
    out +=
      tsvString(r.event_id) +
      '\t' +
      r.event_time +
      '\t' +
      r.event_time_ms +
      '\t' +
      r.day +
      '\t' +
      r.side +
      '\t' +
      tsvString(r.entity_id) +
      '\t' +
      r.prior_count +
      '\t' +
      tsvString(r.bucket) +
      '\t' +
      r.score +
      '\t' +
      r.label +
      '\t' +
      tsvString(r.adapter) +
      '\t' +
      tsvString(r.release) +
      '\t' +
      tsvString(r.namespace) +
      '\t' +
      r.inserted_at +
      '\n';
  }
  return out;
}

/** JSONEachRow body: one JSON object per line, trailing newline. */
export function toJsonEachRow(rows: readonly StoredRow[]): string {
  let out = '';
  for (const r of rows) out += JSON.stringify(r) + '\n';
  return out;
}
