import { z } from 'zod';
import { brokerAddress, caFile, url } from './fields.js';

/**
 * Connection settings shared by every command that talks to a service. Defaults are the local
 * stack of `scripts/services.sh` so a developer needs no flags; production passes flags or env.
 * Secrets (passwords) are redacted by `redactConfig` and never echoed in error messages.
 */

export const DEFAULT_KAFKA = '127.0.0.1:19092';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:16379';
export const DEFAULT_CLICKHOUSE_URL = 'http://127.0.0.1:18123';

export const kafkaSchema = z
  .object({
    brokers: z
      .array(brokerAddress)
      .min(1, 'expected at least one host:port')
      .default([DEFAULT_KAFKA])
      .describe(`Kafka bootstrap brokers, host:port, comma-separated on the command line (env THAW_KAFKA). @default ${DEFAULT_KAFKA}`),
    clientId: z.string().min(1).default('thaw').describe('Kafka client id (env THAW_KAFKA_CLIENT_ID). @default thaw'),
    tls: z.boolean().default(false).describe('Connect to Kafka over TLS (env THAW_KAFKA_TLS=true); kafka.tlsCaFile implies it. @default false'),
    tlsCaFile: caFile
      .optional()
      .describe("PEM file of the CA(s) that sign the brokers' certificates (env THAW_KAFKA_TLS_CA_FILE); implies kafka.tls. Read and checked at start. @default the system CAs"),
    sasl: z
      .object({
        mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).describe('SASL mechanism: plain, scram-sha-256 or scram-sha-512 (env THAW_KAFKA_SASL_MECHANISM).'),
        username: z.string().min(1).describe('SASL user name (env THAW_KAFKA_SASL_USERNAME).'),
        password: z.string().min(1).describe('SASL password, secret (env THAW_KAFKA_SASL_PASSWORD).'),
      })
      .strict()
      .optional()
      .describe('SASL authentication; unset means none.'),
  })
  .strict()
  // A CA file means TLS: say so in the validated config (and in the config line a worker logs).
  .transform((k) => ({ ...k, tls: k.tls || k.tlsCaFile !== undefined }))
  .default({})
  .describe('Kafka connection.');

export const redisSchema = z
  .object({
    url: url(['redis', 'rediss']).default(DEFAULT_REDIS_URL).describe(`Redis URL, redis:// or rediss:// (env THAW_REDIS_URL). @default ${DEFAULT_REDIS_URL}`),
    username: z
      .string()
      .regex(/^[^\s]{1,128}$/, 'expected 1-128 characters, no spaces')
      .optional()
      .describe("Redis ACL user name (env THAW_REDIS_USERNAME); overrides the user of redis.url. @default the URL's user, else Redis' default user"),
    password: z.string().min(1).optional().describe('Redis password, secret (env THAW_REDIS_PASSWORD); overrides one in the URL.'),
    tls: z.boolean().default(false).describe('Connect to Redis over TLS (env THAW_REDIS_TLS=true; rediss:// and redis.tlsCaFile imply it). @default false'),
    tlsCaFile: caFile.optional().describe("PEM file of the CA(s) that sign Redis' certificate (env THAW_REDIS_TLS_CA_FILE); implies redis.tls. Read and checked at start. @default the system CAs"),
    cluster: z.boolean().default(false).describe('The Redis URL is a seed node of a Redis Cluster: batches are split by node, one round trip per node (env THAW_REDIS_CLUSTER=true). @default false'),
    keyPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/, 'expected 1-32 characters [A-Za-z0-9_-]')
      .default('thaw')
      .describe('Prefix of every Redis key (env THAW_REDIS_PREFIX). @default thaw'),
  })
  .strict()
  .transform((r) => ({ ...r, tls: r.tls || r.tlsCaFile !== undefined || r.url.startsWith('rediss:') }))
  .default({})
  .describe('Redis connection.');

export const clickhouseSchema = z
  .object({
    url: url(['http', 'https']).default(DEFAULT_CLICKHOUSE_URL).describe(`ClickHouse HTTP URL (env THAW_CLICKHOUSE_URL). @default ${DEFAULT_CLICKHOUSE_URL}`),
    user: z.string().min(1).default('default').describe('ClickHouse user (env THAW_CLICKHOUSE_USER). @default default'),
    password: z.string().default('').describe('ClickHouse password, secret (env THAW_CLICKHOUSE_PASSWORD). @default empty'),
    database: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'expected a database name [A-Za-z0-9_]')
      .default('thaw')
      .describe('ClickHouse database (env THAW_CLICKHOUSE_DATABASE). @default thaw'),
    table: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'expected a table name [A-Za-z0-9_]')
      .default('predictions')
      .describe('Prediction log table (env THAW_CLICKHOUSE_TABLE). @default predictions'),
    tlsCaFile: caFile
      .optional()
      .describe("PEM file of the CA(s) that sign ClickHouse's certificate, for an https:// clickhouse.url (env THAW_CLICKHOUSE_TLS_CA_FILE). Read and checked at start. @default the system CAs"),
    cluster: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "expected a cluster name [A-Za-z0-9_] of the servers' remote_servers")
      .optional()
      .describe(
        'ClickHouse cluster (a remote_servers name) to shard the prediction log over: the table becomes a Distributed table sharded by entity over a local table <table>_local on every host of clickhouse.shardUrls (env THAW_CLICKHOUSE_CLUSTER; docs/topology.md). @default none (one node)',
      ),
    shardUrls: z
      .array(url(['http', 'https']))
      .min(1, 'expected at least one URL')
      .optional()
      .describe(
        'HTTP URL of every host (each replica of each shard) of clickhouse.cluster, comma-separated on the command line; checked against the cluster at start; credentials are those of clickhouse.url (env THAW_CLICKHOUSE_SHARD_URLS). @default none',
      ),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.cluster !== undefined && c.shardUrls === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['shardUrls'], message: 'clickhouse.cluster needs the HTTP URL of every host (--clickhouse-shards URL,...)' });
    }
    if (c.cluster === undefined && c.shardUrls !== undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['cluster'], message: 'clickhouse.shardUrls needs clickhouse.cluster (--clickhouse-cluster NAME)' });
    }
    if (c.cluster !== undefined && c.table.length > 58) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['table'], message: 'with clickhouse.cluster the table name may have at most 58 characters (the shards add _local)' });
    }
    for (const [i, s] of (c.shardUrls ?? []).entries()) {
      const u = new URL(s);
      if (u.username !== '' || u.password !== '') {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['shardUrls', i], message: 'must not hold credentials: the shards use those of clickhouse.url, clickhouse.user and clickhouse.password' });
      }
    }
    if (c.tlsCaFile !== undefined && !c.url.startsWith('https:')) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['tlsCaFile'], message: 'needs an https:// clickhouse.url (the CA file is for TLS)' });
    }
  })
  .default({})
  .describe('ClickHouse connection.');

export type KafkaConfig = z.infer<typeof kafkaSchema>;
export type RedisConfig = z.infer<typeof redisSchema>;
export type ClickHouseConfig = z.infer<typeof clickhouseSchema>;

/** Kafka and Redis alone, as `thaw train --online` and `thaw release` read them from the environment (loadFromEnv). */
export const kafkaRedisSchema = z.object({ kafka: kafkaSchema, redis: redisSchema }).strict();
