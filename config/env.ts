import type { FlagKind } from './types.js';

/**
 * Environment variables and the config keys they set. They override the config file and are
 * overridden by flags. A variable only applies to commands whose schema has its key.
 */
export const ENV_VARS: readonly { env: string; key: string; kind: FlagKind }[] = [
  { env: 'THAW_KAFKA', key: 'kafka.brokers', kind: 'list' },
  { env: 'THAW_KAFKA_CLIENT_ID', key: 'kafka.clientId', kind: 'string' },
  { env: 'THAW_KAFKA_TLS', key: 'kafka.tls', kind: 'boolean' },
  { env: 'THAW_KAFKA_TLS_CA_FILE', key: 'kafka.tlsCaFile', kind: 'string' },
  { env: 'THAW_KAFKA_SASL_MECHANISM', key: 'kafka.sasl.mechanism', kind: 'string' },
  { env: 'THAW_KAFKA_SASL_USERNAME', key: 'kafka.sasl.username', kind: 'string' },
  { env: 'THAW_KAFKA_SASL_PASSWORD', key: 'kafka.sasl.password', kind: 'string' },
  { env: 'THAW_REDIS_URL', key: 'redis.url', kind: 'string' },
  { env: 'THAW_REDIS_USERNAME', key: 'redis.username', kind: 'string' },
  { env: 'THAW_REDIS_PASSWORD', key: 'redis.password', kind: 'string' },
  { env: 'THAW_REDIS_TLS', key: 'redis.tls', kind: 'boolean' },
  { env: 'THAW_REDIS_TLS_CA_FILE', key: 'redis.tlsCaFile', kind: 'string' },
  { env: 'THAW_REDIS_CLUSTER', key: 'redis.cluster', kind: 'boolean' },
  { env: 'THAW_REDIS_PREFIX', key: 'redis.keyPrefix', kind: 'string' },
  { env: 'THAW_CLICKHOUSE_URL', key: 'clickhouse.url', kind: 'string' },
  { env: 'THAW_CLICKHOUSE_USER', key: 'clickhouse.user', kind: 'string' },
  { env: 'THAW_CLICKHOUSE_PASSWORD', key: 'clickhouse.password', kind: 'string' },
  { env: 'THAW_CLICKHOUSE_DATABASE', key: 'clickhouse.database', kind: 'string' },
  { env: 'THAW_CLICKHOUSE_TABLE', key: 'clickhouse.table', kind: 'string' },
  { env: 'THAW_CLICKHOUSE_TLS_CA_FILE', key: 'clickhouse.tlsCaFile', kind: 'string' },
  { env: 'THAW_CLICKHOUSE_CLUSTER', key: 'clickhouse.cluster', kind: 'string' },
  { env: 'THAW_CLICKHOUSE_SHARD_URLS', key: 'clickhouse.shardUrls', kind: 'list' },
  { env: 'THAW_NAMESPACE', key: 'namespace', kind: 'string' },
  { env: 'THAW_RELEASE_DIR', key: 'releaseDir', kind: 'string' },
  { env: 'THAW_SPOOL_DIR', key: 'spoolDir', kind: 'string' },
  { env: 'THAW_METRICS_PORT', key: 'metricsPort', kind: 'int' },
  { env: 'THAW_METRICS_HOST', key: 'metricsHost', kind: 'string' },
  { env: 'THAW_LOG_LEVEL', key: 'logLevel', kind: 'string' },
];

/** Environment variable naming the config file when `--config` is not given. */
export const CONFIG_FILE_ENV = 'THAW_CONFIG';
