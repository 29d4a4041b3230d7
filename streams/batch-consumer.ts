/**
 * A consumer-group member that hands whole batches (chunks of at most `maxBatchMessages` records of
 * one partition) to a handler and commits offset+1 of a chunk only after the handler resolved.
 *
 * Guarantees:
 * - At least once, never past a failure: a throwing handler is retried with capped exponential
 *   backoff on the same chunk; nothing after it is committed. Non-retryable errors (anything that is
 *   not `ThawError.isRetryable`) are retried too, but logged at error level: poison events must be
 *   routed to dead letters by the handler, so an error escaping it is an outage or a bug, and
 *   skipping the chunk would lose data.
 * - Rebalance safety: kafkajs does not revoke partitions while `eachBatch` is awaiting, so the
 *   in-flight chunk finishes and is committed first; between chunks `isRunning()`/`isStale()` are
 *   checked, and a revoked or re-seeked partition stops being processed (the rest is refetched by
 *   whoever owns it, from the committed offset).
 * - Backpressure: `pause()` stops fetching; the current chunk finishes, the rest of the fetched batch
 *   is left unresolved and is fetched again after `resume()`.
 * - Ownership hooks (`start(handler, listener)`, streams/assignment.ts): on every group join the
 *   listener hears which partitions moved (so a cache of their state can be dropped) before any
 *   batch of the new assignment is handed over; then the newly assigned partitions stay paused
 *   until the listener has named where each starts (its own record of the partition's progress,
 *   which may be ahead of or behind the committed offset) and the consumer has sought there. Also a
 *   partition with nothing to fetch is sought (a store that lost writes is re-fed at once).
 * - `stop()`: stop fetching, let the in-flight handler finish and commit, leave the group, disconnect.
 * - Concurrency across partitions (`partitionsConsumedConcurrently`, default: every partition of the
 *   subscribed topics): chunks of different partitions are handled at the same time, which overlaps
 *   one partition's Redis/ClickHouse round trips with another's fetch, decode and compute. Safe for
 *   Thaw's topics because (1) they are keyed by the entity the handler updates, so concurrent chunks
 *   touch disjoint entities; (2) kafkajs never hands two batches of one partition to the handler at
 *   once (a partition's next fetch waits for its batch to be resolved), so per-partition order is
 *   kept; (3) commits stay per partition (each chunk commits only its own partition's offset, after
 *   its own handler resolved). A topic NOT keyed by the handler's entity must use 1.
 * - Pipelining within a partition (`pipelineDepth`, default 1 = off): up to that many consecutive
 *   chunks of one partition are handed to the handler before the first has resolved. The handler
 *   must then process overlapping calls of a partition in call order (consumers/worker.ts does) and
 *   each call must still resolve only once its own chunk is durable. Commits stay strictly in
 *   order: chunk N+1 is committed only after N was. When chunk N fails, the chunks after it that
 *   are already in flight are awaited and their outcome ignored (the handler is expected to discard
 *   them), then N is retried with backoff as above and the pipeline restarts after it.
 *   `eachBatch` awaits every chunk of its fetch before returning, also when it leaves early (a
 *   rebalance thrown by a heartbeat or a commit between chunks), so the rebalance guarantee holds.
 * - Commits off the chunk path: a chunk's commit (offset+1, asked only after its handler resolved)
 *   is sent in the background while the partition's next chunk (or next fetch) is handled; one
 *   commit per partition is in flight at a time and later asks are merged into the next, so commits
 *   go out in order and never pass a record that is not durable. A failed commit is thrown from the
 *   partition's next chunk (kafkajs then rejoins or refetches from the committed offset); a group
 *   join drops the asks not yet sent; stop() lets every asked commit go out before leaving the group.
 *   A commit round trip took 30 ms (p50) to 120 ms (p90) on this shared machine, against ~40 ms of
 *   decoding per 7,000-record fetch: awaiting it before the next chunk left each partition idle for
 *   a large share of the time (bench/spine/consumer-overhead.ts).
 * - Fetch-ahead (`fetchAhead`, default off; streams/fetch-ahead.ts): `eachBatch` returns once its
 *   chunks are handed over, so kafkajs fetches the next records while they are made durable; at most
 *   `pipelineDepth` chunks of a partition are in flight, across batches. Commits as above. Since
 *   kafkajs may now rejoin with chunks in flight, a group join then pauses the new assignment until
 *   they settled and only then tells the listener (which is promised no chunk in flight).
 */
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { ConfigError, ThawError, errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { groupLag, groupPositions, retryRetriable, withAdmin } from './admin.js';
import { assignmentChange, partitionKey, partitionsOf, RewindPartition, type GroupAssignment, type PartitionListener, type TopicPartition } from './assignment.js';
import { createKafka, kafkaError, type KafkaConnection } from './kafka.js';
import { toRawMessage, type MessageBatch } from './message.js';
import { PartitionCommitter } from './partition-committer.js';
import { AheadPartition, handAheadBatch, type AheadHost, type Outcome } from './fetch-ahead.js';

export type { MessageBatch, RawMessage } from './message.js';
export type { AssignmentChange, PartitionListener, TopicPartition } from './assignment.js';
export { RewindPartition } from './assignment.js';

export type BatchHandler = (batch: MessageBatch) => Promise<void>;

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
   * fixed costs (one ClickHouse INSERT, two Redis round trips, one commit); a 1 MiB fetch holds
   * ~7,000 labelled events (~146 bytes each) per partition, so 5000 takes most of it in one chunk.
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
   * backoff (up to ~10 s before the restart) one broker lost stalled a worker for 18-27 s in the
   * 3-broker drill. Milliseconds. @default 1000
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
   * Only safe when the topics are keyed by the entity the handler updates (see the file comment).
   * Count, at most 256. @default the number of partitions of the subscribed topics (looked up at start)
   */
  partitionsConsumedConcurrently?: number;
  /**
   * Chunks of one partition handed to the handler before the first of them resolved (see the file
   * comment). 1 = one chunk at a time. Only for handlers that handle overlapping calls of one
   * partition in call order. Count, at most MAX_PIPELINE_DEPTH. @default 1
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

type Resolved = Required<Omit<BatchConsumerOptions, 'logger' | 'partitionsConsumedConcurrently'>> & {
  /** undefined: one per partition of the subscribed topics, looked up at start(). */
  partitionsConsumedConcurrently: number | undefined;
};

