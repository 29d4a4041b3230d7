/** Options of BatchConsumer (streams/batch-consumer.ts): defaults, units, and their validation at start-up. */
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { KafkaConnection } from './kafka.js';

export interface BatchConsumerOptions {
  kafka: KafkaConnection;
  /** Consumer group id; one group per logical consumer (and per replay namespace). */
  groupId: string;
  /** Topics to subscribe to (at least one). */
  topics: string[];
  logger?: Logger;
  /** Where a group without committed offsets starts: earliest (true) or latest (false). @default true */
  fromBeginning?: boolean;
  /**
   * Largest number of records given to the handler at once. Larger chunks amortise the per-chunk
   * fixed costs (one ClickHouse INSERT, two Redis round trips, one commit); 5000 takes most of a
   * 1 MiB fetch of labelled events (about 150 bytes each) in one chunk.
   * @default 5000
   */
  maxBatchMessages?: number;
  /** First backoff after a handler failure. Milliseconds. @default 200 */
  retryInitialMs?: number;
  /** Backoff cap (doubling from retryInitialMs). Milliseconds. @default 5000 */
  retryMaxMs?: number;
  /**
   * Cap of the backoff between kafkajs' own retries (a commit, a join, a fetch) and of its wait before
   * it restarts a crashed consumer. A broker that dies takes its group coordinator with it; kafkajs
   * keeps asking the dead one until its retries run out, crashes and restarts, and with its default
   * backoff one broker lost stalled a worker for many seconds (the 3-broker drill, bench/failover).
   * Milliseconds. @default 1000
   */
  clientRetryMaxMs?: number;
  /** Group session timeout: a member silent this long is evicted. Milliseconds. @default 30_000 */
  sessionTimeoutMs?: number;
  /** Heartbeat interval (also the heartbeat period while backing off). Milliseconds. @default 3000 */
  heartbeatIntervalMs?: number;
  /** Longest a fetch waits for data when the partitions are idle. Milliseconds. @default 500 */
  maxWaitTimeMs?: number;
  /** Fetch size limit per partition. Bytes. @default 1_048_576 */
  maxBytesPerPartition?: number;
  /**
   * Partitions whose chunks are handled at the same time (kafkajs `partitionsConsumedConcurrently`).
   * Only safe when the topics are keyed by the entity the handler updates (see streams/batch-consumer.ts).
   * Count, at most 256. @default the number of partitions of the subscribed topics (looked up at start)
   */
  partitionsConsumedConcurrently?: number;
  /**
   * Chunks of one partition handed to the handler before the first of them resolved (see
   * streams/batch-consumer.ts). 1 = one chunk at a time. Only for handlers that handle overlapping
   * calls of one partition in call order. Count, at most MAX_PIPELINE_DEPTH. @default 1
   */
  pipelineDepth?: number;
  /**
   * Who commits a chunk's offsets. `consumer`: this consumer, after the handler resolved.
   * `transaction`: the handler, in the Kafka transaction that writes the chunk's outputs
   * (streams/transactions.ts); this consumer then only moves its fetch position (and commits past
   * commit markers at the end of a batch). @default 'consumer'
   */
  offsetCommit?: 'consumer' | 'transaction';
  /**
   * Fetch the next records while the previous chunks are being made durable (streams/fetch-ahead.ts):
   * kafkajs' batch callback returns once its chunks are handed over (up to `pipelineDepth` per
   * partition in flight) instead of once they are durable. Commits still wait for durability.
   * Needs a handler that orders overlapping calls of a partition (as for pipelineDepth > 1), and
   * `offsetCommit: 'consumer'`. A revoked partition's chunks may then still be in flight while
   * another member starts on it (idempotent writes make that safe for Thaw's worker). @default false
   */
  fetchAhead?: boolean;
}

/** Upper bound of partitionsConsumedConcurrently (kafkajs keeps one worker per unit). */
export const MAX_PARTITIONS_CONCURRENCY = 256;
/** Upper bound of pipelineDepth. */
export const MAX_PIPELINE_DEPTH = 16;
/** Default largest chunk, in records (see maxBatchMessages). */
export const DEFAULT_MAX_BATCH_MESSAGES = 5000;

/** BatchConsumerOptions with every default filled in. */
export type ResolvedBatchConsumerOptions = Required<Omit<BatchConsumerOptions, 'logger' | 'partitionsConsumedConcurrently'>> & {
  /** undefined: one per partition of the subscribed topics, looked up at start(). */
  partitionsConsumedConcurrently: number | undefined;
};

