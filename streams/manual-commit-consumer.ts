/**
 * A consumer-group member for owners that decide themselves which offsets to commit (the online
 * trainer commits only what a published release covers). It hands chunks of at most
 * `maxBatchMessages` records of one partition, one partition at a time, to a handler; it never
 * commits on its own: `commit()` commits exactly the offsets it is given.
 *
 * - A chunk the handler reports as handled is resolved (kafkajs fetches after it next), and the
 *   member heartbeats before the next chunk; a chunk reported as not handled ends the batch.
 * - Before each chunk, a stopping consumer or a revoked/re-seeked partition ends the batch.
 * - On every group join each assigned partition is sought to `startOffset(partition)` when that
 *   names one, whatever the group's committed offset says.
 * Keeps the Kafka client behind streams/ (kafkajs types do not leave this folder).
 */
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { createKafka, kafkaError, type KafkaConnection } from './kafka.js';
import { toRawMessage, type RawMessage } from './message.js';

export interface ManualCommitConsumerOptions {
  kafka: KafkaConnection;
  /** Consumer group id. */
  groupId: string;
  /** The one topic consumed. */
  topic: string;
  /** Where a group without committed offsets starts: earliest (true) or latest (false). */
  fromBeginning: boolean;
  /** Largest number of records handed to the handler at once. Count. */
  maxBatchMessages: number;
  /** Longest a fetch waits when the topic is idle. Milliseconds. */
  maxWaitTimeMs: number;
  /** Where a newly assigned partition starts (next offset to read), or undefined for the committed offset. */
  startOffset: (partition: number) => number | undefined;
  logger: Logger;
}

/** Handles one chunk of one partition; resolves true once it is handled (its offsets may then be fetched past). */
export type ManualChunkHandler = (partition: number, messages: readonly RawMessage[]) => Promise<boolean>;

export class ManualCommitConsumer {
  private readonly opts: ManualCommitConsumerOptions;
  private consumer: Consumer | undefined;
  private readonly failedListeners: ((err: unknown) => void)[] = [];
  private running = false;

  constructor(opts: ManualCommitConsumerOptions) {
    this.opts = opts;
  }

  /** Joins the group and starts handing chunks to `handler`; throws a coded Kafka error when it cannot start. */
  async start(handler: ManualChunkHandler): Promise<void> {
    const { kafka, groupId, topic, maxWaitTimeMs, fromBeginning, logger } = this.opts;
    const consumer = createKafka(kafka, logger).consumer({ groupId, maxWaitTimeInMs: maxWaitTimeMs, allowAutoTopicCreation: false });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (e) => {
      logger.error('consumer crashed', { error: e.payload.error, restart: e.payload.restart });
      if (!e.payload.restart && this.running) {
        this.running = false;
        for (const listener of this.failedListeners.splice(0)) listener(e.payload.error);
      }
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      for (const partition of e.payload.memberAssignment[topic] ?? []) this.seekToStart(consumer, partition);
    });
    try {
      this.running = true;
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning });
      // One partition at a time: the owner's handler is not meant to run twice at once.
      await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: (payload) => this.eachBatch(payload, handler) });
    } catch (err) {
      this.running = false;
      await consumer.disconnect().catch(() => undefined);
      throw kafkaError(kafka, `consumer ${groupId} failed to start`, err);
    }
  }

  /** Calls `listener` once if the consumer crashes and kafkajs does not restart it. */
  onFailed(listener: (err: unknown) => void): void {
    this.failedListeners.push(listener);
  }

  /** Stops fetching; the chunk in flight still finishes. */
  pause(): void {
    this.consumer?.pause([{ topic: this.opts.topic }]);
  }

  /** Commits these next offsets (partition number → offset); a no-op before start() or for none. */
  async commit(offsets: Readonly<Record<string, number>>): Promise<void> {
    const consumer = this.consumer;
    if (consumer === undefined) return;
    const parts = Object.entries(offsets).map(([partition, offset]) => ({ topic: this.opts.topic, partition: Number(partition), offset: String(offset) }));
    if (parts.length === 0) return;
    await consumer.commitOffsets(parts);
  }

  /** Leaves the group (awaiting the chunk in flight) and disconnects; nothing is committed. */
  async disconnect(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    this.running = false;
    await consumer?.disconnect();
  }

  // A group whose commit was lost (or a `fromBeginning: false` start) still resumes exactly where the owner says.
  private seekToStart(consumer: Consumer, partition: number): void {
    const offset = this.opts.startOffset(partition);
    if (offset === undefined) return;
    try {
      consumer.seek({ topic: this.opts.topic, partition, offset: String(offset) });
    } catch (err) {
      this.opts.logger.warn('seek failed; covered messages will be skipped instead', { partition, error: errorMessage(err) });
    }
  }

  private async eachBatch(payload: EachBatchPayload, handler: ManualChunkHandler): Promise<void> {
    const { batch } = payload;
    const max = this.opts.maxBatchMessages;
    for (let start = 0; start < batch.messages.length; start += max) {
      if (!this.running || !payload.isRunning() || payload.isStale()) return;
      const chunk = batch.messages.slice(start, start + max).map((m) => toRawMessage(batch.topic, batch.partition, m));
      if (!(await handler(batch.partition, chunk))) return;
      const last = chunk[chunk.length - 1];
      if (last !== undefined) payload.resolveOffset(String(last.offset));
      await payload.heartbeat();
    }
  }
}
