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
 * - Pipelining within a partition (`pipelineDepth`, default 1 = off; streams/in-order-batch.ts): up
 *   to that many consecutive chunks of one partition are handed to the handler before the first
 *   resolved; commits stay strictly in order.
 * - Commits off the chunk path: a chunk's commit (offset+1, asked only after its handler resolved)
 *   is sent in the background while the partition's next chunk (or next fetch) is handled; one
 *   commit per partition is in flight at a time and later asks are merged into the next, so commits
 *   go out in order and never pass a record that is not durable. A failed commit is thrown from the
 *   partition's next chunk (kafkajs then rejoins or refetches from the committed offset); a group
 *   join drops the asks not yet sent; stop() lets every asked commit go out before leaving the group.
 *   Awaiting a commit's round trip before the next chunk left each partition idle for a large share
 *   of the time (measured by bench/spine/consumer-overhead.ts).
 * - Fetch-ahead (`fetchAhead`, default off; streams/fetch-ahead.ts): `eachBatch` returns once its
 *   chunks are handed over, so kafkajs fetches the next records while they are made durable; at most
 *   `pipelineDepth` chunks of a partition are in flight, across batches. Commits as above. Since
 *   kafkajs may now rejoin with chunks in flight, a group join then pauses the new assignment until
 *   they settled and only then tells the listener (which is promised no chunk in flight).
 */