export type BatchConsumerState = 'idle' | 'running' | 'stopping' | 'stopped' | 'failed';

function positiveInt(key: string, v: number, min = 1): number {
  if (!Number.isInteger(v) || v < min) throw new ConfigError(key, `must be an integer >= ${min}, got ${v}`);
  return v;
}

/** Fills defaults and validates; throws ConfigError naming the key. */
export function resolveBatchConsumerOptions(o: BatchConsumerOptions): Resolved {
  if (typeof o.groupId !== 'string' || o.groupId === '') throw new ConfigError('consumer.groupId', 'must be a non-empty string');
  if (!Array.isArray(o.topics) || o.topics.length === 0) throw new ConfigError('consumer.topics', 'at least one topic is required');
  const r: Resolved = {
    kafka: o.kafka,
    groupId: o.groupId,
    topics: [...o.topics],
    fromBeginning: o.fromBeginning ?? true,
    maxBatchMessages: positiveInt('consumer.maxBatchMessages', o.maxBatchMessages ?? DEFAULT_MAX_BATCH_MESSAGES),
    retryInitialMs: positiveInt('consumer.retryInitialMs', o.retryInitialMs ?? 200),
    retryMaxMs: positiveInt('consumer.retryMaxMs', o.retryMaxMs ?? 5000),
    clientRetryMaxMs: positiveInt('consumer.clientRetryMaxMs', o.clientRetryMaxMs ?? 1000, 100),
    sessionTimeoutMs: positiveInt('consumer.sessionTimeoutMs', o.sessionTimeoutMs ?? 30_000, 6000),
    heartbeatIntervalMs: positiveInt('consumer.heartbeatIntervalMs', o.heartbeatIntervalMs ?? 3000, 100),
    maxWaitTimeMs: positiveInt('consumer.maxWaitTimeMs', o.maxWaitTimeMs ?? 500, 0),
    maxBytesPerPartition: positiveInt('consumer.maxBytesPerPartition', o.maxBytesPerPartition ?? 1_048_576, 1024),
    pipelineDepth: positiveInt('consumer.pipelineDepth', o.pipelineDepth ?? 1),
    offsetCommit: o.offsetCommit ?? 'consumer',
    fetchAhead: o.fetchAhead ?? false,
    partitionsConsumedConcurrently: o.partitionsConsumedConcurrently === undefined ? undefined : positiveInt('consumer.partitionsConsumedConcurrently', o.partitionsConsumedConcurrently),
  };
  if (r.partitionsConsumedConcurrently !== undefined && r.partitionsConsumedConcurrently > MAX_PARTITIONS_CONCURRENCY) {
    throw new ConfigError('consumer.partitionsConsumedConcurrently', `must be at most ${MAX_PARTITIONS_CONCURRENCY}, got ${r.partitionsConsumedConcurrently}`);
  }
  if (r.offsetCommit !== 'consumer' && r.offsetCommit !== 'transaction') throw new ConfigError('consumer.offsetCommit', `expected consumer or transaction, got ${String(r.offsetCommit)}`);
  if (typeof r.fetchAhead !== 'boolean') throw new ConfigError('consumer.fetchAhead', `must be a boolean, got ${String(r.fetchAhead)}`);
  if (r.offsetCommit === 'transaction' && r.fetchAhead) throw new ConfigError('consumer.fetchAhead', 'must be false when offsets are committed in transactions');
  if (r.offsetCommit === 'transaction' && r.pipelineDepth !== 1) throw new ConfigError('consumer.pipelineDepth', 'must be 1 when offsets are committed in transactions');
  if (r.pipelineDepth > MAX_PIPELINE_DEPTH) throw new ConfigError('consumer.pipelineDepth', `must be at most ${MAX_PIPELINE_DEPTH}, got ${r.pipelineDepth}`);
  if (r.retryMaxMs < r.retryInitialMs) throw new ConfigError('consumer.retryMaxMs', 'must be >= retryInitialMs');
  if (r.heartbeatIntervalMs * 3 > r.sessionTimeoutMs) throw new ConfigError('consumer.heartbeatIntervalMs', 'must be at most a third of sessionTimeoutMs');
  return r;
}

