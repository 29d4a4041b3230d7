/** Maps validated config onto the connection options of streams/, model-store/ and analytics/. */
import { createClient, ClickHouseLogLevel } from '@clickhouse/client';
import { ChdbSink } from '../analytics/chdb-sink.js';
import type { ClickHouseSinkOptions } from '../analytics/clickhouse-sink.js';
import { wrapClickHouseError } from '../analytics/clickhouse-errors.js';
import type { SqlTarget } from '../analytics/namespaces.js';
import type { ClickHouseConfig, KafkaConfig, RedisConfig } from '../config/connections.js';
import type { Logger } from '../lib/log.js';
import { credentialsOf } from '../lib/url.js';
import type { RedisConnection } from '../model-store/redis.js';
import type { KafkaConnection } from '../streams/kafka.js';

export function kafkaConnection(k: KafkaConfig): KafkaConnection {
  return { brokers: [...k.brokers], clientId: k.clientId, ...(k.tls ? { ssl: true } : {}), ...(k.sasl === undefined ? {} : { sasl: { ...k.sasl } }) };
}

export function redisConnection(r: RedisConfig): RedisConnection {
  return { url: r.url, ...(r.password === undefined ? {} : { password: r.password }), ...(r.tls ? { tls: true } : {}), ...(r.cluster ? { cluster: true } : {}) };
}

/**
 * The ClickHouse URL without user info, and the credentials to send: those of the URL when it has
 * some (decoded; the client would otherwise ignore them silently), else `clickhouse.user`/`password`.
 */
export function clickhouseCredentials(c: ClickHouseConfig): { url: string; username: string; password: string } {
  const u = new URL(c.url);
  if (u.username === '' && u.password === '') return { url: c.url, username: c.user, password: c.password };
  const fromUrl = credentialsOf(u);
  u.username = '';
  u.password = '';
  return { url: u.toString(), username: fromUrl.username ?? c.user, password: fromUrl.password ?? c.password };
}

export function clickhouseSinkOptions(c: ClickHouseConfig, spoolDir: string, logger: Logger): ClickHouseSinkOptions {
  return { ...clickhouseCredentials(c), database: c.database, table: c.table, spoolDir, logger };
}

/** A queryable prediction log: embedded chDB directory or ClickHouse server. */
export type ClosableSqlTarget = SqlTarget & { close(): Promise<void> };

export function openSqlTarget(c: ClickHouseConfig, chdbDir?: string): ClosableSqlTarget {
  if (chdbDir !== undefined) return new ChdbSink({ dataDir: chdbDir, database: c.database, table: c.table });
  const client = createClient({ ...clickhouseCredentials(c), log: { level: ClickHouseLogLevel.OFF } });
  return {
    database: c.database,
    table: c.table,
    async query(sql: string): Promise<Record<string, unknown>[]> {
      try {
        return await (await client.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, unknown>>();
      } catch (err) {
        throw wrapClickHouseError('query failed', err);
      }
    },
    async command(sql: string): Promise<void> {
      try {
        await client.command({ query: sql });
      } catch (err) {
        throw wrapClickHouseError('command failed', err);
      }
    },
    close: () => client.close(),
  };
}

/** The consumer's heartbeat interval for a session timeout: a tenth of it, at least 100 ms (ms). */
export function heartbeatIntervalFor(sessionTimeoutMs: number): number {
  return Math.max(100, Math.floor(sessionTimeoutMs / 10));
}
