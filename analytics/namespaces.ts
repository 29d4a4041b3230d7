/**
 * Namespace housekeeping in the prediction log: a dropped backfill's rows are deleted with a
 * mutation (`ALTER TABLE ... DELETE`, supported by 18.16 and chDB). Mutations run in the background;
 * `dropNamespaceRows` waits until ClickHouse reports them done so a following count is exact.
 */
import { ThawError } from '../lib/errors.js';
import { DEFAULT_DATABASE, DEFAULT_TABLE } from './ddl.js';
import { DEDUP_KEY, dedupSettings } from './dedup.js';
import { sqlString, sqlTable } from './sql.js';
import type { CurveSource, SqlTarget } from './types.js';

export type { SqlTarget } from './types.js';

function names(target: CurveSource): { database: string; table: string } {
  return { database: target.database ?? DEFAULT_DATABASE, table: target.table ?? DEFAULT_TABLE };
}

/** The ALTER statement deleting every row of namespace `ns` (validated literal). */
export function dropNamespaceSql(database: string, table: string, ns: string): string {
  return `ALTER TABLE ${sqlTable(database, table)} DELETE WHERE namespace = ${sqlString(ns, 'namespace')}`;
}

export interface DropNamespaceOptions {
  /** How long to wait for the mutation to finish, in ms. @default 60_000 */
  timeoutMs?: number;
  /** Polling interval while waiting, in ms. @default 100 */
  pollMs?: number;
}

/**
 * Deletes the rows of namespace `ns` and waits until the deletion is applied. On a cluster the
 * mutation runs on every shard's local table (a Distributed table has no mutations), one after the other.
 */
export async function dropNamespaceRows(target: SqlTarget, ns: string, opts: DropNamespaceOptions = {}): Promise<void> {
  if (target.cluster !== undefined) {
    if (target.shards === undefined || target.shards.length === 0) {
      throw new ThawError('CLICKHOUSE_ERROR', `dropping namespace rows on cluster ${target.cluster} needs the shards' URLs (clickhouse.shardUrls)`);
    }
    for (const shard of target.shards) await dropNamespaceRowsHere(shard, ns, opts);
    return;
  }
  await dropNamespaceRowsHere(target, ns, opts);
}

async function dropNamespaceRowsHere(target: SqlTarget, ns: string, opts: DropNamespaceOptions): Promise<void> {
  const { database, table } = names(target);
  await target.command(dropNamespaceSql(database, table, ns));
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const pending = `SELECT count() AS c FROM system.mutations WHERE database = ${sqlString(database)} AND table = ${sqlString(table)} AND is_done = 0`;
  for (;;) {
    const rows = await target.query(pending);
    if (Number(rows[0]?.c ?? 0) === 0) return;
    if (Date.now() >= deadline) {
      throw new ThawError('CLICKHOUSE_ERROR', `deleting namespace rows from ${database}.${table} not finished after ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 100));
  }
}

export interface CountRowsOptions {
  /** Only this namespace. @default all */
  namespace?: string;
  /** Count each (namespace, adapter, side, event_id) once, as the curves do. @default false (physical rows) */
  distinct?: boolean;
}

/** Number of rows in the prediction log. */
export async function countRows(target: CurveSource, opts: CountRowsOptions = {}): Promise<number> {
  const { database, table } = names(target);
  const where = opts.namespace === undefined ? '' : ` WHERE namespace = ${sqlString(opts.namespace, 'namespace')}`;
  const from = sqlTable(database, table);
  // distinct: one per de-duplication key, as the curves count (analytics/dedup.ts; no FINAL).
  const sql =
    opts.distinct === true
      ? `SELECT count() AS c FROM (SELECT 1 FROM ${from}${where} GROUP BY ${DEDUP_KEY.join(', ')}) ${dedupSettings(target.cluster !== undefined)}`
      : `SELECT count() AS c FROM ${from}${where}`;
  const rows = await target.query(sql);
  return Number(rows[0]?.c ?? 0);
}
