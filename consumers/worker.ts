/**
 * AdaptationWorker: one Kafka consumer group member adapting the entities of one side.
 *
 * Per MessageBatch (one partition): decode + validate every message; valid events go through the
 * BatchProcessor (load states → waves of predict-then-adapt → rows durable → states written); poison
 * messages go to the dead-letter topic with their reason. The handler resolves only when both are
 * done, and only then does the BatchConsumer commit. So:
 *   - an outage of Redis or ClickHouse (a retryable ThawError, or a full disk spool) rejects the handler, the consumer
 *     retries the same batch with backoff and commits nothing: the worker pauses until the service
 *     is back (logged once per outage, not per retry), then continues exactly where it was;
 *   - any other error is a bug or corrupt state: the worker goes FAILED and stops, rather than
 *     spinning on the same batch for ever or skipping it silently;
 *   - backpressure is free: a sink that resolves late delays the next fetch, nothing is buffered
 *     beyond `pipelineDepth` chunks per partition.
 *
 * Pipelining within a partition (`pipelineDepth` > 1): the consumer may hand over chunk N+1 of a
 * partition before chunk N is durable. Each chunk is split into prepare (decode, load states,
 * predict-then-adapt, rows) and persist (rows durable, states written, dead letters sent):
 *   - prepares run one at a time in delivery order; chunk N's new states are kept per partition as
 *     not-yet-durable (`PartitionPipe.pending`), so N+1's prepare reads them instead of the store;
 *   - persists run one at a time in delivery order (the store's CAS on lastOffset needs them so),
 *     and each handler call resolves only when its own persist did: the contract "resolved =
 *     durable" is unchanged, the consumer commits in order as calls resolve;
 *   - any failure of chunk N (prepare or persist) breaks the pipe: every later chunk of the
 *     partition already handed over is discarded (rejects with `DiscardedChunkError`, persisting
 *     nothing) because it may have read N's states. Once nothing of the partition is in flight the
 *     pipe resets (pending states dropped) and the consumer retries from N; re-applying whatever of
 *     N did reach the store is skipped by the CAS on lastOffset.
 *   - a release taken between two chunks of a partition waits for the earlier chunks to be durable
 *     and starts from the store (the new release may address states in another epoch).
 *
 * Rebalances (issue 11, consumers/partition-ownership.ts): on every group join, the partitions whose ownership may have changed are
 * dropped from the store's cache tier (`invalidatePartitions`: another worker may have advanced
 * their entities meanwhile) and their pipes reset; before the first batch of each assigned
 * partition the worker reads the partition's progress stored with the states and starts right after
 * it (consumers/progress.ts): the store, not the group's committed offsets, is the source of truth.
 * Each batch's state write records that progress in the same atomic call; states record their
 * origin (topic, partition), so an entity whose events come from another partition than its state
 * recorded is counted (thaw_state_origin_mismatches_total), logged and re-based, never skipped.
 *
 * Releases: with a started `releaseWatcher`, the worker takes a newly verified release at the start
 * of the next micro-batch handled (never inside one: every row of a batch carries one release id),
 * so consumption never pauses: loading and verifying happen in the watcher, off the hot path. A
 * refused release is the watcher's business (logged there); the worker keeps the one it runs.
 * Entity states follow the release's policy through its state epoch (consumers/release-adapter.ts).
 *
 * Lifecycle: INITIALIZED → start() → RUNNING → drain()/stop() → DRAINING → STOPPED, or FAILED.
 * With `untilEnd` the worker drains itself once the group has committed every partition up to its
 * end offset at start() (consumers/until-end.ts); a topic with nothing to consume stops in start().
 * The worker does not own the store, sink, dead-letter producer or release watcher it is given:
 * whoever built them stops/closes them after `drain()`/`stop()` (worker-main.ts does).
 */