export class BatchConsumer {
  private readonly opts: Resolved;
  private readonly logger: Logger;
  private consumer: Consumer | undefined;
  private handler: BatchHandler | undefined;
  private listener: PartitionListener | undefined;
  /** This member's assignment as of the last group join. */
  private membership: GroupAssignment | undefined;
  /** Group joins seen; a start resolution of an older join is abandoned. */
  private joins = 0;
  private paused = false;
  private lifecycle: BatchConsumerState = 'idle';
  // Wakes handlers that are backing off, so stop() does not wait out a 5 s sleep.
  private readonly wakers = new Set<() => void>();
  private readonly failedListeners: ((err: unknown) => void)[] = [];
  /** Background commits per partition (see PartitionCommitter). */
  private readonly committers = new Map<string, PartitionCommitter>();
  /** With fetchAhead: the chunks in flight per partition, across batches. */
  private readonly aheads = new Map<string, AheadPartition>();
  /** Total handler failures (each retry attempt counts). */
  retries = 0;
  /** Rewinds asked by the handler (RewindPartition): the partition was refetched from an earlier offset. */
  rewinds = 0;
  /** Partitions handled concurrently; known once start() resolved (0 before). */
  concurrency = 0;
  /** When kafkajs last sent a fetch request (unix ms), for MessageBatch.fetch. */
  private fetchRequestedAtMs = 0;

  constructor(opts: BatchConsumerOptions) {
    this.opts = resolveBatchConsumerOptions(opts);
    this.logger = (opts.logger ?? silentLogger).child({ component: 'batch-consumer', groupId: this.opts.groupId });
  }

