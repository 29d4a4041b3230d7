/**
 * Fetch-ahead for streams/batch-consumer.ts (option `fetchAhead`): the chunks of one partition that
 * were handed to the handler and are not durable yet, kept across kafkajs batches.
 *
 * Why: kafkajs fetches again only once every batch of its previous fetch was handled, and a batch
 * was handled when its handler resolved, i.e. when it is durable. Every event produced meanwhile
 * waited for the whole round (fetch, decode and adapt, ClickHouse insert, Redis write of every
 * partition) before its own fetch was even sent: the largest part of the spine's latency at half
 * load (bench/spine/trace.ts "fetch wait"). With fetch-ahead, `eachBatch` returns once its chunks are
 * handed over (at most `pipelineDepth` chunks of a partition in flight), so kafkajs fetches the next
 * records while the previous ones are still being made durable, and the handler (the worker orders
 * overlapping calls of a partition, consumers/worker.ts) prepares them as soon as the previous
 * chunk is prepared.
 *
 * What stays as without it:
 * - Commits: a chunk's offset+1 is committed only after its handler resolved and after every
 *   earlier chunk of the partition did (outcomes are settled in hand-over order), through the
 *   partition's PartitionCommitter; never for a chunk handed over under an older group generation.
 * - Failures: the first failed chunk of a partition makes the consumer seek the partition back to
 *   that chunk's first offset (outcomes of the chunks handed over after it are ignored: the handler
 *   discards them); the chunk is handed over again after a backoff that doubles on every failure of
 *   the same chunk (retryInitialMs..retryMaxMs). A `RewindPartition` seeks where it says.
 * - `stop()` awaits every chunk in flight (and its commit) before leaving the group.
 *
 * What changes: kafkajs may revoke a partition while chunks of it are still in flight (it no longer
 * waits for them in eachBatch). Those chunks finish (their writes are idempotent: the store's CAS on
 * lastOffset, rows de-duplicated by event id), but are not committed by this member; the new owner
 * starts from the committed offset and may redo them, as after a crash.
 */
