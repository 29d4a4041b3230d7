import { z } from 'zod';
import { parseSourceSpec, type SourceSpec } from '../sources/index.js';
import { errorMessage } from '../lib/errors.js';
import { path } from './fields.js';
import type { FlagDef } from './types.js';

/** Flags shared by several commands, so they are spelled and documented the same everywhere. */
export const FLAGS = {
  kafka: { flag: 'kafka', key: 'kafka.brokers', kind: 'list', meta: 'HOST:PORT[,...]' },
  redis: { flag: 'redis', key: 'redis.url', kind: 'string', meta: 'URL' },
  redisCluster: { flag: 'redis-cluster', key: 'redis.cluster', kind: 'boolean' },
  clickhouse: { flag: 'clickhouse', key: 'clickhouse.url', kind: 'string', meta: 'URL' },
  clickhouseCluster: { flag: 'clickhouse-cluster', key: 'clickhouse.cluster', kind: 'string', meta: 'NAME' },
  clickhouseShards: { flag: 'clickhouse-shards', key: 'clickhouse.shardUrls', kind: 'list', meta: 'URL[,...]' },
  releaseDir: { flag: 'release-dir', key: 'releaseDir', kind: 'string', meta: 'DIR' },
  namespace: { flag: 'namespace', key: 'namespace', kind: 'string', meta: 'NAME' },
  adapter: { flag: 'adapter', key: 'adapter', kind: 'string', meta: 'NAME' },
  side: { flag: 'side', key: 'side', kind: 'string', meta: 'item|user' },
  spoolDir: { flag: 'spool-dir', key: 'spoolDir', kind: 'string', meta: 'DIR' },
  logLevel: { flag: 'log-level', key: 'logLevel', kind: 'string', meta: 'LEVEL' },
  json: { flag: 'json', key: 'json', kind: 'boolean' },
  source: { flag: 'source', key: 'source', kind: 'string', meta: 'SPEC' },
  replicationFactor: { flag: 'replication-factor', key: 'replicationFactor', kind: 'int', meta: 'N' },
} as const satisfies Record<string, FlagDef>;

/**
 * The connection flags of each service, shared by every command that connects to it. Passwords have
 * no flag on purpose (a command line shows in `ps`): they come from the environment or the config file.
 */
export const KAFKA_FLAGS: readonly FlagDef[] = [
  FLAGS.kafka,
  { flag: 'kafka-tls', key: 'kafka.tls', kind: 'boolean' },
  { flag: 'kafka-tls-ca-file', key: 'kafka.tlsCaFile', kind: 'string', meta: 'FILE' },
  { flag: 'kafka-sasl-mechanism', key: 'kafka.sasl.mechanism', kind: 'string', meta: 'MECHANISM' },
  { flag: 'kafka-sasl-username', key: 'kafka.sasl.username', kind: 'string', meta: 'USER' },
];
export const REDIS_FLAGS: readonly FlagDef[] = [
  FLAGS.redis,
  { flag: 'redis-username', key: 'redis.username', kind: 'string', meta: 'USER' },
  { flag: 'redis-tls', key: 'redis.tls', kind: 'boolean' },
  { flag: 'redis-tls-ca-file', key: 'redis.tlsCaFile', kind: 'string', meta: 'FILE' },
];
export const CLICKHOUSE_FLAGS: readonly FlagDef[] = [
  FLAGS.clickhouse,
  { flag: 'clickhouse-user', key: 'clickhouse.user', kind: 'string', meta: 'USER' },
  { flag: 'clickhouse-tls-ca-file', key: 'clickhouse.tlsCaFile', kind: 'string', meta: 'FILE' },
];

export const DEFAULT_RELEASE_DIR = '.thaw/releases';
export const DEFAULT_SPOOL_DIR = '.thaw/spool';

export const releaseDir = path.default(DEFAULT_RELEASE_DIR).describe(`Directory of shared-model releases (ReleaseStore root; env THAW_RELEASE_DIR). @default ${DEFAULT_RELEASE_DIR}`);

export const spoolDir = path.default(DEFAULT_SPOOL_DIR).describe(`Directory of the ClickHouse outage spool, one per worker process (env THAW_SPOOL_DIR). @default ${DEFAULT_SPOOL_DIR}`);

/**
 * An event source in its CLI form (synthetic[:k=v,...], ml100k:DIR, ml1m:DIR, csv:PATH, jsonl:PATH),
 * parsed into a SourceSpec at validation time so a typo stops start-up.
 */
export const sourceSpec = z
  .string()
  .min(1, 'expected a source spec')
  .transform((text, ctx): SourceSpec => {
    try {
      return parseSourceSpec(text);
    } catch (err) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: errorMessage(err).replace(/^invalid config "[^"]*": /, '') });
      return z.NEVER;
    }
  })
  .describe('Event source: synthetic[:key=value,...], ml100k:DIR, ml1m:DIR, csv:PATH or jsonl:PATH.');
