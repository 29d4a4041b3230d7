/**
 * DDL of the prequential prediction log. The same statements run on ClickHouse 18.16 and on chDB
 * (26.x), so they avoid LowCardinality, DateTime64, codecs and TTLs. `schemas/clickhouse/predictions.sql`
 * is this rendered for `thaw.predictions` (a unit test keeps the two equal).
 *
 * ReplacingMergeTree collapses redeliveries of the same (namespace, adapter, side, event_id) in the
 * background, but merges are eventual: the queries de-duplicate exactly with a GROUP BY on that key
 * (analytics/dedup.ts), never with `FINAL`.
 *
 * Partitioned by namespace, not by event time: an INSERT writes one part per partition it touches,
 * and parts of different partitions never merge. By month, a backfill of 22 years of events wrote
 * up to 264 parts per insert and left 641 parts; by namespace an insert writes one part (a worker
 * writes one namespace) whatever the events' times, and background merges keep the part count
 * bounded (logarithmic in the rows). A namespace is also what gets dropped as a whole
 * (`thaw namespace drop`). The partition key is part of the de-duplication key, so copies of an
 * event always meet in one partition and merge. Existing month-partitioned tables: docs/analytics.md.
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

/** The column list of the prediction log, as in CREATE TABLE (shared by the local and Distributed tables). */
export const PREDICTION_COLUMNS_DDL = `(
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
)`;

export function createPredictionsTableSql(database: string, table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${sqlTable(database, table)}
${PREDICTION_COLUMNS_DDL}
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY namespace
ORDER BY (namespace, adapter, side, event_id)`;
}

/** Both statements, in order: database, then table. Each is idempotent. */
export function predictionsDdl(database: string = DEFAULT_DATABASE, table: string = DEFAULT_TABLE): string[] {
  return [createDatabaseSql(database), createPredictionsTableSql(database, table)];
}