import type { Adapter } from '../adapters/types.js';
import type { PredictionSink } from '../analytics/types.js';
import { ConfigError, errorMessage, PoisonEventError, StoreRegressedError, ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { ADAPTER_RE, checkNamespace } from '../model-store/keys.js';
import type { EntityStore, StateScope } from '../model-store/types.js';
import { BatchConsumer, MAX_PIPELINE_DEPTH } from '../streams/batch-consumer.js';
import type { MessageBatch, RawMessage } from '../streams/message.js';
import { decodeLabelled } from '../streams/serde.js';
import { TopicEndWatch } from '../streams/offsets.js';
import { labelledTopicFor } from '../streams/topics.js';
import { WorkerMetrics } from './metrics.js';
import { deferred, DiscardedChunkError, scopeKeyOf } from './partition-pipe.js';
import { PartitionOwnership } from './partition-ownership.js';
import type { AdaptationWorkerOptions, BatchSource, DeadLetterSink, WorkerRelease, WorkerState, WorkerStats } from './worker-types.js';
import type { BatchItem, BatchResult, PreparedBatch } from './processor.js';
import { ReleaseSwitch } from './release-switch.js';
import { chunkProgress } from './progress.js';
import { DEFAULT_UNTIL_END_POLL_MS, UntilEnd } from './until-end.js';

/**
 * The worker's default `pipelineDepth`. 1: with every partition handled concurrently, depth 2
 * measured no faster (bench/README.md, spine: the worker is CPU-bound and other partitions already
 * fill one partition's I/O waits), and it holds twice the chunks in memory.
 */
export const DEFAULT_WORKER_PIPELINE_DEPTH = 1;

/**
 * The worker's default `fetchAhead` (streams/fetch-ahead.ts): fetch a partition's next records
 * while its previous chunks are being made durable. Off: at pipelineDepth 1 it lowered p99 latency in 5
 * of 6 A/B pairs on the shared 2-core host (at depth 2 it raised it), but its effect on throughput
 * at full load could not be measured there
 * (bench/README.md, spine, "Latency at 50 % load").
 */
export const DEFAULT_WORKER_FETCH_AHEAD = false;

/**
 * Errors the worker waits out (retrying the batch, committing nothing): service outages, and a full
 * disk spool, which is the sink's last line of backpressure when ClickHouse has been away for long.
 */
export function isOutage(err: unknown): boolean {
  return ThawError.isRetryable(err) || (err instanceof ThawError && err.code === 'SPOOL_ERROR');
}

export type { AdaptationWorkerOptions, AdapterReleaseSource, BatchSource, DeadLetterSink, WorkerRelease, WorkerState, WorkerStats } from './worker-types.js';
export { DiscardedChunkError } from './partition-pipe.js';
export { installSignalHandlers } from './signals.js';

export class AdaptationWorker {
  readonly groupId: string;
  readonly topic: string;
  readonly scope: StateScope;
  readonly metrics: WorkerMetrics;
  private readonly source: BatchSource;
  private readonly release: ReleaseSwitch;
  private readonly store: EntityStore;
  /** Micro-batches running on each adapter; an adapter replaced by a release is disposed once none does. */
  private readonly sink: PredictionSink;
  private readonly deadLetters: DeadLetterSink;
  private readonly clock: () => number;
  private readonly logger: Logger;
  private _state: WorkerState = 'INITIALIZED';
  private failure: unknown;
  private stopping: Promise<void> | undefined;
  private readonly totals = { batches: 0, processed: 0, skipped: 0, deadLetters: 0, retries: 0 };
  private outageSinceMs: number | undefined;
  private readonly settle: { resolve: (s: WorkerState) => void; promise: Promise<WorkerState> };
  private readonly draining = deferred();
  private readonly ownership: PartitionOwnership;
  private readonly untilEnd: UntilEnd | undefined;
  /** Chunks of one partition the consumer may hand over before the first is durable. */
  readonly pipelineDepth: number;

  constructor(opts: AdaptationWorkerOptions) {
    if (opts.side !== 'user' && opts.side !== 'item') throw new ConfigError('side', `must be user or item, got ${String(opts.side)}`);
    const active = opts.releaseWatcher?.activeRelease();
    if (opts.releaseWatcher !== undefined && active === undefined) throw new ConfigError('releaseWatcher', 'must be started before the worker is built');
    if (active !== undefined && opts.adapter !== undefined && opts.adapter !== active.value.adapter) {
      throw new ConfigError('adapter', "must be omitted (or be the watcher's active adapter) when a releaseWatcher is given");
    }
    const adapter = active?.value.adapter ?? opts.adapter;
    if (adapter === undefined) throw new ConfigError('adapter', 'is required without a releaseWatcher');
    if (adapter.side !== opts.side) throw new ConfigError('side', `is ${opts.side} but the adapter adapts ${adapter.side}`);
    const namespace = checkNamespace(opts.namespace ?? 'live');
    this.groupId = opts.groupId ?? `thaw-${opts.side}-${adapter.name}-${namespace}`;
    if (this.groupId.length === 0) throw new ConfigError('groupId', 'must not be empty');
    this.topic = opts.topic ?? labelledTopicFor(opts.side);
    if (this.topic.length === 0) throw new ConfigError('topic', 'must not be empty');
    if (opts.maxBatchMessages !== undefined && !(Number.isSafeInteger(opts.maxBatchMessages) && opts.maxBatchMessages > 0)) {
      throw new ConfigError('maxBatchMessages', `must be a positive integer, got ${opts.maxBatchMessages}`);
    }
    const depth = opts.pipelineDepth ?? DEFAULT_WORKER_PIPELINE_DEPTH;
    if (!(Number.isSafeInteger(depth) && depth >= 1 && depth <= MAX_PIPELINE_DEPTH)) {
      throw new ConfigError('pipelineDepth', `must be an integer from 1 to ${MAX_PIPELINE_DEPTH}, got ${depth}`);
    }
    this.pipelineDepth = depth;
    this.logger = (opts.logger ?? silentLogger).child({ component: 'worker', side: opts.side, adapter: adapter.name, namespace });
    this.scope = { namespace, side: opts.side, adapter: adapter.name };
    this.store = opts.store;
    this.sink = opts.sink;
    if (opts.crossAdapter !== undefined && !ADAPTER_RE.test(opts.crossAdapter)) throw new ConfigError('crossAdapter', `must be an adapter name, got ${JSON.stringify(opts.crossAdapter)}`);
    this.release = new ReleaseSwitch({
      releases: opts.releaseWatcher,
      scope: this.scope,
      store: this.store,
      sink: this.sink,
      crossAdapter: adapter.name === 'none' ? undefined : opts.crossAdapter,
      safeguard: opts.safeguard,
      logger: this.logger,
      initial: { adapter, stateEpoch: active?.value.stateEpoch, crossEpoch: active?.value.crossEpoch, version: active?.version, createdAtMs: active?.createdAtMs ?? opts.releaseCreatedMs },
      onTaken: (release, createdAtMs) => this.metrics.setRelease(release, createdAtMs),
    });
    this.deadLetters = opts.deadLetters;
    this.clock = opts.clock ?? Date.now;
    this.metrics =
      opts.metrics ??
      new WorkerMetrics({
        side: opts.side,
        adapter: adapter.name,
        namespace,
        clock: this.clock,
        logger: this.logger,
        ...(opts.metricsPort === undefined ? {} : { port: opts.metricsPort }),
        ...(opts.metricsHost === undefined ? {} : { host: opts.metricsHost }),
        ...opts.metricsOptions,
      });
    this.ownership = new PartitionOwnership({ store: this.store, metrics: this.metrics, logger: this.logger, stateScope: () => this.release.processor.stateScope });
    this.source =
      opts.source ??
      new BatchConsumer({
        ...opts.consumer,
        kafka: opts.kafka,
        groupId: this.groupId,
        topics: [this.topic],
        fromBeginning: opts.fromBeginning ?? true,
        ...(opts.maxBatchMessages === undefined ? {} : { maxBatchMessages: opts.maxBatchMessages }),
        pipelineDepth: depth,
        fetchAhead: opts.fetchAhead ?? DEFAULT_WORKER_FETCH_AHEAD,
        logger: this.logger,
      });
    if (opts.untilEnd === true) {
      const pollMs = opts.untilEndPollMs ?? DEFAULT_UNTIL_END_POLL_MS;
      if (!(Number.isSafeInteger(pollMs) && pollMs >= 1)) throw new ConfigError('untilEndPollMs', `must be a positive integer, got ${pollMs}`);
      this.untilEnd = new UntilEnd({
        probe: opts.endProbe ?? new TopicEndWatch(opts.kafka, this.groupId, this.topic, { fromBeginning: opts.fromBeginning ?? true, logger: this.logger }),
        pollMs,
        logger: this.logger,
        onEnd: () => void this.drain(),
      });
    }
    let resolve!: (s: WorkerState) => void;
    const promise = new Promise<WorkerState>((r) => (resolve = r));
    this.settle = { resolve, promise };
  }

  get state(): WorkerState {
    return this._state;
  }

  /** The error that made the worker FAILED, if any. */
  get error(): unknown {
    return this.failure;
  }

  stats(): WorkerStats {
    const created = this.release.createdAtMs;
    const release: WorkerRelease = {
      id: this.release.processor.adapter.release,
      version: this.release.version,
      createdAtMs: created,
      ageMs: created === undefined ? undefined : this.clock() - created,
      switches: this.release.switches,
    };
    return { state: this._state, ...this.totals, outageSinceMs: this.outageSinceMs, release };
  }

  /** The adapter running now (changes when a release is taken). */
  get adapter(): Adapter {
    return this.release.processor.adapter;
  }

  /** Messages not yet consumed by this group (sum over the partitions). */
  lag(): Promise<number> {
    return this.source.lag();
  }

  /**
   * Resolves when the worker starts to stop (a drain, the end of the topic with untilEnd, a failure):
   * the moment a caller's drain deadline starts.
   */
  whenDraining(): Promise<void> {
    return this.draining.promise;
  }

  /** Resolves with the final state (STOPPED or FAILED) once the worker has stopped. */
  whenStopped(): Promise<WorkerState> {
    return this.settle.promise;
  }

  /** Joins the group and starts consuming; resolves once running. */
  async start(): Promise<void> {
    if (this._state !== 'INITIALIZED') throw new ThawError('LIFECYCLE', `cannot start a worker that is ${this._state}`);
    this._state = 'RUNNING';
    this.metrics.setRelease(this.release.processor.adapter.release, this.release.createdAtMs);
    try {
      await this.metrics.listen(() => this._state === 'RUNNING' && this.outageSinceMs === undefined);
      // The end is snapshotted before joining the group: records produced from now on are not waited for.
      if (this.untilEnd !== undefined && (await this.untilEnd.atEndOnStart())) {
        this.logger.info('until-end: nothing to consume (the topic is empty or the group is at its end); stopping', { topic: this.topic, groupId: this.groupId });
        await this.shutdown(true);
        return;
      }
      await this.source.start((batch) => this.handle(batch), {
        onAssignment: (change) => this.ownership.onAssignment(change),
        startOffset: (tp, position) => this.ownership.startOffset(tp, position),
      });
      this.source.onFailed?.((err) => {
        // kafkajs gave up restarting the consumer: nothing will be consumed any more.
        this.fail(new ThawError('KAFKA_ERROR', `consumer of group ${this.groupId} stopped for good: ${errorMessage(err)}`, { cause: err }));
        void this.shutdown(false);
      });
    } catch (err) {
      this.fail(err);
      await this.shutdown(false);
      throw err;
    }
    this.metrics.pollLag(() => this.source.lag());
    if (this.untilEnd !== undefined) void this.untilEnd.watch();
    this.logger.info('worker running', { topic: this.topic, groupId: this.groupId, release: this.release.processor.adapter.release, untilEnd: this.untilEnd !== undefined });
  }

  /** Graceful stop: stop fetching, finish the in-flight batch (and commit it), flush the sink, close. */
  drain(): Promise<void> {
    return this.shutdown(true);
  }

  /** Stop without flushing the sink (rows stay durable in its spool for the next run). */
  stop(): Promise<void> {
    return this.shutdown(false);
  }

  private shutdown(flush: boolean): Promise<void> {
    if (this.stopping !== undefined) return this.stopping;
    if (this._state === 'RUNNING' || this._state === 'INITIALIZED') this._state = 'DRAINING';
    this.draining.resolve();
    this.untilEnd?.stop();
    this.stopping = (async () => {
      try {
        await this.source.stop();
      } catch (err) {
        this.logger.warn('consumer stop failed', { error: errorMessage(err) });
      }
      if (flush) {
        try {
          await this.sink.flush();
        } catch (err) {
          // Rows that could not be flushed stay in the sink's disk spool: durable, sent next run.
          this.logger.warn('sink flush failed on drain; rows stay spooled', { error: errorMessage(err) });
        }
      }
      await this.metrics.close();
      if (this._state !== 'FAILED') this._state = 'STOPPED';
      this.logger.info('worker stopped', { state: this._state, ...this.totals });
      this.settle.resolve(this._state);
    })();
    return this.stopping;
  }

  private fail(err: unknown): void {
    if (this._state === 'FAILED') return;
    this.failure = err;
    this._state = 'FAILED';
    this.logger.error('worker failed', { error: err, code: err instanceof ThawError ? err.code : undefined });
  }

  /**
   * The BatchConsumer's handler: resolving means the batch is durable and may be committed. Calls
   * for one partition may overlap (pipelineDepth > 1); they are handled in call order.
   */
  private async handle(batch: MessageBatch): Promise<void> {
    if (this._state === 'FAILED') throw new ThawError('LIFECYCLE', 'worker failed; not processing');
    const pipe = this.ownership.pipeOf(batch.topic, batch.partition);
    const firstOffset = batch.messages[0]?.offset ?? -1;
    if (pipe.broken && firstOffset <= pipe.failedFrom) {
      // The failed chunk (or an earlier one) handed over again: the consumer's retry, or a
      // redelivery from the committed offset. Restart the pipe; calls still in flight from before
      // belong to the old generation and are discarded.
      pipe.gen++;
      pipe.broken = false;
      pipe.pending.clear();
      pipe.pendingSafeguard = undefined;
    }
    const gen = pipe.gen;
    const stale = (): boolean => pipe.broken || pipe.gen !== gen;
    const prevPrepared = pipe.prepared;
    const prevDurable = pipe.durable;
    const prepared = deferred();
    const durable = deferred();
    pipe.prepared = prepared.promise;
    pipe.durable = durable.promise;
    const discarded = (): DiscardedChunkError => new DiscardedChunkError(batch.partition, firstOffset);
    let poison: { msg: RawMessage; err: unknown }[] = [];
    let result: BatchResult;
    let used: Adapter | undefined;
    try {
      await prevPrepared;
      if (stale()) throw discarded();
      const processor = this.release.acquire();
      used = processor.adapter;
      if (pipe.processor !== processor) {
        // A new release: the pending states belong to the old one (maybe another state epoch).
        await prevDurable;
        if (stale()) throw discarded();
        pipe.pending.clear();
        pipe.pendingSafeguard = undefined;
        pipe.processor = processor;
      }
      const decoded = this.decode(batch);
      poison = decoded.poison;
      const prep: PreparedBatch = await processor.prepare(decoded.items, pipe.pending, {
        partition: batch.partition,
        topic: batch.topic,
        ...(pipe.pendingSafeguard === undefined ? {} : { pendingSafeguard: pipe.pendingSafeguard }),
      });
      if (stale()) throw discarded();
      for (const c of prep.changed) pipe.pending.set(c.entityId, c.state);
      if (prep.safeguard !== undefined) pipe.pendingSafeguard = prep.safeguard.state;
      prepared.resolve();
      await prevDurable;
      if (stale()) throw discarded();
      const upTo = chunkProgress(
        batch.messages.map((m) => m.offset),
        poison.map((p) => p.msg.offset),
      );
      const scopeKey = scopeKeyOf(processor.stateScope);
      const expectAtLeast = pipe.writtenScope === scopeKey ? pipe.written : undefined;
      result = await processor.persist(
        prep,
        upTo === undefined ? undefined : { topic: batch.topic, partition: batch.partition, offset: upTo, ...(expectAtLeast === undefined ? {} : { expectAtLeast }) },
      );
      if (upTo !== undefined && pipe.gen === gen) {
        pipe.written = Math.max(expectAtLeast ?? upTo, upTo);
        pipe.writtenScope = scopeKey;
      }
      // Valid events first, dead letters second: a state outage retried many times then does not
      // re-send the poison messages on every retry.
      await this.deadLetters.sendMany(poison, { consumerGroup: this.groupId, namespace: this.scope.namespace, adapter: this.scope.adapter });
      // Durable now; a later chunk's newer state of the same entity stays pending.
      if (pipe.gen === gen) {
        for (const c of prep.changed) if (pipe.pending.get(c.entityId) === c.state) pipe.pending.delete(c.entityId);
        if (prep.safeguard !== undefined && pipe.pendingSafeguard === prep.safeguard.state) pipe.pendingSafeguard = undefined;
      }
    } catch (err) {
      if (err instanceof DiscardedChunkError) throw err;
      // Later chunks of this generation may have read this chunk's states: they are discarded.
      if (pipe.gen === gen && (!pipe.broken || firstOffset < pipe.failedFrom)) {
        pipe.broken = true;
        pipe.failedFrom = firstOffset;
      }
      if (err instanceof StoreRegressedError) throw this.ownership.rewind(pipe, err);
      if (isOutage(err)) {
        this.totals.retries++;
        if (this.outageSinceMs === undefined) {
          this.outageSinceMs = this.clock();
          this.logger.warn('dependency outage: pausing, the batch will be retried', {
            code: (err as ThawError).code,
            error: err,
            partition: batch.partition,
          });
        }
        throw err; // not committed; the consumer retries with backoff
      }
      this.fail(err);
      // Stop from outside the handler: the consumer's stop waits for this handler to settle.
      setImmediate(() => void this.shutdown(false));
      throw err;
    } finally {
      prepared.resolve();
      durable.resolve();
      if (used !== undefined) this.release.done(used);
    }

    if (this.outageSinceMs !== undefined) {
      this.logger.info('dependency back: resumed', { pausedMs: this.clock() - this.outageSinceMs, retries: this.totals.retries });
      this.outageSinceMs = undefined;
    }
    this.totals.batches++;
    this.totals.processed += result.processed;
    this.totals.skipped += result.skipped;
    this.totals.deadLetters += poison.length;
    this.metrics.recordBatch(result);
    for (const p of poison) {
      const reason = p.err instanceof ThawError ? p.err.code : 'DECODE_FAILED';
      this.metrics.recordDeadLetter(reason);
      this.logger.debug('dead letter', { reason, error: p.err, partition: batch.partition, offset: p.msg.offset });
    }
  }

  /** Decodes and validates every message; invalid ones are returned as poison with their error. */
  private decode(batch: MessageBatch): { items: BatchItem[]; poison: { msg: RawMessage; err: unknown }[] } {
    const nowMs = this.clock();
    const items: BatchItem[] = [];
    const poison: { msg: RawMessage; err: unknown }[] = [];
    for (const msg of batch.messages) {
      try {
        if (msg.value === null) throw new PoisonEventError('DECODE_FAILED', 'message has no value (tombstone)');
        const event = decodeLabelled(msg.value, nowMs); // validates too (ids, label, time not > 1 day ahead)
        items.push({ offset: msg.offset, event });
      } catch (err) {
        poison.push({ msg, err });
      }
    }
    return { items, poison };
  }
}
