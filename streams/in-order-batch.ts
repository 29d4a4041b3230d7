/**
 * The in-order path of streams/batch-consumer.ts (without `fetchAhead`): one kafkajs batch is cut into
 * chunks of at most `maxBatchMessages` records, each committed (offset+1) only after its handler
 * resolved.
 *
 * Pipelining within a partition (`pipelineDepth`, default 1 = off): up to that many consecutive
 * chunks of one partition are handed to the handler before the first has resolved. The handler must
 * then process overlapping calls of a partition in call order (consumers/worker.ts does) and each
 * call must still resolve only once its own chunk is durable. Commits stay strictly in order: chunk
 * N+1 is committed only after N was. When chunk N fails, the chunks after it that are already in
 * flight are awaited and their outcome ignored (the handler is expected to discard them), then N is
 * retried alone with capped exponential backoff and the pipeline restarts after it. A
 * RewindPartition from the handler seeks the partition back instead. `handInOrderBatch` awaits every
 * chunk of its fetch before returning, also when it leaves early (a rebalance thrown by a heartbeat or
 * a commit between chunks), so kafkajs never revokes a partition with a chunk in flight.
 */
import type { EachBatchPayload } from 'kafkajs';
import { ThawError, errorMessage } from '../lib/errors.js';
import { RewindPartition } from './assignment.js';
import type { BatchChunkContext, Outcome } from './chunk-context.js';
import { toRawMessage, type MessageBatch } from './message.js';

/** What `handInOrderBatch` needs of the consumer, for one kafkajs batch. */
export interface InOrderBatchContext extends BatchChunkContext {
  offsetCommit: 'consumer' | 'transaction';
  /** First backoff after a failure. Milliseconds. */
  retryInitialMs: number;
  /** Backoff cap. Milliseconds. */
  retryMaxMs: number;
  /** One handler call whose rejection becomes a value. */
  call(chunk: MessageBatch): Promise<Outcome>;
  /** Seeks the batch's partition back to `offset` (the handler threw RewindPartition). */
  rewind(offset: number): void;
  /** Counts one failed attempt. */
  onRetry(): void;
  /** False once the consumer stops or the partition was revoked or sought: a failed chunk is not retried. */
  mayRetry(): boolean;
}

/** kafkajs' eachBatch without fetch-ahead (see the file comment). */
export async function handInOrderBatch(payload: EachBatchPayload, ctx: InOrderBatchContext): Promise<void> {
  const { batch } = payload;
  const all = batch.messages;
  const highWatermark = Number(batch.highWatermark);
  const max = ctx.maxBatchMessages;
  const depth = ctx.pipelineDepth;
  const chunkAt = (i: number): MessageBatch => ({
    topic: batch.topic,
    partition: batch.partition,
    messages: all.slice(i, i + max).map((message) => toRawMessage(batch.topic, batch.partition, message)),
    highWatermark,
    fetch: ctx.fetch,
  });
  const inflight: { chunk: MessageBatch; at: number; outcome: Promise<Outcome> }[] = [];
  const commits = ctx.commits;
  let next = 0;
  try {
    for (;;) {
      while (inflight.length < depth && next < all.length && ctx.mayStart()) {
        const chunk = chunkAt(next);
        inflight.push({ chunk, at: next, outcome: ctx.call(chunk) });
        next += max;
      }
      const head = inflight.shift();
      if (head === undefined) break;
      const outcome = await ctx.heartbeating(head.outcome);
      if (!outcome.ok) {
        // Later chunks may have read the failed chunk's results: let them settle (the handler
        // discards them), then retry this one alone and restart the pipeline after it.
        await Promise.all(inflight.map((later) => later.outcome));
        inflight.length = 0;
        if (outcome.err instanceof RewindPartition) {
          // Not retried: refetched from where the handler says (this batch is stale after the seek).
          ctx.logger.warn('partition rewound by the handler', { topic: batch.topic, partition: batch.partition, offset: outcome.err.offset, error: errorMessage(outcome.err) });
          ctx.rewind(outcome.err.offset);
          break;
        }
        next = head.at + max;
        if (!(await retryAfterFailure(head.chunk, outcome.err, ctx))) break;
      }
      const last = head.chunk.messages[head.chunk.messages.length - 1];
      if (last === undefined) continue;
      // The batch's last chunk also covers the commit markers / aborted records after its last message.
      const through = head.at + max >= all.length ? Math.max(last.offset, Number(batch.lastOffset())) : last.offset;
      payload.resolveOffset(String(through));
      if (ctx.offsetCommit === 'consumer') {
        // The handler made the chunk durable: this partition's next offset may be committed. The
        // commit goes out in the background (the next chunk does not wait for its round trip).
        commits.upTo(through + 1, payload);
      } else if (through > last.offset) {
        // Transaction mode: the handler committed last.offset + 1 in its transaction; only the
        // markers after it are left. Awaited, so that it can never land after (and undo) the next
        // chunk's transactional commit.
        await payload.commitOffsetsIfNecessary({
          topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: String(through + 1) }] }],
        });
      }
      // A commit that failed (a rebalance under way, the broker gone) is thrown to kafkajs, as an
      // awaited commit was: it rejoins or retries the batch from the committed offset.
      const failed = commits.takeFailure();
      if (failed !== undefined) throw failed.err;
      await payload.heartbeat();
    }
  } finally {
    // Leaving early (a rebalance or a failed commit thrown by the heartbeat or the committer): the
    // chunks still in flight settle first, uncommitted. kafkajs rejoins once this call returns, and
    // the listener is promised no chunk in flight when it hears of the join.
    await Promise.all(inflight.map((later) => later.outcome));
    // Stopping: the last commits go out before kafkajs leaves the group (it awaits this call).
    if (ctx.stopping()) await commits.settled();
  }
}

/**
 * Retries a chunk whose first attempt failed with `err`, with capped exponential backoff. True
 * when the handler succeeded; false when the consumer stops or loses the partition first.
 */
async function retryAfterFailure(chunk: MessageBatch, err: unknown, ctx: InOrderBatchContext): Promise<boolean> {
  let delay = ctx.retryInitialMs;
  for (let attempt = 1; ; attempt++) {
    ctx.onRetry();
    const fields = {
      topic: chunk.topic,
      partition: chunk.partition,
      firstOffset: chunk.messages[0]?.offset,
      attempt,
      backoffMs: delay,
      code: err instanceof ThawError ? err.code : undefined,
      error: errorMessage(err),
    };
    if (ThawError.isRetryable(err)) ctx.logger.warn('batch handler failed; retrying', fields);
    else ctx.logger.error('batch handler failed with a non-retryable error; retrying (route poison events to dead letters)', fields);
    if (!ctx.mayRetry()) return false;
    await ctx.backoff(delay);
    if (!ctx.mayRetry()) return false;
    delay = Math.min(delay * 2, ctx.retryMaxMs);
    const outcome = await ctx.call(chunk);
    if (outcome.ok) return true;
    err = outcome.err;
  }
}
