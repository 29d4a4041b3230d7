/**
 * Warm-up curve SQL: per (adapter, side, release, namespace, bucket[, day]) the number of events, CTR,
 * AUC and log loss of the predict-before-learn scores. The SQL runs unchanged on ClickHouse 18.16 and
 * chDB 26.x: no window functions, no arrayAUC, no query parameters (filters are validated literals).
 *
 * De-duplication: a row counts once per (namespace, adapter, side, event_id), the table's
 * ReplacingMergeTree key, through a GROUP BY on that key (analytics/dedup.ts), not `FINAL`: FINAL
 * merges every part while reading, and after a backfill spanning decades (641 parts) it failed at
 * the server's 3.7 GiB per-query limit; the GROUP BY spills to disk past EXTERNAL_GROUP_BY_BYTES.
 * Kafka redeliveries and spool replays never double count. Two releases scored under the same
 * (namespace, adapter, side) collapse into one; run them in separate namespaces (as `thaw demo` does).
 *
 * AUC is the Mann–Whitney statistic with ties counted as one half, i.e. the rank formula
 * (sum of positive ranks − P(P+1)/2) / (P·N) with average ranks for tied scores. Without window
 * functions it is computed from the distinct scores of a group: rows are first grouped by score
 * (positives, negatives per score), the groups are sorted by score with `arraySort`, and each score's
 * positives are credited with the negatives strictly below (`arrayCumSum` − own) plus half of the
 * negatives at the same score. That is exact, also with ties. A bucket with a single class has AUC NaN.
 */
import { BUCKETS, EARLY_BUCKET, type CurveBucket, type CurveRow, type CurveSource } from './types.js';
import { DEFAULT_DATABASE, DEFAULT_TABLE } from './ddl.js';
import { dedupSettings, EXTERNAL_GROUP_BY_BYTES, LATEST, latestRowsSql } from './dedup.js';
import { sqlSide, sqlString, sqlTable, sqlUInt } from './sql.js';

export { EXTERNAL_GROUP_BY_BYTES };
export type { CurveSource } from './types.js';
import { ThawError } from '../lib/errors.js';
import type { Side } from '../schemas/types.js';

/** Scores are clipped to [CLIP, 1 − CLIP] before the log loss. */
export const LOG_LOSS_CLIP = 1e-7;

/** Upper bounds (inclusive) of BUCKETS, mirroring `bucketOf`; the last bucket is open. */
const BUCKET_UPPER: readonly number[] = [0, 2, 5, 10, 20, 50];

export interface CurveFilter {
  /** Database holding the prediction log. @default the target's database, else 'thaw' */
  database?: string;
  /** Prediction log table. @default the target's table, else 'predictions' */
  table?: string;
  /**
   * The table is Thaw's Distributed table over this cluster, sharded by entity (analytics/cluster.ts):
   * each shard de-duplicates its own rows. @default the target's cluster, else none (one node)
   */
  cluster?: string;
  /** Only these namespaces (one value or a list). @default all */
  namespace?: string | readonly string[];
  /** Only these adapters. @default all */
  adapter?: string | readonly string[];
  /** Only this side. @default both */
  side?: Side;
  /** Only these releases. @default all */
  release?: string | readonly string[];
  /** Events at or after this time (unix ms or Date). @default no bound */
  since?: number | Date;
  /** Events strictly before this time (unix ms or Date). @default no bound */
  until?: number | Date;
  /** Add a `day` (UTC date of the event) to the grouping. @default false */
  byDay?: boolean;
  /**
   * Group by release (one curve per release); false pools the rows of every release of an
   * (adapter, side, namespace), their `release` being ''. @default true
   */
  byRelease?: boolean;
  /**
   * `warmup`: the BUCKETS of the prior count; `early`: only rows with 1-5 prior interactions, as one
   * bucket `1-5`. @default 'warmup'
   */
  buckets?: 'warmup' | 'early';
}

/** A curve point with the day it belongs to (when grouped by day). */
export interface DailyCurveRow extends CurveRow {
  /** YYYY-MM-DD (UTC). */
  day: string;
}

/** Anything that can run a SELECT and return JSON rows (both sinks implement it). */

/** SQL expression mapping `prior_count` to its BUCKETS label. */
export function bucketSqlExpr(column = 'prior_count'): string {
  const arms = BUCKET_UPPER.map((upper, i) => `${column} <= ${upper}, '${BUCKETS[i]}'`);
  return `multiIf(${arms.join(', ')}, '${BUCKETS[BUCKETS.length - 1]}')`;
}

function list(value: string | readonly string[], what: string): string {
  const values = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(values) || values.length === 0) {
    throw new ThawError('SQL_VALUE_INVALID', `${what} filter must be a string or a non-empty list`);
  }
  return values.map((v) => sqlString(v, what)).join(', ');
}

function ms(value: number | Date, what: string): string {
  return sqlUInt(value instanceof Date ? value.getTime() : value, what);
}

