/**
 * Background offset commits of one partition for streams/batch-consumer.ts: the chunk path asks,
 * this sends, one commit in flight at a time.
 */
import type { EachBatchPayload } from 'kafkajs';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

/** What a committer needs of kafkajs' batch payload (a fake in unit tests). */
export type CommitPayload = Pick<EachBatchPayload, 'commitOffsetsIfNecessary'>;

/**
 * The commits of one partition, off the chunk path: `upTo(offset, p)` asks for the partition's
 * committed offset to become `offset` (called only once every record before it is durable); one
 * commit is in flight at a time, asks that arrive meanwhile are merged into the next (the largest
 * wins), so commits go out in order and never pass an offset that was asked for. A failure is kept
 * and thrown once by `takeFailure()`; `forget()` (a group join) drops the asks not yet sent, so
 * nothing is committed under a newer generation for a partition that may have moved.
 */
export class PartitionCommitter {
  private wanted = -1;
  private sent = -1;
  private running: Promise<void> | undefined;
  private failure: { err: unknown } | undefined;
  private payload: CommitPayload | undefined;

  constructor(
    private readonly topic: string,
    private readonly partition: number,
    private readonly logger: Logger,
  ) {}

  upTo(offset: number, p: CommitPayload): void {
    this.payload = p;
    if (offset > this.wanted) this.wanted = offset;
    this.kick();
  }

  /**
   * Asks for `offset` with the payload of the last chunk, outside any batch (a fetch of commit
   * markers only); false when no chunk of this partition was committed through this committer yet.
   */
  upToLater(offset: number): boolean {
    if (this.payload === undefined) return false;
    if (offset > this.wanted) this.wanted = offset;
    this.kick();
    return true;
  }

  /** The failure of a commit since the last call, if any (then cleared). */
  takeFailure(): { err: unknown } | undefined {
    const f = this.failure;
    this.failure = undefined;
    return f;
  }

  forget(): void {
    this.wanted = this.sent;
    this.failure = undefined;
  }

  /** Resolves once every asked commit went out or failed (never rejects). */
  async settled(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  /**
   * Starts the send loop when there is something to send. Only then: a loop with nothing to do ran
   * to its `finally` synchronously, before `running` was assigned, and left a settled promise there
   * that no later ask could replace (the partition never committed again).
   */
  private kick(): void {
    if (this.running === undefined && this.wanted > this.sent && this.payload !== undefined) this.running = this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (this.wanted > this.sent && this.payload !== undefined) {
        const offset = this.wanted;
        await this.payload.commitOffsetsIfNecessary({ topics: [{ topic: this.topic, partitions: [{ partition: this.partition, offset: String(offset) }] }] });
        this.sent = offset;
      }
    } catch (err) {
      // Not committed: the records after the last commit are redelivered (at least once).
      this.failure = { err };
      this.wanted = this.sent;
      this.logger.warn('commit failed; the records after the last commit will be redelivered', { topic: this.topic, partition: this.partition, error: errorMessage(err) });
    } finally {
      this.running = undefined;
    }
  }
}