import type { Consumer, EachBatchPayload } from 'kafkajs';
import { ThawError, errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { groupLag, groupPositions, retryRetriable, withAdmin } from './admin.js';
import { assignmentChange, partitionKey, partitionsOf, type GroupAssignment, type PartitionListener, type TopicPartition } from './assignment.js';
import { createKafka, kafkaError } from './kafka.js';
import { MAX_PARTITIONS_CONCURRENCY, resolveBatchConsumerOptions, type BatchConsumerOptions, type ResolvedBatchConsumerOptions } from './batch-consumer-options.js';
import type { MessageBatch } from './message.js';
import { handInOrderBatch } from './in-order-batch.js';
import { WakeableSleeps } from './wakeable-sleeps.js';
import { PartitionCommitter } from './partition-committer.js';
import { AheadPartition, handAheadBatch, type AheadHost, type Outcome } from './fetch-ahead.js';

export type { MessageBatch, RawMessage } from './message.js';
export type { AssignmentChange, PartitionListener, TopicPartition } from './assignment.js';
export { RewindPartition } from './assignment.js';

export type BatchHandler = (batch: MessageBatch) => Promise<void>;

export {
  DEFAULT_MAX_BATCH_MESSAGES,
  MAX_PARTITIONS_CONCURRENCY,
  MAX_PIPELINE_DEPTH,
  resolveBatchConsumerOptions,
  type BatchConsumerOptions,
  type ResolvedBatchConsumerOptions,
} from './batch-consumer-options.js';

export type BatchConsumerState = 'idle' | 'running' | 'stopping' | 'stopped' | 'failed';

export class BatchConsumer {
  private readonly opts: ResolvedBatchConsumerOptions;
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
  private readonly sleeps = new WakeableSleeps();
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
    const options = this.opts;
    const consumer = createKafka(options.kafka, this.logger).consumer({
      groupId: options.groupId,
      sessionTimeout: options.sessionTimeoutMs,
      heartbeatInterval: options.heartbeatIntervalMs,
      maxWaitTimeInMs: options.maxWaitTimeMs,
      maxBytesPerPartition: options.maxBytesPerPartition,
      allowAutoTopicCreation: false,
      // Short, frequent retries: after a broker loss the coordinator is found again by a restart, so
      // waiting long between attempts only lengthens the stall (clientRetryMaxMs).
      retry: { initialRetryTime: 100, maxRetryTime: options.clientRetryMaxMs, retries: 5 },
      // Explicit: records of open or aborted transactions (thaw rekey / join output) are never read.
      readUncommitted: false,
    });
    this.consumer = consumer;
    // A fetch that held only commit markers (or aborted records) never reaches eachBatch; commit
    // past them so the group's lag reaches 0 at the end of a transactional topic.
    consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
      if (event.payload.batchSize !== 0 || this.lifecycle !== 'running') return;
      const next = Number(event.payload.lastOffset) + 1;
      // Through the partition's committer when it has one, so that this commit is ordered with the
      // background commits of the chunks before it (a commit landing late would move the group back).
      const key = partitionKey({ topic: event.payload.topic, partition: event.payload.partition });
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
      consumer.commitOffsets([{ topic: event.payload.topic, partition: event.payload.partition, offset }]).catch((err: unknown) => {
        this.logger.warn('commit past commit markers failed (retried with the next batch)', { topic: event.payload.topic, partition: event.payload.partition, error: errorMessage(err) });
      });
    });
    consumer.on(consumer.events.FETCH_START, () => {
      this.fetchRequestedAtMs = Date.now();
    });
    consumer.on(consumer.events.CRASH, (event) => {
      this.logger.error('consumer crashed', { error: event.payload.error, restart: event.payload.restart });
      if (!event.payload.restart && this.lifecycle === 'running') {
        // kafkajs does not restart it: the consumer is gone for good, tell the owner.
        this.lifecycle = 'failed';
        const err = kafkaError(options.kafka, `consumer ${options.groupId} crashed and is not restarted`, event.payload.error);
        for (const listener of this.failedListeners.splice(0)) listener(err);
      }
    });
    // Which partitions this member got, after every (re)join: the first thing to read after a crash
    // or a rebalance.
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      this.logger.info('partitions assigned', {
        memberId: event.payload.memberId,
        leader: event.payload.isLeader,
        assignment: event.payload.memberAssignment,
        joinMs: event.payload.duration,
      });
    });
    // Emitted by kafkajs at the end of each join + sync, before the new assignment is fetched.
    consumer.on(consumer.events.GROUP_JOIN, (event) => this.onGroupJoin(event.payload.memberId, event.payload.memberAssignment));
    try {
      this.concurrency = options.partitionsConsumedConcurrently ?? (await this.partitionCount());
      await consumer.connect();
      await consumer.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.concurrency,
        eachBatch: (payload) => this.eachBatch(payload),
      });
    } catch (err) {
      this.lifecycle = 'failed';
      await consumer.disconnect().catch(() => undefined);
      throw kafkaError(options.kafka, `consumer ${options.groupId} failed to start`, err);
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
    this.sleeps.wakeAll();
    // Commits of chunks already handled go out before the group is left (a running eachBatch settles
    // its own before returning, which disconnect awaits).
    await Promise.all([...this.aheads.values()].map((ahead) => ahead.settled()));
    await Promise.all([...this.committers.values()].map((committer) => committer.settled()));
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
    const n = meta.topics.reduce((sum, topic) => sum + topic.partitions.length, 0);
    return Math.min(MAX_PARTITIONS_CONCURRENCY, Math.max(1, n));
  }

  private onGroupJoin(memberId: string, memberAssignment: Readonly<Record<string, readonly number[]>>): void {
    const next: GroupAssignment = { memberId, partitions: partitionsOf(memberAssignment) };
    const change = assignmentChange(this.membership, next);
    this.membership = next;
    const join = ++this.joins;
    // Asks not yet sent belong to the old generation: dropped (a commit already in flight was sent
    // under it). Partitions kept are committed again by their next chunk.
    for (const committer of this.committers.values()) committer.forget();
    const names = (ps: readonly TopicPartition[]): string[] => ps.map(partitionKey);
    this.logger.info('partitions assigned', { memberId, assigned: names(change.assigned), revoked: names(change.revoked), moved: names(change.moved) });
    const aheads = [...this.aheads.values()];
    if (aheads.some((ahead) => ahead.size > 0)) {
      // Fetch-ahead: chunks handed over under the old generation may still be in flight, and the
      // listener is promised that no batch is when it hears of a join. Nothing of the new assignment
      // is fetched until they settled (they are not committed: join changed).
      this.consumer?.pause(byTopic(next.partitions));
      void Promise.all(aheads.map((ahead) => ahead.settled())).then(() => {
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
        await this.sleeps.sleep(delay);
        delay = Math.min(delay * 2, this.opts.retryMaxMs);
      }
    }
    if (current() && !this.paused) consumer.resume(byTopic(partitions));
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    if (this.opts.fetchAhead) return this.eachBatchAhead(payload);
    const { batch } = payload;
    const running = (): boolean => payload.isRunning() && !payload.isStale() && this.lifecycle === 'running';
    await handInOrderBatch(payload, {
      commits: this.committerOf(batch.topic, batch.partition),
      maxBatchMessages: this.opts.maxBatchMessages,
      pipelineDepth: this.opts.pipelineDepth,
      offsetCommit: this.opts.offsetCommit,
      retryInitialMs: this.opts.retryInitialMs,
      retryMaxMs: this.opts.retryMaxMs,
      fetch: { requestedAtMs: this.fetchRequestedAtMs, receivedAtMs: Date.now() },
      logger: this.logger,
      call: (chunk) => this.call(chunk),
      rewind: (offset) => {
        this.rewinds++;
        this.consumer?.seek({ topic: batch.topic, partition: batch.partition, offset: String(offset) });
      },
      onRetry: () => {
        this.retries++;
      },
      mayStart: () => running() && !this.paused,
      mayRetry: running,
      stopping: () => this.lifecycle !== 'running',
      heartbeating: (outcome) => this.heartbeating(outcome, payload),
      backoff: (ms) => this.backoff(ms, payload),
    });
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
      heartbeating: (outcome) => this.heartbeating(outcome, payload),
      backoff: (ms) => this.backoff(ms, payload),
    });
  }

  private aheadOf(topic: string, partition: number): AheadPartition {
    const key = partitionKey({ topic, partition });
    let ahead = this.aheads.get(key);
    if (ahead === undefined) {
      const host: AheadHost = {
        call: (chunk) => this.call(chunk),
        seek: (seekTopic, seekPartition, offset) => {
          try {
            this.consumer?.seek({ topic: seekTopic, partition: seekPartition, offset: String(offset) });
          } catch (err) {
            // Not running any more: the next owner (or the next run) starts from the committed offset.
            this.logger.warn('fetch-ahead: seek back failed', { topic: seekTopic, partition: seekPartition, offset, error: errorMessage(err) });
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
      ahead = new AheadPartition(topic, partition, host, this.committerOf(topic, partition));
      this.aheads.set(key, ahead);
    }
    return ahead;
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
    let committer = this.committers.get(key);
    if (committer === undefined) {
      committer = new PartitionCommitter(topic, partition, this.logger);
      this.committers.set(key, committer);
    }
    return committer;
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

  // Sleeps in heartbeat-sized slices so the group does not evict us while we wait.
  private async backoff(ms: number, payload: EachBatchPayload): Promise<void> {
    const until = Date.now() + ms;
    while (this.lifecycle === 'running') {
      const left = until - Date.now();
      if (left <= 0) return;
      await this.sleeps.sleep(Math.min(left, this.opts.heartbeatIntervalMs));
      if (this.lifecycle === 'running') await payload.heartbeat();
    }
  }
}

/** kafkajs' pause/resume argument for these partitions. */
function byTopic(partitions: readonly TopicPartition[]): { topic: string; partitions: number[] }[] {
  const partitionsByTopic = new Map<string, number[]>();
  for (const tp of partitions) partitionsByTopic.set(tp.topic, [...(partitionsByTopic.get(tp.topic) ?? []), tp.partition]);
  return [...partitionsByTopic].map(([topic, numbers]) => ({ topic, partitions: numbers }));
}