function positiveInt(key: string, value: number, min = 1): number {
  if (!Number.isInteger(value) || value < min) throw new ConfigError(key, `must be an integer >= ${min}, got ${value}`);
  return value;
}

/** Fills defaults and validates; throws ConfigError naming the key. */
export function resolveBatchConsumerOptions(options: BatchConsumerOptions): ResolvedBatchConsumerOptions {
  if (typeof options.groupId !== 'string' || options.groupId === '') throw new ConfigError('consumer.groupId', 'must be a non-empty string');
  if (!Array.isArray(options.topics) || options.topics.length === 0) throw new ConfigError('consumer.topics', 'at least one topic is required');
  const resolved: ResolvedBatchConsumerOptions = {
    kafka: options.kafka,
    groupId: options.groupId,
    topics: [...options.topics],
    fromBeginning: options.fromBeginning ?? true,
    maxBatchMessages: positiveInt('consumer.maxBatchMessages', options.maxBatchMessages ?? DEFAULT_MAX_BATCH_MESSAGES),
    retryInitialMs: positiveInt('consumer.retryInitialMs', options.retryInitialMs ?? 200),
    retryMaxMs: positiveInt('consumer.retryMaxMs', options.retryMaxMs ?? 5000),
    clientRetryMaxMs: positiveInt('consumer.clientRetryMaxMs', options.clientRetryMaxMs ?? 1000, 100),
    sessionTimeoutMs: positiveInt('consumer.sessionTimeoutMs', options.sessionTimeoutMs ?? 30_000, 6000),
    heartbeatIntervalMs: positiveInt('consumer.heartbeatIntervalMs', options.heartbeatIntervalMs ?? 3000, 100),
    maxWaitTimeMs: positiveInt('consumer.maxWaitTimeMs', options.maxWaitTimeMs ?? 500, 0),
    maxBytesPerPartition: positiveInt('consumer.maxBytesPerPartition', options.maxBytesPerPartition ?? 1_048_576, 1024),
    pipelineDepth: positiveInt('consumer.pipelineDepth', options.pipelineDepth ?? 1),
    offsetCommit: options.offsetCommit ?? 'consumer',
    fetchAhead: options.fetchAhead ?? false,
    partitionsConsumedConcurrently: options.partitionsConsumedConcurrently === undefined ? undefined : positiveInt('consumer.partitionsConsumedConcurrently', options.partitionsConsumedConcurrently),
  };
  if (resolved.partitionsConsumedConcurrently !== undefined && resolved.partitionsConsumedConcurrently > MAX_PARTITIONS_CONCURRENCY) {
    throw new ConfigError('consumer.partitionsConsumedConcurrently', `must be at most ${MAX_PARTITIONS_CONCURRENCY}, got ${resolved.partitionsConsumedConcurrently}`);
  }
  if (resolved.offsetCommit !== 'consumer' && resolved.offsetCommit !== 'transaction')
    throw new ConfigError('consumer.offsetCommit', `expected consumer or transaction, got ${String(resolved.offsetCommit)}`);
  if (typeof resolved.fetchAhead !== 'boolean') throw new ConfigError('consumer.fetchAhead', `must be a boolean, got ${String(resolved.fetchAhead)}`);
  if (resolved.offsetCommit === 'transaction' && resolved.fetchAhead) throw new ConfigError('consumer.fetchAhead', 'must be false when offsets are committed in transactions');
  if (resolved.offsetCommit === 'transaction' && resolved.pipelineDepth !== 1) throw new ConfigError('consumer.pipelineDepth', 'must be 1 when offsets are committed in transactions');
  if (resolved.pipelineDepth > MAX_PIPELINE_DEPTH) throw new ConfigError('consumer.pipelineDepth', `must be at most ${MAX_PIPELINE_DEPTH}, got ${resolved.pipelineDepth}`);
  if (resolved.retryMaxMs < resolved.retryInitialMs) throw new ConfigError('consumer.retryMaxMs', 'must be >= retryInitialMs');
  if (resolved.heartbeatIntervalMs * 3 > resolved.sessionTimeoutMs) throw new ConfigError('consumer.heartbeatIntervalMs', 'must be at most a third of sessionTimeoutMs');
  return resolved;
}
