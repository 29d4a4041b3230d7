/**
 * The prediction log on a ClickHouse cluster (`clickhouse.cluster`, `--clickhouse-cluster NAME`):
 * on every shard a local table `<table>_local` with the single-node DDL (ReplacingMergeTree,
 * PARTITION BY namespace, ORDER BY the de-duplication key), and on every shard (and on the node
 * Thaw connects to) a Distributed table `<table>` over them, sharded by `cityHash64(entity_id)`.
 *
 * Why by entity: the copies of one event (Kafka redeliveries, spool replays) carry the same entity,
 * so every row of one de-duplication key (namespace, adapter, side, event_id) lands on one shard.
 * Each shard can then de-duplicate its own rows completely (`distributed_group_by_no_merge`, see
 * DISTRIBUTED_DEDUP_SETTING) and only de-duplicated rows travel to the node that asked; one entity's
 * history is also on one shard. A hot entity makes its shard hotter: see docs/topology.md.
 *
 * Inserts go through the Distributed table with `insert_distributed_sync = 1`: the engine applies the
 * sharding key (one definition, in SQL, not a TypeScript copy of cityHash64), and the INSERT returns
 * only once every shard stored its rows, so the sink's promise (resolved = durable, else spooled)
 * still holds. An insert that fails half-way is replayed whole from the spool; the shard that had
 * its rows gets duplicates, which the de-duplication removes.
 *
 * DDL goes to each shard over its own HTTP endpoint (`clickhouse.shardUrls`), not `ON CLUSTER`: the
 * distributed DDL queue needs ZooKeeper (ClickHouse 18.16) or Keeper (21.8+), which a 2-shard
 * deployment without replicas does not otherwise need. Tables that exist are left alone (IF NOT
 * EXISTS), so an operator may create ReplicatedReplacingMergeTree local tables for replicas first.
 */
import { ConfigError } from '../lib/errors.js';
import { createDatabaseSql, createPredictionsTableSql, PREDICTION_COLUMNS_DDL } from './ddl.js';
import { sqlIdent, sqlString, sqlTable } from './sql.js';
import type { SqlTarget } from './types.js';

/** The Distributed table's sharding key: one entity's rows, duplicates included, on one shard. */
export const SHARDING_KEY = 'cityHash64(entity_id)';

/**
 * Query setting of the de-duplicating GROUP BY over the Distributed table: each shard finishes its
 * own groups (correct because a key's rows are all on one shard, by SHARDING_KEY) and the initiator
 * only concatenates them. Only for the query level that reads the Distributed table and groups by
 * the de-duplication key: a plain `count()` with it returns one row per shard.
 */
export const DISTRIBUTED_DEDUP_SETTING = 'distributed_group_by_no_merge = 1';

/** Settings of an INSERT into the Distributed table: wait until every shard has its rows. */
export const DISTRIBUTED_INSERT_SETTINGS = { insert_distributed_sync: 1 } as const;

/** The local table on each shard behind Distributed table `table`. */
export function localTableName(table: string): string {
  return sqlIdent(`${table}_local`, 'table (with the _local suffix of the shards)');
}

export function createDistributedTableSql(database: string, table: string, cluster: string): string {
  return `CREATE TABLE IF NOT EXISTS ${sqlTable(database, table)}
${PREDICTION_COLUMNS_DDL}
ENGINE = Distributed(${sqlIdent(cluster, 'cluster')}, ${sqlIdent(database, 'database')}, ${localTableName(table)}, ${SHARDING_KEY})`;
}

/** The statements for one shard: database, local table, Distributed table (each idempotent). */
export function shardDdl(database: string, table: string, cluster: string): string[] {
  return [createDatabaseSql(database), createPredictionsTableSql(database, localTableName(table)), createDistributedTableSql(database, table, cluster)];
}

/** What ensureClusterSchema talks to: the node Thaw connects to, and every shard (each replica) by URL. */
export interface ClusterTargets {
  cluster: string;
  database: string;
  table: string;
  main: SqlTarget;
  /** One per (shard, replica) of the cluster; `label` names it in errors (a URL without user info). */
  shards: readonly { label: string; target: SqlTarget }[];
}

const KEY = 'clickhouse.shardUrls';

/**
 * Checks that `shards` are exactly the hosts of `cluster` (each answers for one (shard, replica) of
 * its remote_servers, none twice, none missing) and that the node Thaw connects to knows the cluster.
 */
