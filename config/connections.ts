import { z } from 'zod';
import { brokerAddress, url } from './fields.js';

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
    tls: z.boolean().default(false).describe('Connect to Kafka over TLS (env THAW_KAFKA_TLS=true). @default false'),
    sasl: z
      .object({
        mechanism: z
          .enum(['plain', 'scram-sha-256', 'scram-sha-512'])
          .describe('SASL mechanism: plain, scram-sha-256 or scram-sha-512 (env THAW_KAFKA_SASL_MECHANISM).'),
        username: z.string().min(1).describe('SASL user name (env THAW_KAFKA_SASL_USERNAME).'),
        password: z.string().min(1).describe('SASL password, secret (env THAW_KAFKA_SASL_PASSWORD).'),
      })
      .strict()
      .optional()
      .describe('SASL authentication; unset means none.'),
  })
  .strict()
  .default({})
  .describe('Kafka connection.');

export const redisSchema = z
  .object({
    url: url(['redis', 'rediss'])
      .default(DEFAULT_REDIS_URL)
      .describe(`Redis URL, redis:// or rediss:// (env THAW_REDIS_URL). @default ${DEFAULT_REDIS_URL}`),
    password: z.string().min(1).optional().describe('Redis password, secret (env THAW_REDIS_PASSWORD); overrides one in the URL.'),
    tls: z.boolean().default(false).describe('Connect to Redis over TLS (env THAW_REDIS_TLS=true; rediss:// implies it). @default false'),
    cluster: z
      .boolean()
      .default(false)
      .describe('The Redis URL is a seed node of a Redis Cluster: batches are split by node, one round trip per node (env THAW_REDIS_CLUSTER=true). @default false'),
    keyPrefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/, 'expected 1-32 characters [A-Za-z0-9_-]')
      .default('thaw')
      .describe('Prefix of every Redis key (env THAW_REDIS_PREFIX). @default thaw'),
  })
  .strict()
  .default({})
  .describe('Redis connection.');

export const clickhouseSchema = z
  .object({
    url: url(['http', 'https'])
      .default(DEFAULT_CLICKHOUSE_URL)
      .describe(`ClickHouse HTTP URL (env THAW_CLICKHOUSE_URL). @default ${DEFAULT_CLICKHOUSE_URL}`),
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
  })
  .strict()
  .default({})
  .describe('ClickHouse connection.');

export type KafkaConfig = z.infer<typeof kafkaSchema>;
export type RedisConfig = z.infer<typeof redisSchema>;
export type ClickHouseConfig = z.infer<typeof clickhouseSchema>;
