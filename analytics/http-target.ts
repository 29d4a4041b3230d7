/**
 * A queryable prediction log on a ClickHouse server over HTTP (@clickhouse/client): what `thaw curves`
 * and `thaw replay --drop` read and alter, and how the sink reaches each shard of a cluster.
 */
import { createClient, ClickHouseLogLevel, type ClickHouseClient } from '@clickhouse/client';
import { wrapClickHouseError } from './clickhouse-errors.js';
import type { SqlTarget } from './types.js';

export interface HttpSqlTargetOptions {
  /** HTTP(S) endpoint without user info. */
  url: string;
  username?: string;
  /** Never logged nor put in error messages. */
  password?: string;
  /** CA certificate(s) to trust for an https:// url (clickhouse.tlsCaFile). @default the system CAs */
  caCert?: Buffer;
  database: string;
  /** The prediction log's table on this server (on a shard: the local table). */
  table: string;
  /** Set when `table` is a Distributed table of Thaw's cluster layout (analytics/cluster.ts). */
  cluster?: string;
  /** The shards' local tables, for statements a Distributed table refuses (mutations); closed with this target. */
  shards?: readonly ClosableSqlTarget[];
}

/** A closable SqlTarget. */
export type ClosableSqlTarget = SqlTarget & { close(): Promise<void> };

export class HttpSqlTarget implements ClosableSqlTarget {
  readonly database: string;
  readonly table: string;
  readonly cluster: string | undefined;
  readonly shards: readonly ClosableSqlTarget[] | undefined;
  private readonly client: ClickHouseClient;

  constructor(o: HttpSqlTargetOptions) {
    this.database = o.database;
    this.table = o.table;
    this.cluster = o.cluster;
    this.shards = o.shards;
    this.client = createClient({
      url: o.url,
      ...(o.username === undefined ? {} : { username: o.username }),
      ...(o.password === undefined ? {} : { password: o.password }),
      ...(o.caCert === undefined ? {} : { tls: { ca_cert: o.caCert } }),
      log: { level: ClickHouseLogLevel.OFF },
    });
  }

  async query(sql: string): Promise<Record<string, unknown>[]> {
    try {
      return await (await this.client.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, unknown>>();
    } catch (err) {
      throw wrapClickHouseError('query failed', err);
    }
  }

  async command(sql: string): Promise<void> {
    try {
      await this.client.command({ query: sql });
    } catch (err) {
      throw wrapClickHouseError('command failed', err);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.client.close(), ...(this.shards ?? []).map((s) => s.close())]);
  }
}