export async function checkClusterLayout(t: ClusterTargets): Promise<void> {
  const where = `cluster = ${sqlString(t.cluster, 'cluster')}`;
  const all = await t.main.query(`SELECT shard_num, replica_num FROM system.clusters WHERE ${where}`);
  if (all.length === 0) {
    throw new ConfigError('clickhouse.cluster', `cluster ${t.cluster} is not in the remote_servers of the ClickHouse server at clickhouse.url`);
  }
  const expected = new Set(all.map((r) => `${String(r.shard_num)}/${String(r.replica_num)}`));
  const seen = new Map<string, string>();
  for (const s of t.shards) {
    const local = await s.target.query(`SELECT shard_num, replica_num FROM system.clusters WHERE ${where} AND is_local = 1`);
    const first = local[0];
    if (local.length !== 1 || first === undefined) {
      throw new ConfigError(KEY, `${s.label} is ${local.length === 0 ? 'not a host' : 'several hosts'} of cluster ${t.cluster} (its system.clusters has ${local.length} local rows)`);
    }
    const id = `${String(first.shard_num)}/${String(first.replica_num)}`;
    const dup = seen.get(id);
    if (dup !== undefined) throw new ConfigError(KEY, `${s.label} and ${dup} are the same host of cluster ${t.cluster} (shard/replica ${id})`);
    if (!expected.has(id)) throw new ConfigError(KEY, `${s.label} is shard/replica ${id}, which clickhouse.url's cluster ${t.cluster} does not have`);
    seen.set(id, s.label);
  }
  const missing = [...expected].filter((id) => !seen.has(id));
  if (missing.length > 0) {
    throw new ConfigError(KEY, `cluster ${t.cluster} has ${expected.size} hosts; no URL given for shard/replica ${missing.join(', ')}`);
  }
}

/** engine_full without quotes and spaces (18.16 prints identifiers bare, newer versions quote them). */
function normEngine(v: unknown): string {
  return String(v).replace(/['"`\s]/g, '');
}

/** Refuses a table of the expected name with another engine (e.g. a single-node table left behind). */
async function checkEngine(target: SqlTarget, label: string, database: string, table: string, want: (engine: string) => boolean, what: string): Promise<void> {
  const rows = await target.query(`SELECT engine_full FROM system.tables WHERE database = ${sqlString(database)} AND name = ${sqlString(table)}`);
  const engine = normEngine(rows[0]?.engine_full ?? '');
  if (!want(engine)) {
    throw new ConfigError('clickhouse.table', `${database}.${table} on ${label} is ${engine === '' ? 'missing' : engine}, expected ${what} (docs/topology.md: moving a single-node table)`);
  }
}

/** Creates the local and Distributed tables on every shard, and the Distributed table on the main node; checks the result. */
export async function ensureClusterSchema(t: ClusterTargets): Promise<void> {
  await checkClusterLayout(t);
  const local = localTableName(t.table);
  const distributed = normEngine(`Distributed(${t.cluster},${t.database},${local},${SHARDING_KEY})`);
  for (const s of t.shards) {
    for (const sql of shardDdl(t.database, t.table, t.cluster)) await s.target.command(sql);
    await checkEngine(s.target, s.label, t.database, local, (e) => /MergeTree\(/.test(e), 'a (Replicated)ReplacingMergeTree');
    await checkEngine(s.target, s.label, t.database, t.table, (e) => e === distributed, distributed);
  }
  await t.main.command(createDatabaseSql(t.database));
  await t.main.command(createDistributedTableSql(t.database, t.table, t.cluster));
  await checkEngine(t.main, 'clickhouse.url', t.database, t.table, (e) => e === distributed, distributed);
}

/** The cluster option of a sink or target: the remote_servers cluster and every host's HTTP URL. */
export interface ClusterOption {
  /** Cluster name in the servers' remote_servers. */
  name: string;
  /** HTTP(S) URL of every host of the cluster (each replica of each shard), without user info. */
  shardUrls: readonly string[];
}

/** Validates a ClusterOption (messages never echo a URL: it may hold a password). */
export function normaliseClusterOption(o: ClusterOption): ClusterOption {
  try {
    sqlIdent(o.name, 'cluster');
  } catch (err) {
    throw new ConfigError('clickhouse.cluster', 'must match /^[A-Za-z_][A-Za-z0-9_]{0,63}$/', { cause: err });
  }
  // Array.isArray narrows a readonly string[] to any[]: map over the typed reference.
  const shardUrls: readonly string[] = o.shardUrls;
  if (!Array.isArray(o.shardUrls) || shardUrls.length === 0) throw new ConfigError(KEY, 'must list the HTTP URL of every host of the cluster');
  const urls = shardUrls.map((s, i) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new ConfigError(KEY, `entry ${i + 1} must be an http(s) URL`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(KEY, `entry ${i + 1} must be an http(s) URL`);
    if (u.username !== '' || u.password !== '') {
      throw new ConfigError(KEY, `entry ${i + 1} must not hold credentials: the shards use those of clickhouse.url / clickhouse.user / clickhouse.password`);
    }
    return u.toString().replace(/\/$/, '');
  });
  if (new Set(urls).size !== urls.length) throw new ConfigError(KEY, 'lists a URL twice');
  return { name: o.name, shardUrls: urls };
}
