/**
 * De-duplication of the prediction log without `FINAL`. A row counts once per (namespace, adapter,
 * side, event_id), the table's ReplacingMergeTree key; of redelivered copies the latest inserted
 * wins, as a merge would keep it.
 *
 * Why not FINAL: FINAL merges every part of the table while reading. After a backfill whose events
 * span decades (a 22-year replay left 641 parts in the then month-partitioned table) FINAL over
 * them, and so every curve query, failed at ClickHouse 18.16's 3.7 GiB per-query limit. A GROUP BY
 * on the key instead keeps one small state per key, and `max_bytes_before_external_group_by` (set
 * by the caller's SETTINGS) spills it to disk past a bound, so memory stays bounded however many
 * parts or rows there are. Results are the same as FINAL's.
 */
import { DISTRIBUTED_DEDUP_SETTING } from './cluster.js';

/**
 * GROUP BY state above which the prediction-log queries (curves, de-duplication) spill to disk
 * instead of failing. Bytes. Grouping by (keys, score) keeps one group per distinct score: a 10M-row
 * namespace used about 2 GB in memory on ClickHouse 18.16 (query_log), and two such queries side by
 * side hit the server's 3.7 GiB per-query limit.
 */
export const EXTERNAL_GROUP_BY_BYTES = 1_000_000_000;

/** The de-duplication key of the prediction log (its ORDER BY). */
export const DEDUP_KEY = ['namespace', 'adapter', 'side', 'event_id'] as const;

/** Prefix of the de-duplicated value columns: `latestRowsSql(..., ['score'])` returns `latest_score`. */
export const LATEST = 'latest_';

/**
 * SELECT of one row per DEDUP_KEY of `from` (filtered by `where`, '' for none): the key columns plus
 * `latest_<column>` for each of `columns` (taken from the copy inserted last). The aliases differ from
 * the column names because ClickHouse substitutes aliases into expressions of the same SELECT.
 */
export function latestRowsSql(from: string, where: string, columns: readonly string[]): string {
  const values = columns.map((c) => `argMax(${c}, inserted_at) AS ${LATEST}${c}`);
  return `SELECT ${[...DEDUP_KEY, ...values].join(', ')}
FROM ${from}${where === '' ? '' : ` ${where}`}
GROUP BY ${DEDUP_KEY.join(', ')}`;
}

/** SETTINGS clause that bounds the GROUP BY memory of a de-duplicating query. */
export const DEDUP_SETTINGS = `SETTINGS max_bytes_before_external_group_by = ${EXTERNAL_GROUP_BY_BYTES}`;

/**
 * DEDUP_SETTINGS for a query whose only read of the prediction log is `latestRowsSql` (or another
 * GROUP BY on DEDUP_KEY) over a table: on Thaw's Distributed table (`sharded`, analytics/cluster.ts)
 * each shard then finishes its own de-duplication, which is exact because the sharding key puts
 * every copy of an event on one shard.
 */
export function dedupSettings(sharded: boolean): string {
  return sharded ? `${DEDUP_SETTINGS}, ${DISTRIBUTED_DEDUP_SETTING}` : DEDUP_SETTINGS;
}
