/** What both ways of handing a kafkajs batch's chunks to a handler (streams/in-order-batch.ts, streams/fetch-ahead.ts) need of the consumer. */
import type { Logger } from '../lib/log.js';
import type { MessageBatch } from './message.js';
import type { PartitionCommitter } from './partition-committer.js';

/** A handler call's result, with a rejection turned into a value. */
export type Outcome = { ok: true } | { ok: false; err: unknown };

/** The consumer's side of one kafkajs batch. */
export interface BatchChunkContext {
  /** The background commits of the batch's partition. */
  commits: PartitionCommitter;
  /** Largest chunk. Records. */
  maxBatchMessages: number;
  /** Chunks of the partition in flight at once. Count. */
  pipelineDepth: number;
  fetch: NonNullable<MessageBatch['fetch']>;
  logger: Logger;
  /** False once the consumer stops or pauses, or the partition was revoked or sought: no new chunk starts. */
  mayStart(): boolean;
  /** True once the consumer is stopping. */
  stopping(): boolean;
  /** Awaits `outcome` while heartbeating. */
  heartbeating<T>(outcome: Promise<T>): Promise<T>;
  /** Sleeps `ms` while heartbeating (woken by stop). */
  backoff(ms: number): Promise<void>;
}
