/**
 * DDL of the prequential prediction log. The same statements run on ClickHouse 18.16 and on chDB
 * (26.x), so they avoid LowCardinality, DateTime64, codecs and TTLs. `schemas/clickhouse/predictions.sql`
 * is this rendered for `thaw.predictions` (a unit test keeps the two equal).
 *
 * ReplacingMergeTree collapses redeliveries of the same (namespace, adapter, side, event_id) in the
 * background, but merges are eventual: the curve queries de-duplicate exactly with `FINAL`.
 */
import { sqlIdent, sqlTable } from './sql.js';

/** Default database and table names. */
export const DEFAULT_DATABASE = 'thaw';
export const DEFAULT_TABLE = 'predictions';

/** Columns in insert order (what `row-codec.ts` produces). */
export const PREDICTION_COLUMNS = [
  'event_id',
  'event_time',
  'event_time_ms',
  'day',
  'side',
  'entity_id',
  'prior_count',
  'bucket',
  'score',
  'label',
  'adapter',
  'release',
  'namespace',
  'inserted_at',
] as const;

export function createDatabaseSql(database: string): string {
  return `CREATE DATABASE IF NOT EXISTS ${sqlIdent(database, 'database')}`;
}

export function createPredictionsTableSql(database: string, table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${sqlTable(database, table)}
(
    event_id      String,
    event_time    DateTime,
    event_time_ms UInt64,
    day           Date,
    side          Enum8('user' = 1, 'item' = 2),
    entity_id     String,
    prior_count   UInt32,
    bucket        String,
    score         Float32,
    label         UInt8,
    adapter       String,
    release       String,
    namespace     String,
    inserted_at   DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(day)
ORDER BY (namespace, adapter, side, event_id)`;
}

/** Both statements, in order: database, then table. Each is idempotent. */
export function predictionsDdl(database: string = DEFAULT_DATABASE, table: string = DEFAULT_TABLE): string[] {
  return [createDatabaseSql(database), createPredictionsTableSql(database, table)];
}
