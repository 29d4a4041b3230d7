/**
 * Outside-in instrumentation of the worker: the AdaptationWorker has no timing hooks, so the bench
 * hands it decorated collaborators instead. None changes behaviour; each only records times.
 *   - TimedStore   around the worker's store (the cache tier): time in its reads and writes, and after
 *                  each write resolves, per-entity samples (now − state.lastEventMs per written state;
 *                  the release-switch bench reads these). It forwards the multi-scope calls, the
 *                  progress and the cache invalidation, so the worker takes exactly `thaw run`'s path
 *                  (one read and one atomic write per batch; without them it would fall back to a
 *                  separate write per scope and keep no progress).
 *   - TimedSink    around the PredictionSink: time in write.
 *   - TimedSource  around the BatchConsumer the worker would build itself: handler time per batch,
 *                  first batch start, events handled (its `source` option exists for this), and
 *                  the spine bench's latency: for EVERY message of a batch, its Kafka record
 *                  timestamp (the producer's send time) to the moment its batch's handler resolved
 *                  (rows durable, states written: what the consumer commits on). With pipelining,
 *                  calls of one partition overlap: handler times then sum to more than the wall time.
 *                  Each handler call runs with a ChunkTrace (trace.ts) that TimedStore and TimedSink
 *                  fill in, so the same latency is also split into phases per event.
 */
import type { PredictionRow, PredictionSink } from '../../analytics/types.js';
import type { BatchSource } from '../../consumers/worker.js';
import type { EntityState, EntityStore, PartitionRef, ProgressWrite, ScopedRead, ScopedWrite, StateScope } from '../../model-store/types.js';
import type { MessageBatch } from '../../streams/message.js';
import { ChunkTrace, currentTrace, emptySamples, recordPhases, withTrace, type PhaseSamples } from './trace.js';

/** A store with every optional call the worker uses (CachedEntityStore). */
export type FullEntityStore = EntityStore & Required<Pick<EntityStore, 'getManyScoped' | 'putManyScoped' | 'getProgress' | 'invalidatePartitions'>>;

export class TimedStore implements FullEntityStore {
  getMs = 0;
  putMs = 0;
  gets = 0;
  puts = 0;
  /** Event-to-state latency samples, ms; recorded only when `recordLatencyAfterMs` is set. */
  readonly latencyMs: number[] = [];
  /** When each sample of `latencyMs` was taken (the state durable), unix ms. */
  readonly latencyAtMs: number[] = [];
  /** Only states whose lastEventMs is at or after this (unix ms) are sampled. */
  recordLatencyAfterMs = Number.POSITIVE_INFINITY;

  constructor(private readonly inner: FullEntityStore) {}

  async getManyScoped(reads: readonly ScopedRead[]): Promise<(EntityState | undefined)[][]> {
    const t0 = performance.now();
    try {
      return await this.inner.getManyScoped(reads);
    } finally {
      this.read(t0);
    }
  }

  async putManyScoped(writes: readonly ScopedWrite[], progress?: ProgressWrite): Promise<{ written: number; skipped: number }[]> {
    const t0 = performance.now();
    const startMs = Date.now();
    const res = await this.inner.putManyScoped(writes, progress);
    this.written(t0, startMs);
    for (const w of writes) this.sample(w.entries);
    return res;
  }

  getProgress(scope: StateScope, topic: string, partition: number): Promise<number | undefined> {
    return this.inner.getProgress(scope, topic, partition);
  }

  invalidatePartitions(partitions: readonly PartitionRef[]): void {
    this.inner.invalidatePartitions(partitions);
  }

  async getMany(scope: StateScope, ids: readonly string[]): Promise<(EntityState | undefined)[]> {
    const t0 = performance.now();
    try {
      return await this.inner.getMany(scope, ids);
    } finally {
      this.read(t0);
    }
  }

  private read(t0: number): void {
    const ms = performance.now() - t0;
    this.getMs += ms;
    this.gets++;
    const trace = currentTrace();
    if (trace !== undefined) trace.readMs += ms;
  }