/** The WHERE clause of a filter ('' when nothing is filtered). */
export function filterSql(filter: CurveFilter): string {
  const where: string[] = [];
  if (filter.namespace !== undefined) where.push(`namespace IN (${list(filter.namespace, 'namespace')})`);
  if (filter.adapter !== undefined) where.push(`adapter IN (${list(filter.adapter, 'adapter')})`);
  if (filter.release !== undefined) where.push(`release IN (${list(filter.release, 'release')})`);
  if (filter.side !== undefined) where.push(`side = ${sqlSide(filter.side)}`);
  if (filter.since !== undefined) where.push(`event_time_ms >= ${ms(filter.since, 'since')}`);
  if (filter.until !== undefined) where.push(`event_time_ms < ${ms(filter.until, 'until')}`);
  if (filter.buckets === 'early') where.push('prior_count >= 1 AND prior_count <= 5');
  return where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`;
}

/** SQL of the warm-up curve for `filter` (JSONEachRow-friendly column names). */
export function curveSql(filter: CurveFilter = {}): string {
  const from = sqlTable(filter.database ?? DEFAULT_DATABASE, filter.table ?? DEFAULT_TABLE);
  const byRelease = filter.byRelease !== false;
  const keys = ['adapter', 'side', ...(byRelease ? ['release'] : []), 'namespace', 'bucket', ...(filter.byDay === true ? ['day'] : [])].join(', ');
  const outerKeys = byRelease ? keys : keys.replace('side, ', "side, '' AS release, ");
  const bucketExpr = filter.buckets === 'early' ? `'${EARLY_BUCKET}'` : bucketSqlExpr(`${LATEST}prior_count`);
  const where = filterSql(filter);
  const bucketOrder = `indexOf([${[...BUCKETS, EARLY_BUCKET].map((b) => `'${b}'`).join(', ')}], bucket)`;
  const p = `least(greatest(toFloat64(${LATEST}score), ${LOG_LOSS_CLIP}), ${1 - LOG_LOSS_CLIP})`;
  const latest = latestRowsSql(from, where, ['release', 'day', 'prior_count', 'score', 'label']).replace(/\n/g, '\n            ');
  return `SELECT
    ${outerKeys},
    n,
    pos / n AS ctr,
    if(pos = 0 OR neg = 0, nan,
       arraySum(arrayMap((ps, cum, ng) -> ps * ((cum - ng) + ng / 2), pos_by_score, arrayCumSum(neg_by_score), neg_by_score))
       / (pos * neg)) AS auc,
    ll_sum / n AS log_loss
FROM
(
    SELECT
        ${keys},
        sum(n_s) AS n,
        sum(pos_s) AS pos,
        n - pos AS neg,
        sum(ll_s) AS ll_sum,
        arraySort((x, s) -> s, groupArray(pos_s), groupArray(score)) AS pos_by_score,
        arraySort((x, s) -> s, groupArray(n_s - pos_s), groupArray(score)) AS neg_by_score
    FROM
    (
        SELECT ${keys}, score, count() AS n_s, sum(label) AS pos_s, sum(ll) AS ll_s
        FROM
        (
            SELECT
                adapter, side, ${LATEST}release AS release, namespace, ${bucketExpr} AS bucket, ${LATEST}day AS day,
                ${LATEST}score AS score, ${LATEST}label AS label,
                -(${LATEST}label * log(${p}) + (1 - ${LATEST}label) * log(1 - ${p})) AS ll
            FROM
            (
            ${latest}
            )
        )
        GROUP BY ${keys}, score
    )
    GROUP BY ${keys}
)
ORDER BY adapter, side, ${byRelease ? 'release, ' : ''}namespace${filter.byDay === true ? ', day' : ''}, ${bucketOrder}
${dedupSettings(filter.cluster !== undefined)}`;
}

function num(v: unknown): number {
  if (v === null || v === undefined) return NaN; // ClickHouse writes nan/inf as null in JSON
  return typeof v === 'number' ? v : Number(v); // 18.16 quotes 64-bit integers
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : String(v);
}

/** Parses one result row of `curveSql`. */
export function parseCurveRow(r: Record<string, unknown>): CurveRow | DailyCurveRow {
  const side = str(r.side);
  const bucket = str(r.bucket);
  if ((side !== 'user' && side !== 'item') || !([...BUCKETS, EARLY_BUCKET] as readonly string[]).includes(bucket)) {
    throw new ThawError('DATA_FORMAT', `unexpected curve row: side ${side}, bucket ${bucket}`);
  }
  const row: CurveRow = {
    adapter: str(r.adapter),
    side,
    release: str(r.release),
    namespace: str(r.namespace),
    bucket: bucket as CurveBucket,
    n: num(r.n),
    ctr: num(r.ctr),
    auc: num(r.auc),
    logLoss: num(r.log_loss),
  };
  return r.day === undefined ? row : { ...row, day: str(r.day) };
}

/** Runs the curve query on a sink or any CurveSource; rows in (adapter, side, release, namespace, [day], bucket) order. */
export async function queryCurves(target: CurveSource, filter: CurveFilter = {}): Promise<CurveRow[]> {
  const cluster = filter.cluster ?? target.cluster;
  const sql = curveSql({
    ...filter,
    database: filter.database ?? target.database,
    table: filter.table ?? target.table,
    ...(cluster === undefined ? {} : { cluster }),
  });
  const rows = await target.query(sql);
  return rows.map(parseCurveRow);
}
