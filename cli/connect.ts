/**
 * Maps validated config onto the connection options of streams/, model-store/ and analytics/. Every
 * command that connects goes through here, so TLS (CA files), SASL and ACL users reach every client
 * the same way. CA files were checked when the config was validated (config/fields.ts caFile).
 */
import { readFileSync } from 'node:fs';
import { ChdbSink } from '../analytics/chdb-sink.js';
import type { ClickHouseSinkOptions } from '../analytics/clickhouse-sink.js';
import { localTableName, normaliseClusterOption, type ClusterOption } from '../analytics/cluster.js';
import { HttpSqlTarget, type ClosableSqlTarget } from '../analytics/http-target.js';
import type { ClickHouseConfig, KafkaConfig, RedisConfig } from '../config/connections.js';
import type { Logger } from '../lib/log.js';
import { credentialsOf } from '../lib/url.js';
import type { RedisConnection } from '../model-store/redis.js';
import type { KafkaConnection } from '../streams/kafka.js';

/** Kafka: TLS with the system CAs (`kafka.tls`) or with `kafka.tlsCaFile`'s, SASL when configured. */
export function kafkaConnection(k: KafkaConfig): KafkaConnection {
  const ssl = k.tlsCaFile !== undefined ? { ssl: { ca: [readFileSync(k.tlsCaFile)] } } : k.tls ? { ssl: true } : {};
  return { brokers: [...k.brokers], clientId: k.clientId, ...ssl, ...(k.sasl === undefined ? {} : { sasl: { ...k.sasl } }) };
}

/** Redis: user and password (options override the URL's), TLS (rediss://, `redis.tls` or a CA file). */
export function redisConnection(r: RedisConfig): RedisConnection {
  const tls = r.tlsCaFile !== undefined ? { tls: { ca: [readFileSync(r.tlsCaFile)] } } : r.tls ? { tls: true } : {};
  return {
    url: r.url,
    ...(r.username === undefined ? {} : { username: r.username }),
    ...(r.password === undefined ? {} : { password: r.password }),
    ...tls,
    ...(r.cluster ? { cluster: true } : {}),
  };
}

/** The CA certificate to trust for an https ClickHouse, when `clickhouse.tlsCaFile` is set. */
function clickhouseCa(c: ClickHouseConfig): { caCert: Buffer } | Record<string, never> {
  return c.tlsCaFile === undefined ? {} : { caCert: readFileSync(c.tlsCaFile) };
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

/** The cluster option of a config (analytics/cluster.ts), when it names one. */
function clusterOf(c: ClickHouseConfig): ClusterOption | undefined {
  return c.cluster === undefined ? undefined : { name: c.cluster, shardUrls: c.shardUrls ?? [] };
}

export function clickhouseSinkOptions(c: ClickHouseConfig, spoolDir: string, logger: Logger): ClickHouseSinkOptions {
  const cluster = clusterOf(c);
  return { ...clickhouseCredentials(c), ...clickhouseCa(c), database: c.database, table: c.table, spoolDir, logger, ...(cluster === undefined ? {} : { cluster }) };
}

export type { ClosableSqlTarget };

/**
 * A queryable prediction log: embedded chDB directory or ClickHouse server; on a cluster the
 * Distributed table, with each host's local table as a shard target (namespace deletion).
 */
export function openSqlTarget(c: ClickHouseConfig, chdbDir?: string): ClosableSqlTarget {
  if (chdbDir !== undefined) return new ChdbSink({ dataDir: chdbDir, database: c.database, table: c.table });
  const { url, ...creds } = { ...clickhouseCredentials(c), ...clickhouseCa(c) };
  const cluster = clusterOf(c);
  if (cluster === undefined) return new HttpSqlTarget({ url, ...creds, database: c.database, table: c.table });
  const { name, shardUrls } = normaliseClusterOption(cluster);
  const shards = shardUrls.map((u) => new HttpSqlTarget({ url: u, ...creds, database: c.database, table: localTableName(c.table) }));
  return new HttpSqlTarget({ url, ...creds, database: c.database, table: c.table, cluster: name, shards });
}

/** `{ replicationFactor }` when the option is set, else nothing (ensureTopics then uses min(3, brokers)). */
export function rf(replicationFactor: number | undefined): { replicationFactor?: number } {
  return replicationFactor === undefined ? {} : { replicationFactor };
}

/** The consumer's heartbeat interval for a session timeout: a tenth of it, at least 100 ms (ms). */
export function heartbeatIntervalFor(sessionTimeoutMs: number): number {
  return Math.max(100, Math.floor(sessionTimeoutMs / 10));
}