  get state(): BatchConsumerState {
    return this.lifecycle;
  }

  /**
   * Joins the group and starts consuming; resolves once the consumer runs. `listener` hears of every
   * assignment and may choose where each assigned partition starts (streams/assignment.ts).
   */
  async start(handler: BatchHandler, listener?: PartitionListener): Promise<void> {
    if (this.lifecycle !== 'idle') throw new ThawError('LIFECYCLE', `BatchConsumer.start() called in state ${this.lifecycle}`);
    this.handler = handler;
    this.listener = listener;
    const o = this.opts;
    const consumer = createKafka(o.kafka, this.logger).consumer({
      groupId: o.groupId,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: o.heartbeatIntervalMs,
      maxWaitTimeInMs: o.maxWaitTimeMs,
      maxBytesPerPartition: o.maxBytesPerPartition,
      allowAutoTopicCreation: false,
      // Short, frequent retries: after a broker loss the coordinator is found again by a restart, so
      // waiting long between attempts only lengthens the stall (clientRetryMaxMs).
      retry: { initialRetryTime: 100, maxRetryTime: o.clientRetryMaxMs, retries: 5 },
      // Explicit: records of open or aborted transactions (thaw rekey / join output) are never read.
      readUncommitted: false,
    });
    this.consumer = consumer;
    // A fetch that held only commit markers (or aborted records) never reaches eachBatch; commit
    // past them so the group's lag reaches 0 at the end of a transactional topic.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      if (e.payload.batchSize !== 0 || this.lifecycle !== 'running') return;
      const next = Number(e.payload.lastOffset) + 1;
      // Through the partition's committer when it has one, so that this commit is ordered with the
      // background commits of the chunks before it (a commit landing late would move the group back).
      const key = partitionKey({ topic: e.payload.topic, partition: e.payload.partition });
      const committer = this.committers.get(key);
      const ahead = this.aheads.get(key);
      if (ahead !== undefined && committer !== undefined && (ahead.size > 0 || ahead.failed !== undefined)) {
        // Fetch-ahead: chunks before the markers may not be durable yet; commit past the markers
        // once they are, unless one failed (the partition is then refetched from before it).
        const join = this.joins;
        void ahead.settled().then(() => {
          if (ahead.failed === undefined && join === this.joins) committer.upToLater(next);
        });
        return;
      }
      if (committer?.upToLater(next) === true) return;
      const offset = String(next);
      consumer.commitOffsets([{ topic: e.payload.topic, partition: e.payload.partition, offset }]).catch((err: unknown) => {
        this.logger.warn('commit past commit markers failed (retried with the next batch)', { topic: e.payload.topic, partition: e.payload.partition, error: errorMessage(err) });
      });
    });
    consumer.on(consumer.events.FETCH_START, () => {
      this.fetchRequestedAtMs = Date.now();
    });
    consumer.on(consumer.events.CRASH, (e) => {
      this.logger.error('consumer crashed', { error: e.payload.error, restart: e.payload.restart });
      if (!e.payload.restart && this.lifecycle === 'running') {
        // kafkajs does not restart it: the consumer is gone for good, tell the owner.
        this.lifecycle = 'failed';
        const err = kafkaError(o.kafka, `consumer ${o.groupId} crashed and is not restarted`, e.payload.error);
        for (const listener of this.failedListeners.splice(0)) listener(err);
      }
    });
    // Which partitions this member got, after every (re)join: the first thing to read after a crash
    // or a rebalance.
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      this.logger.info('partitions assigned', {
        memberId: e.payload.memberId,
        leader: e.payload.isLeader,
        assignment: e.payload.memberAssignment,
        joinMs: e.payload.duration,
      });
    });
    // Emitted by kafkajs at the end of each join + sync, before the new assignment is fetched.
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onGroupJoin(e.payload.memberId, e.payload.memberAssignment));
    try {
      this.concurrency = o.partitionsConsumedConcurrently ?? (await this.partitionCount());
      await consumer.connect();
      await consumer.subscribe({ topics: o.topics, fromBeginning: o.fromBeginning });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.concurrency,
        eachBatch: (payload) => this.eachBatch(payload),
      });
    } catch (err) {
      this.lifecycle = 'failed';
      await consumer.disconnect().catch(() => undefined);
      throw kafkaError(o.kafka, `consumer ${o.groupId} failed to start`, err);
    }
    this.lifecycle = 'running';
    if (this.paused) this.pause();
  }

  /** Calls `listener` once if the consumer crashes and kafkajs does not restart it (see BatchSource). */
  onFailed(listener: (err: unknown) => void): void {
    this.failedListeners.push(listener);
  }

  /** Stops fetching (backpressure); the in-flight chunk still completes and commits. */
  pause(): void {
    this.paused = true;
    this.consumer?.pause(this.opts.topics.map((topic) => ({ topic })));
  }

  resume(): void {
    this.paused = false;
    this.consumer?.resume(this.opts.topics.map((topic) => ({ topic })));
  }

  /** Stops fetching, lets the in-flight handler finish and commit, leaves the group, disconnects. */
  async stop(): Promise<void> {
    if (this.lifecycle === 'stopped' || this.lifecycle === 'idle') {
      this.lifecycle = 'stopped';
      return;
    }
    this.lifecycle = 'stopping';
    for (const wake of this.wakers) wake();
    // Commits of chunks already handled go out before the group is left (a running eachBatch settles
    // its own before returning, which disconnect awaits).
    await Promise.all([...this.aheads.values()].map((a) => a.settled()));
    await Promise.all([...this.committers.values()].map((c) => c.settled()));
    try {
      // kafkajs disconnect() = stop the fetch loop, await the running eachBatch, leave the group.
      await this.consumer?.disconnect();
    } finally {
      this.lifecycle = 'stopped';
    }
  }

  /** Records in the subscribed topics not yet committed by this group. */
  async lag(): Promise<number> {
    try {
      return await retryRetriable(() => withAdmin(this.opts.kafka, (admin) => groupLag(admin, this.opts.groupId, this.opts.topics), this.logger));
    } catch (err) {
      throw kafkaError(this.opts.kafka, `lag of group ${this.opts.groupId}`, err);
    }
  }

  // kafkajs fixes its number of batch workers at run(), before the assignment is known: the total
  // partition count is the most this member can be assigned (extra workers just stay idle).
  private async partitionCount(): Promise<number> {
    const meta = await withAdmin(this.opts.kafka, (admin) => admin.fetchTopicMetadata({ topics: this.opts.topics }), this.logger);
    const n = meta.topics.reduce((sum, t) => sum + t.partitions.length, 0);
    return Math.min(MAX_PARTITIONS_CONCURRENCY, Math.max(1, n));
  }

  private onGroupJoin(memberId: string, memberAssignment: Readonly<Record<string, readonly number[]>>): void {
    const next: GroupAssignment = { memberId, partitions: partitionsOf(memberAssignment) };
    const change = assignmentChange(this.membership, next);
    this.membership = next;
    const join = ++this.joins;
    // Asks not yet sent belong to the old generation: dropped (a commit already in flight was sent
    // under it). Partitions kept are committed again by their next chunk.
    for (const c of this.committers.values()) c.forget();
    const names = (ps: readonly TopicPartition[]): string[] => ps.map(partitionKey);
    this.logger.info('partitions assigned', { memberId, assigned: names(change.assigned), revoked: names(change.revoked), moved: names(change.moved) });
    const aheads = [...this.aheads.values()];
    if (aheads.some((a) => a.size > 0)) {
      // Fetch-ahead: chunks handed over under the old generation may still be in flight, and the
      // listener is promised that no batch is when it hears of a join. Nothing of the new assignment
      // is fetched until they settled (they are not committed: join changed).
      this.consumer?.pause(byTopic(next.partitions));
      void Promise.all(aheads.map((a) => a.settled())).then(() => {
        if (join !== this.joins || this.lifecycle !== 'running') return;
        this.announce(join, change);
        const resolving = new Set(this.listener?.startOffset === undefined ? [] : change.assigned.map(partitionKey));
        const rest = next.partitions.filter((tp) => !resolving.has(partitionKey(tp)));
        if (!this.paused && rest.length > 0) this.consumer?.resume(byTopic(rest));
      });
      return;
    }
    this.announce(join, change);
  }

  /** Tells the listener of a join, then resolves where the newly assigned partitions start. */
  private announce(join: number, change: ReturnType<typeof assignmentChange>): void {
    try {
      this.listener?.onAssignment?.(change);
    } catch (err) {
      this.logger.error('assignment listener failed', { error: errorMessage(err) });
    }
    if (this.listener?.startOffset !== undefined && change.assigned.length > 0) {
      // Synchronously, before kafkajs' next fetch: nothing of these partitions is fetched until
      // resolveStarts has sought each to where the listener wants it.
      this.consumer?.pause(byTopic(change.assigned));
      void this.resolveStarts(join, change.assigned);
    }
  }

  /**
   * Asks the listener where each newly assigned partition starts, while those partitions are paused
   * (so no batch of them is fetched before), seeks (committing an offset ahead), then resumes them.
   * Failures are retried with backoff; a newer join or a stop abandons this one (the newer join
   * paused and resolves its own assignment).
   */
  private async resolveStarts(join: number, partitions: readonly TopicPartition[]): Promise<void> {
    const listener = this.listener;
    const consumer = this.consumer;
    if (listener?.startOffset === undefined || consumer === undefined) return;
    const current = (): boolean => join === this.joins && (this.lifecycle === 'idle' || this.lifecycle === 'running');
    let delay = this.opts.retryInitialMs;
    for (let attempt = 1; current(); attempt++) {
      try {
        const { groupId, fromBeginning, kafka } = this.opts;
        const positions = await withAdmin(kafka, (admin) => groupPositions(admin, groupId, partitions, fromBeginning), this.logger);
        for (const tp of partitions) {
          const position = positions.get(partitionKey(tp));
          if (!current() || position === undefined) continue;
          const start = await listener.startOffset(tp, position);
          // Sought even when equal to fetchedFrom: kafkajs may have read the committed offset on its
          // own before this listener's (a transaction of the previous owner completing in between).
          if (start === undefined || !current()) continue;
          // Ahead: the listener says every record before `start` is handled, so commit it (else a
          // partition with nothing after it would lag for ever). Behind: commit nothing, re-handle.
          if (start > position.fetchedFrom) await consumer.commitOffsets([{ topic: tp.topic, partition: tp.partition, offset: String(start) }]);
          consumer.seek({ topic: tp.topic, partition: tp.partition, offset: String(start) });
        }
        break;
      } catch (err) {
        this.retries++;
        this.logger.warn('start offsets of the assignment could not be resolved; retrying', {
          attempt,
          backoffMs: delay,
          code: err instanceof ThawError ? err.code : undefined,
          error: errorMessage(err),
        });
        await this.sleep(delay);
        delay = Math.min(delay * 2, this.opts.retryMaxMs);
      }
    }
    if (current() && !this.paused) consumer.resume(byTopic(partitions));
  }

  /** Sleeps `ms`, woken early by stop(). */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    if (this.opts.fetchAhead) return this.eachBatchAhead(payload);
    const { batch } = payload;
    const fetch = { requestedAtMs: this.fetchRequestedAtMs, receivedAtMs: Date.now() };
    const all = batch.messages;
    const highWatermark = Number(batch.highWatermark);
    const max = this.opts.maxBatchMessages;
    const depth = this.opts.pipelineDepth;
    const chunkAt = (i: number): MessageBatch => ({
      topic: batch.topic,
      partition: batch.partition,
      messages: all.slice(i, i + max).map((m) => toRawMessage(batch.topic, batch.partition, m)),
      highWatermark,
      fetch,
    });
    // Between chunks: a stopping consumer, a revoked/re-seeked partition or a pause ends this batch
    // (chunks already handed over still finish and are committed).
    const mayStart = (): boolean => payload.isRunning() && !payload.isStale() && !this.paused && this.lifecycle === 'running';
    const inflight: { chunk: MessageBatch; at: number; outcome: Promise<Outcome> }[] = [];
    const commits = this.committerOf(batch.topic, batch.partition);
    let next = 0;
    try {
      for (;;) {
        while (inflight.length < depth && next < all.length && mayStart()) {
          const chunk = chunkAt(next);
          inflight.push({ chunk, at: next, outcome: this.call(chunk) });
          next += max;
        }
        const head = inflight.shift();
        if (head === undefined) break;
        const outcome = await this.heartbeating(head.outcome, payload);
        if (!outcome.ok) {
          // Later chunks may have read the failed chunk's results: let them settle (the handler
          // discards them), then retry this one alone and restart the pipeline after it.
          await Promise.all(inflight.map((x) => x.outcome));
          inflight.length = 0;
          if (outcome.err instanceof RewindPartition) {
            // Not retried: refetched from where the handler says (this batch is stale after the seek).
            this.rewinds++;
            this.logger.warn('partition rewound by the handler', { topic: batch.topic, partition: batch.partition, offset: outcome.err.offset, error: errorMessage(outcome.err) });
            this.consumer?.seek({ topic: batch.topic, partition: batch.partition, offset: String(outcome.err.offset) });
            break;
          }
          next = head.at + max;
          if (!(await this.retryAfterFailure(head.chunk, payload, outcome.err))) break;
        }
        const last = head.chunk.messages[head.chunk.messages.length - 1];
        if (last === undefined) continue;
        // The batch's last chunk also covers the commit markers / aborted records after its last message.
        const through = head.at + max >= all.length ? Math.max(last.offset, Number(batch.lastOffset())) : last.offset;
        payload.resolveOffset(String(through));
        if (this.opts.offsetCommit === 'consumer') {
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
      await Promise.all(inflight.map((x) => x.outcome));
      // Stopping: the last commits go out before kafkajs leaves the group (it awaits this call).
      if (this.lifecycle !== 'running') await commits.settled();
    }
  }

  /**
   * eachBatch with fetchAhead (streams/fetch-ahead.ts): hands the batch's chunks over, each once
   * fewer than `pipelineDepth` chunks of the partition are in flight, and returns without awaiting
   * them; their outcomes commit (or seek back) in the background.
   */
  private async eachBatchAhead(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const commits = this.committerOf(batch.topic, batch.partition);
    await handAheadBatch(payload, {
      ahead: this.aheadOf(batch.topic, batch.partition),
      commits,
      maxBatchMessages: this.opts.maxBatchMessages,
      pipelineDepth: this.opts.pipelineDepth,
      fetch: { requestedAtMs: this.fetchRequestedAtMs, receivedAtMs: Date.now() },
      logger: this.logger,
      mayStart: () => payload.isRunning() && !payload.isStale() && !this.paused && this.lifecycle === 'running',
      stopping: () => this.lifecycle !== 'running',
      heartbeating: (p) => this.heartbeating(p, payload),
      backoff: (ms) => this.backoff(ms, payload),
    });
  }

  private aheadOf(topic: string, partition: number): AheadPartition {
    const key = partitionKey({ topic, partition });
    let a = this.aheads.get(key);
    if (a === undefined) {
      const host: AheadHost = {
        call: (chunk) => this.call(chunk),
        seek: (t, p, offset) => {
          try {
            this.consumer?.seek({ topic: t, partition: p, offset: String(offset) });
          } catch (err) {
            // Not running any more: the next owner (or the next run) starts from the committed offset.
            this.logger.warn('fetch-ahead: seek back failed', { topic: t, partition: p, offset, error: errorMessage(err) });
          }
        },
        joins: () => this.joins,
        onFailure: (kind) => {
          if (kind === 'retry') this.retries++;
          else this.rewinds++;
        },
        logger: this.logger,
        retryInitialMs: this.opts.retryInitialMs,
        retryMaxMs: this.opts.retryMaxMs,
      };
      a = new AheadPartition(topic, partition, host, this.committerOf(topic, partition));
      this.aheads.set(key, a);
    }
    return a;
  }

  /**
   * Awaits a chunk's outcome while heartbeating every heartbeat interval: a chunk slower than the
   * session timeout (a slow adapter such as emerg on 5,000 events, every partition in flight on a
   * loaded host) used to get the member evicted, then the chunk redelivered after the rejoin.
   * A heartbeat that fails here is dropped: kafkajs only records a heartbeat that succeeded, so the
   * one after the chunk asks again and throws the rebalance to kafkajs as before.
   */
  private async heartbeating<T>(outcome: Promise<T>, payload: EachBatchPayload): Promise<T> {
    const timer = setInterval(() => {
      payload.heartbeat().catch(() => undefined);
    }, this.opts.heartbeatIntervalMs);
    try {
      return await outcome;
    } finally {
      clearInterval(timer);
    }
  }

  private committerOf(topic: string, partition: number): PartitionCommitter {
    const key = partitionKey({ topic, partition });
    let c = this.committers.get(key);
    if (c === undefined) {
      c = new PartitionCommitter(topic, partition, this.logger);
      this.committers.set(key, c);
    }
    return c;
  }

  /** One handler call whose rejection becomes a value (so an unawaited chunk never rejects unhandled). */
  private call(chunk: MessageBatch): Promise<Outcome> {
    const handler = this.handler;
    if (handler === undefined) return Promise.resolve({ ok: false, err: new ThawError('LIFECYCLE', 'no handler') });
    let run: Promise<void>;
    try {
      run = handler(chunk);
    } catch (err) {
      return Promise.resolve({ ok: false, err });
    }
    return run.then(
      (): Outcome => ({ ok: true }),
      (err: unknown): Outcome => ({ ok: false, err }),
    );
  }

  /**
   * Retries a chunk whose first attempt failed with `err`, with capped exponential backoff. True
   * when the handler succeeded; false when the consumer stops or loses the partition first.
   */
  private async retryAfterFailure(chunk: MessageBatch, payload: EachBatchPayload, err: unknown): Promise<boolean> {
    let delay = this.opts.retryInitialMs;
    for (let attempt = 1; ; attempt++) {
      this.retries++;
      const fields = {
        topic: chunk.topic,
        partition: chunk.partition,
        firstOffset: chunk.messages[0]?.offset,
        attempt,
        backoffMs: delay,
        code: err instanceof ThawError ? err.code : undefined,
        error: errorMessage(err),
      };
      if (ThawError.isRetryable(err)) this.logger.warn('batch handler failed; retrying', fields);
      else this.logger.error('batch handler failed with a non-retryable error; retrying (route poison events to dead letters)', fields);
      if (!payload.isRunning() || payload.isStale() || this.lifecycle !== 'running') return false;
      await this.backoff(delay, payload);
      if (!payload.isRunning() || payload.isStale() || this.lifecycle !== 'running') return false;
      delay = Math.min(delay * 2, this.opts.retryMaxMs);
      const outcome = await this.call(chunk);
      if (outcome.ok) return true;
      err = outcome.err;
    }
  }

  // Sleeps in heartbeat-sized slices so the group does not evict us while we wait.
  private async backoff(ms: number, payload: EachBatchPayload): Promise<void> {
    const until = Date.now() + ms;
    while (this.lifecycle === 'running') {
      const left = until - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.wakers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, this.opts.heartbeatIntervalMs));
        this.wakers.add(wake);
      });
      if (this.lifecycle === 'running') await payload.heartbeat();
    }
  }
}

/** kafkajs' pause/resume argument for these partitions. */
function byTopic(partitions: readonly TopicPartition[]): { topic: string; partitions: number[] }[] {
  const m = new Map<string, number[]>();
  for (const tp of partitions) m.set(tp.topic, [...(m.get(tp.topic) ?? []), tp.partition]);
  return [...m].map(([topic, ps]) => ({ topic, partitions: ps }));
}