import type { EachBatchPayload } from 'kafkajs';
import { errorMessage, ThawError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { RewindPartition } from './assignment.js';
import { toRawMessage, type MessageBatch } from './message.js';
import type { PartitionCommitter } from './partition-committer.js';
import type { BatchChunkContext, Outcome } from './chunk-context.js';

export type { Outcome } from './chunk-context.js';

/** What a partition's fetch-ahead needs of its consumer. */
export interface AheadHost {
  /** One handler call; never rejects. */
  call(chunk: MessageBatch): Promise<Outcome>;
  /** Moves the partition's fetch position (kafkajs seek; ignored for a partition no longer assigned). */
  seek(topic: string, partition: number, offset: number): void;
  /** Group joins so far (a generation counter). */
  joins(): number;
  /** A failed chunk (counted as a retry) or a rewind. */
  onFailure(kind: 'retry' | 'rewind'): void;
  readonly logger: Logger;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
}

interface Inflight {
  firstOffset: number;
  through: number;
  join: number;
  settled: Promise<void>;
}

/** A chunk that failed and is to be handed over again (from `offset`) after `delayMs`. */
export interface FailedChunk {
  offset: number;
  attempt: number;
  delayMs: number;
  err: unknown;
}

export class AheadPartition {
  private readonly inflight: Inflight[] = [];
  private chain: Promise<void> = Promise.resolve();
  /** Bumped by each failure: outcomes of chunks handed over before it are then ignored. */
  private epoch = 0;
  /** Set from a failure until a chunk holding `offset` succeeded. */
  failed: FailedChunk | undefined;

  constructor(
    private readonly topic: string,
    private readonly partition: number,
    private readonly host: AheadHost,
    private readonly commits: PartitionCommitter,
  ) {}

  get size(): number {
    return this.inflight.length;
  }

  /** Resolves once fewer than `n` chunks are in flight. */
  async below(n: number): Promise<void> {
    for (let head = this.inflight[0]; this.inflight.length >= n && head !== undefined; head = this.inflight[0]) await head.settled;
  }

  /** Resolves once every chunk in flight settled. Never rejects. */
  async settled(): Promise<void> {
    await this.below(1);
  }

  /**
   * True when a chunk from `firstOffset` may be handed over: not past a failed chunk that is yet to
   * be handed over again (a batch fetched before the seek back).
   */
  mayHand(firstOffset: number): boolean {
    return this.failed === undefined || firstOffset <= this.failed.offset || this.failedHandedAgain;
  }

  private failedHandedAgain = false;

  /** Hands `chunk` (whose records end at `through`, commit markers included) to the handler. */
  hand(chunk: MessageBatch, through: number, payload: Pick<EachBatchPayload, 'commitOffsetsIfNecessary'>): void {
    const firstOffset = chunk.messages[0]?.offset ?? through;
    if (this.failed !== undefined && firstOffset <= this.failed.offset) this.failedHandedAgain = true;
    const entry: Inflight = { firstOffset, through, join: this.host.joins(), settled: Promise.resolve() };
    const epoch = this.epoch;
    const outcome = this.host.call(chunk);
    this.chain = this.chain
      .then(() => outcome)
      .then((o) => {
        try {
          this.settle(entry, o, epoch, payload);
        } catch (err) {
          // Never leave the chain rejected: every later chunk of the partition would stay unsettled.
          this.host.logger.error('fetch-ahead: settling a chunk failed', { topic: this.topic, partition: this.partition, error: errorMessage(err) });
        }
      });
    entry.settled = this.chain;
    this.inflight.push(entry);
  }

  // Called in hand-over order (the chain), so `entry` is the head of `inflight`.
  private settle(entry: Inflight, o: Outcome, epoch: number, payload: Pick<EachBatchPayload, 'commitOffsetsIfNecessary'>): void {
    this.inflight.shift();
    if (epoch !== this.epoch) return;
    const current = entry.join === this.host.joins();
    if (o.ok) {
      if (this.failed !== undefined && entry.firstOffset <= this.failed.offset) {
        this.failed = undefined;
        this.failedHandedAgain = false;
      }
      if (current) this.commits.upTo(entry.through + 1, payload);
      return;
    }
    this.epoch++;
    if (o.err instanceof RewindPartition) {
      this.host.onFailure('rewind');
      this.host.logger.warn('partition rewound by the handler', { topic: this.topic, partition: this.partition, offset: o.err.offset, error: errorMessage(o.err) });
      this.failed = undefined;
      this.failedHandedAgain = false;
      if (current) this.host.seek(this.topic, this.partition, o.err.offset);
      return;
    }
    const again = this.failed !== undefined && entry.firstOffset <= this.failed.offset;
    const delayMs = again && this.failed !== undefined ? Math.min(this.failed.delayMs * 2, this.host.retryMaxMs) : this.host.retryInitialMs;
    this.failed = { offset: entry.firstOffset, attempt: again && this.failed !== undefined ? this.failed.attempt + 1 : 1, delayMs, err: o.err };
    this.failedHandedAgain = false;
    this.host.onFailure('retry');
    // Under a newer generation kafkajs refetches from the committed offset by itself.
    if (current) this.host.seek(this.topic, this.partition, entry.firstOffset);
  }
}

/** What `handAheadBatch` needs of the consumer, for one kafkajs batch. */
export interface AheadBatchContext extends BatchChunkContext {
  ahead: AheadPartition;
}

/**
 * kafkajs' eachBatch with fetch-ahead: hands the batch's chunks over, each once fewer than
 * `pipelineDepth` chunks of the partition are in flight, and returns without awaiting them; their
 * outcomes commit (or seek back) in the background (AheadPartition).
 */
export async function handAheadBatch(payload: EachBatchPayload, ctx: AheadBatchContext): Promise<void> {
  const { batch } = payload;
  const { ahead, commits, logger } = ctx;
  const all = batch.messages;
  const max = ctx.maxBatchMessages;
  const highWatermark = Number(batch.highWatermark);
  try {
    for (let at = 0; at < all.length; at += max) {
      await ctx.heartbeating(ahead.below(ctx.pipelineDepth));
      // A commit that failed (a rebalance under way, the broker gone) is thrown to kafkajs, as without
      // fetch-ahead: it rejoins or refetches from the committed offset.
      const failedCommit = commits.takeFailure();
      if (failedCommit !== undefined) throw failedCommit.err;
      if (!ctx.mayStart()) break;
      const messages = all.slice(at, at + max).map((m) => toRawMessage(batch.topic, batch.partition, m));
      const first = messages[0];
      const last = messages[messages.length - 1];
      if (first === undefined || last === undefined || !ahead.mayHand(first.offset)) break;
      const failed = ahead.failed;
      if (failed !== undefined && first.offset <= failed.offset) {
        const fields = {
          topic: batch.topic,
          partition: batch.partition,
          firstOffset: first.offset,
          attempt: failed.attempt,
          backoffMs: failed.delayMs,
          code: failed.err instanceof ThawError ? failed.err.code : undefined,
          error: errorMessage(failed.err),
        };
        if (ThawError.isRetryable(failed.err)) logger.warn('batch handler failed; retrying', fields);
        else logger.error('batch handler failed with a non-retryable error; retrying (route poison events to dead letters)', fields);
        await ctx.backoff(failed.delayMs);
        if (!ctx.mayStart()) break;
      }
      // The batch's last chunk also covers the commit markers / aborted records after its last message.
      const through = at + max >= all.length ? Math.max(last.offset, Number(batch.lastOffset())) : last.offset;
      ahead.hand({ topic: batch.topic, partition: batch.partition, messages, highWatermark, fetch: ctx.fetch }, through, payload);
      // The fetch position only: the commit waits for the chunk to be durable.
      payload.resolveOffset(String(through));
      await payload.heartbeat();
    }
  } finally {
    // Stopping: the chunks in flight and their commits settle before kafkajs leaves the group.
    if (ctx.stopping()) {
      await ahead.settled();
      await commits.settled();
    }
  }
}