  private written(t0: number, startMs: number): void {
    this.putMs += performance.now() - t0;
    this.puts++;
    const trace = currentTrace();
    if (trace !== undefined) {
      trace.putStart = startMs;
      trace.putEnd = Date.now();
    }
  }

  async putMany(scope: StateScope, entries: readonly { entityId: string; state: EntityState }[]): Promise<{ written: number; skipped: number }> {
    const t0 = performance.now();
    const startMs = Date.now();
    const res = await this.inner.putMany(scope, entries);
    this.written(t0, startMs);
    this.sample(entries);
    return res;
  }

  // The sample: the last event of each entity in the batch, from its event time to its state being durable.
  private sample(entries: readonly { state: EntityState }[]): void {
    const now = Date.now();
    for (const e of entries) {
      if (e.state.lastEventMs < this.recordLatencyAfterMs) continue;
      this.latencyMs.push(now - e.state.lastEventMs);
      this.latencyAtMs.push(now);
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export class TimedSink implements PredictionSink {
  writeMs = 0;
  rows = 0;

  constructor(private readonly inner: PredictionSink) {}

  async write(rows: readonly PredictionRow[]): Promise<void> {
    const t0 = performance.now();
    const trace = currentTrace();
    if (trace !== undefined) trace.sinkStart = Date.now();
    await this.inner.write(rows);
    if (trace !== undefined) trace.sinkEnd = Date.now();
    this.writeMs += performance.now() - t0;
    this.rows += rows.length;
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export class TimedSource implements BatchSource {
  handlerMs = 0;
  batches = 0;
  events = 0;
  /** performance.now() when the first batch reached the handler; NaN before. */
  firstBatchAt = Number.NaN;
  /** performance.now() when the last handled batch resolved. */
  lastBatchDoneAt = Number.NaN;
  /** The same moment as unix ms (to compare with another process's clock readings). */
  lastBatchDoneMs = Number.NaN;
  /** Events handled when the last handled batch resolved (handlers of several partitions overlap). */
  eventsAtLastBatch = 0;
  /**
   * Per-message latency, ms: Kafka record timestamp to the handler of its batch resolving (durable).
   * Recorded only for messages stamped at or after `recordEventLatencyAfterMs` (unix ms).
   */
  eventLatencyMs: number[] = [];
  recordEventLatencyAfterMs = Number.POSITIVE_INFINITY;
  /** The same events' latency split into phases (trace.ts), recorded under the same condition. */
  phases: PhaseSamples = emptySamples();
  private waiters: { n: number; resolve: () => void }[] = [];

  constructor(private readonly inner: BatchSource) {}

  start(handler: (batch: MessageBatch) => Promise<void>): Promise<void> {
    return this.inner.start(async (batch) => {
      const t0 = performance.now();
      if (Number.isNaN(this.firstBatchAt)) this.firstBatchAt = t0;
      const trace = new ChunkTrace(Date.now());
      await withTrace(trace, () => handler(batch));
      const t1 = performance.now();
      this.handlerMs += t1 - t0;
      this.lastBatchDoneAt = t1;
      const now = Date.now();
      this.lastBatchDoneMs = now;
      if (now >= this.recordEventLatencyAfterMs) {
        for (const m of batch.messages) if (m.timestampMs >= this.recordEventLatencyAfterMs) this.eventLatencyMs.push(now - m.timestampMs);
        recordPhases(batch, trace, now, this.recordEventLatencyAfterMs, this.phases);
      }
      this.batches++;
      this.events += batch.messages.length;
      this.eventsAtLastBatch = this.events;
      this.waiters = this.waiters.filter((w) => (this.events >= w.n ? (w.resolve(), false) : true));
    });
  }

  /** Resolves once `n` messages have been handled (rejects after `timeoutMs`). */
  handled(n: number, timeoutMs: number): Promise<void> {
    if (this.events >= n) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms with ${this.events}/${n} events handled`)), timeoutMs);
      this.waiters.push({
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }

  lag(): Promise<number> {
    return this.inner.lag();
  }
}
