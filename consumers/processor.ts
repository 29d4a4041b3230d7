/**
 * BatchProcessor: the transport-free core of an adaptation worker. The Kafka worker and the
 * zero-setup demo both feed it micro-batches of (offset, event) pairs of ONE partition (or one
 * ordered source) and it does, per call:
 *
 *   1. load    ONE store round trip for the distinct entities of the batch (missing → initial
 *              state), the other side's entities of its events (the cross-side read) and the
 *              partition's safeguard state
 *   2. compute split the new events into waves (k-th event of each entity → wave k) and call
 *              `adapter.predictThenAdapt` once per wave: per-entity event order is kept while each
 *              wave is one batched computation (or, if the adapter has it, one
 *              `predictThenAdaptSequence` call for the whole batch in offset order); then, in offset
 *              order, the safeguard mixes each adapted score with the adapter's baseline
 *   3. sink    `await sink.write(rows)`: the prequential rows are durable (ClickHouse or disk spool)
 *   4. store   ONE atomic write of the changed states (each carrying its new lastOffset and the
 *              view it had before this batch), the safeguard state and the partition's progress
 *
 * Cross-side read (`cross`): each event is scored with the other side's entity as that side's worker
 * wrote it, never with a state that includes the event or a later one (consumers/cross-side.ts).
 * The other side's states are read, never written.
 *
 * Why this order makes crash-restart exact: the Kafka offset is committed only after `process`
 * resolves, and states are written only after the rows are durable.
 *   - Crash before step 3 completes: nothing is durable; the batch is redelivered and recomputed
 *     from the same stored states, giving the same scores and states.
 *   - Crash after step 3, before step 4: rows are durable but states are not. Redelivery recomputes
 *     from the old states, so it produces the SAME scores and writes them again; the prediction log
 *     de-duplicates by event id, and the states are written this time.
 *   - Crash after step 4, before the commit: states already record lastOffset, so every redelivered
 *     event is skipped (counted as `skipped`), nothing is scored or applied twice.
 * Writing states before rows would be wrong: a crash in between would lose the rows for ever (the
 * redelivered events are skipped as already applied).
 *
 * With `persist(prepared, progress)` (the Kafka worker) step 4 also raises the partition's progress
 * in the same atomic write, which is where the worker starts the partition on its next assignment
 * (consumers/progress.ts); with `PrepareContext.topic` written states record their origin, and a
 * loaded state of another origin is re-based on this partition, counted and logged
 * (model-store/origin.ts).
 *
 * `process` = `persist(await prepare(items))`. The Kafka worker calls the two halves itself to
 * pipeline a partition (consumers/worker.ts): `prepare` (steps 1-2) of chunk N+1 runs while
 * `persist` (steps 3-4) of chunk N is in flight, reading N's new states through `pending` since
 * they are not in the store yet. Persists stay serial and in order per partition.
 */
import { performance } from 'node:perf_hooks';
import type { Adapter } from '../adapters/types.js';
import type { PredictionRow, PredictionSink } from '../analytics/types.js';
import { ConfigError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { getScoped, putScoped } from '../model-store/scoped.js';
import { originOf, otherOrigin } from '../model-store/origin.js';
import type { EntityState, EntityStore, ProgressWrite, ScopedRead, StateOrigin, StateScope } from '../model-store/types.js';
import { entityIdOf, type LabelledEvent, type Side } from '../schemas/types.js';
import { eventKey, recordView, RECENT_VIEW_DEFAULTS, viewAt, type RecentViewOptions } from './cross-side.js';
import { cloneRecent } from '../model-store/state-codec.js';
import { Safeguard } from './safeguard.js';
import type { BatchItem, BatchProcessorOptions, BatchResult, PendingStates, PrepareContext, PreparedBatch } from './processor-types.js';
import { safeguardSegment } from './state-scopes.js';

export type { BatchItem, BatchProcessorOptions, BatchResult, PendingStates, PhaseTimings, PrepareContext, PreparedBatch } from './processor-types.js';

export class BatchProcessor {
  readonly adapter: Adapter;
  readonly scope: StateScope;
  /** Where this processor's states (and its partitions' progress) live. */
  readonly stateScope: StateScope;
  private readonly crossScope: StateScope | undefined;
  private readonly safeguardScope: StateScope | undefined;
  private readonly safeguard: Safeguard | undefined;
  private readonly otherSide: Side;
  private readonly recentViews: Required<RecentViewOptions>;
  private readonly store: EntityStore;
  private readonly sink: PredictionSink;
  private readonly logger: Logger;

  constructor(opts: BatchProcessorOptions) {
    if (opts.scope.side !== opts.adapter.side) {
      throw new ConfigError('scope.side', `is ${opts.scope.side} but adapter ${opts.adapter.name} adapts side ${opts.adapter.side}`);
    }
    if (opts.scope.adapter !== opts.adapter.name) {
      throw new ConfigError('scope.adapter', `is ${opts.scope.adapter} but the adapter is named ${opts.adapter.name}`);
    }
    if (opts.scope.namespace === '') throw new ConfigError('scope.namespace', 'must not be empty');
    const stateScope = opts.stateScope ?? opts.scope;
    if (stateScope.namespace !== opts.scope.namespace || stateScope.side !== opts.scope.side) {
      throw new ConfigError('stateScope', `must have the namespace and side of scope (${opts.scope.namespace}/${opts.scope.side}), got ${stateScope.namespace}/${stateScope.side}`);
    }
    this.otherSide = opts.scope.side === 'user' ? 'item' : 'user';
    if (opts.cross !== undefined && opts.cross.scope.side !== this.otherSide) {
      throw new ConfigError('cross.scope.side', `must be the other side (${this.otherSide}), got ${opts.cross.scope.side}`);
    }
    this.adapter = opts.adapter;
    this.scope = opts.scope;
    this.stateScope = stateScope;
    this.crossScope = opts.cross?.scope;
    this.safeguard = opts.adapter.hasBaseline && opts.safeguard !== false ? new Safeguard(opts.safeguard ?? {}) : undefined;
    this.recentViews = { ...RECENT_VIEW_DEFAULTS, ...opts.recentViews };
    if (!(Number.isSafeInteger(this.recentViews.maxViews) && this.recentViews.maxViews >= 1))
      throw new ConfigError('recentViews.maxViews', `must be an integer >= 1, got ${this.recentViews.maxViews}`);
    if (!(this.recentViews.windowMs >= 0)) throw new ConfigError('recentViews.windowMs', `must be a number of ms >= 0, got ${this.recentViews.windowMs}`);
    this.safeguardScope = this.safeguard === undefined ? undefined : { ...stateScope, adapter: safeguardSegment(stateScope.adapter) };
    // The partition's safeguard state and the entity states it folded must change together: a store
    // writing the scopes one after the other can keep one and lose the other on a failed write, and the
    // retry then folds those events twice or not at all (scores drift from an uninterrupted run).
    if (this.safeguardScope !== undefined && opts.store.putManyScoped === undefined) {
      throw new ConfigError(
        'safeguard',
        'needs a state store with atomic multi-scope writes (putManyScoped, as the Redis, cached and in-memory stores have); pass safeguard: false for a store without',
      );
    }
    this.store = opts.store;
    this.sink = opts.sink;
    this.logger = opts.logger ?? silentLogger;
  }

  /**
   * Processes one micro-batch; items must be in offset order (as Kafka delivers a partition).
   * Resolves once rows are durable and states are written; rejects (with the store's or sink's
   * error) otherwise, in which case the caller must not commit and should redeliver the batch.
   */
  async process(items: readonly BatchItem[], ctx: PrepareContext = {}): Promise<BatchResult> {
    return this.persist(await this.prepare(items, undefined, ctx));
  }

  /**
   * Steps 1-2: loads states (from `pending` first, then one `store.getMany` for the rest), runs
   * the waves of predict-then-adapt, builds the rows. Writes nothing; the states it returns are
   * copies, so a prepared batch that is never persisted leaves no trace.
   */
  async prepare(items: readonly BatchItem[], pending?: PendingStates, ctx: PrepareContext = {}): Promise<PreparedBatch> {
    const t0 = performance.now();
    const n = items.length;
    const side = this.scope.side;

    // Slot per distinct entity, in order of first appearance; slotOf[i] is item i's entity slot.
    const slotByEntity = new Map<string, number>();
    const entityIds: string[] = [];
    const firstItemOf: number[] = [];
    const slotOf = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const id = entityIdOf((items[i] as BatchItem).event, side);
      let slot = slotByEntity.get(id);
      if (slot === undefined) {
        slot = entityIds.length;
        slotByEntity.set(id, slot);
        entityIds.push(id);
        firstItemOf.push(i);
      }
      slotOf[i] = slot;
    }
    const m = entityIds.length;

    // The other side's entity of every event, for the cross-side read.
    const otherIds: string[] = [];
    const otherSlotOf = new Int32Array(this.crossScope === undefined ? 0 : n);
    if (this.crossScope !== undefined) {
      const slotByOther = new Map<string, number>();
      for (let i = 0; i < n; i++) {
        const id = entityIdOf((items[i] as BatchItem).event, this.otherSide);
        let slot = slotByOther.get(id);
        if (slot === undefined) {
          slot = otherIds.length;
          slotByOther.set(id, slot);
          otherIds.push(id);
        }
        otherSlotOf[i] = slot;
      }
    }
    const partition = ctx.partition ?? 0;
    const origin = ctx.topic === undefined ? undefined : originOf(ctx.topic, partition);
    const safeguardId = `p${partition}`;
    const {
      own: loaded,
      others: otherStates,
      safeguard: loadedSafeguard,
    } = n === 0 ? { own: [], others: [], safeguard: undefined } : await this.load(entityIds, otherIds, safeguardId, pending, ctx.pendingSafeguard);
    const t1 = performance.now();

    // Work on copies: a store may hand out its own objects (memory store, cache tier), and nothing
    // must change there unless the whole batch succeeds (rows durable, then putMany).
    const states: EntityState[] = new Array<EntityState>(m);
    const viewSize = this.adapter.viewSize;
    // The view of each accepted item's entity just before the item (for `recent`), by row.
    const beforeOfRow: (Float32Array | undefined)[] | undefined = viewSize > 0 ? [] : undefined;
    let newEntities = 0;
    const moved: MovedEntity[] = [];
    // The first event of an entity missing from the store is its first event ever: nothing of it
    // was applied, so no event of it can be a skipped redelivery. New entities are initialised in
    // one batched call when the adapter offers it.
    const fresh: number[] = [];
    for (let s = 0; s < m; s++) if (loaded[s] === undefined) fresh.push(s);
    const firstEvents = fresh.map((s) => (items[firstItemOf[s] as number] as BatchItem).event);
    const initial = this.adapter.initialStates !== undefined && fresh.length > 0 ? this.adapter.initialStates(firstEvents) : firstEvents.map((e) => this.adapter.initialState(e));
    for (let s = 0, f = 0; s < m; s++) {
      const prev = loaded[s];
      if (prev === undefined) {
        newEntities++;
        states[s] = { count: 0, lastOffset: -1, lastEventMs: 0, params: initial[f++] as Float32Array };
      } else {
        states[s] = { count: prev.count, lastOffset: prev.lastOffset, lastEventMs: prev.lastEventMs, params: prev.params.slice() };
        if (prev.recent !== undefined) (states[s] as EntityState).recent = cloneRecent(prev.recent);
        if (otherOrigin(prev.origin, origin)) {
          // Its lastOffset counts another partition's messages: comparing this partition's offsets
          // with it would skip (or re-apply) events silently. Re-base: every event here is new to it.
          moved.push({ entityId: entityIds[s] as string, recorded: prev.origin as StateOrigin, lastOffset: prev.lastOffset });
          (states[s] as EntityState).lastOffset = -1;
        }
      }
      if (origin !== undefined) (states[s] as EntityState).origin = { ...origin };
    }
    if (moved.length > 0) this.warnMoved(moved, ctx.topic, partition);

    // Wave of each item (-1 = skipped redelivery) and the number of new events per entity.
    const waveOf = new Int32Array(n);
    const perEntity = new Int32Array(m);
    const lastAccepted = new Float64Array(m);
    for (let s = 0; s < m; s++) lastAccepted[s] = (states[s] as EntityState).lastOffset;
    let skipped = 0;
    let waves = 0;
    for (let i = 0; i < n; i++) {
      const s = slotOf[i] as number;
      const offset = (items[i] as BatchItem).offset;
      if (offset <= (lastAccepted[s] as number)) {
        waveOf[i] = -1;
        skipped++;
        continue;
      }
      lastAccepted[s] = offset;
      const k = perEntity[s] as number;
      waveOf[i] = k;
      perEntity[s] = k + 1;
      if (k + 1 > waves) waves = k + 1;
    }
    const processed = n - skipped;

    // Counting sort of accepted items by wave, stable, so each wave lists entities in first-seen order.
    const waveStart = new Int32Array(waves + 1);
    for (let i = 0; i < n; i++) {
      const w = waveOf[i] as number;
      if (w >= 0) waveStart[w + 1] = (waveStart[w + 1] as number) + 1;
    }
    for (let w = 0; w < waves; w++) waveStart[w + 1] = (waveStart[w + 1] as number) + (waveStart[w] as number);
    const order = new Int32Array(processed);
    const fill = waveStart.slice(0, waves);
    for (let i = 0; i < n; i++) {
      const w = waveOf[i] as number;
      if (w < 0) continue;
      const at = fill[w] as number;
      order[at] = i;
      fill[w] = at + 1;
    }
    // Row position of each item = its rank among accepted items, so rows stay in offset order.
    const rowOf = new Int32Array(n);
    for (let i = 0, r = 0; i < n; i++) if ((waveOf[i] as number) >= 0) rowOf[i] = r++;

    // The other side's view for every accepted item (cross-side read), by row.
    let crossRead = 0;
    let crossRefused = 0;
    const otherOfRow: (Float32Array | undefined)[] | undefined = this.crossScope === undefined ? undefined : new Array<Float32Array | undefined>(processed);
    if (otherOfRow !== undefined) {
      for (let i = 0; i < n; i++) {
        if ((waveOf[i] ?? -1) < 0) continue;
        const ev = (items[i] as BatchItem).event;
        const read = viewAt(otherStates[otherSlotOf[i] ?? 0], ev.timeMs, eventKey(ev.eventId));
        if (read.view !== undefined) crossRead++;
        else if (read.refused) crossRefused++;
        otherOfRow[rowOf[i] ?? 0] = read.view;
      }
    }
    const baselineOfRow = this.safeguard === undefined ? undefined : new Float32Array(processed);

    const rows: PredictionRow[] = new Array<PredictionRow>(processed);
    const { name: adapterName, release } = this.adapter;
    const namespace = this.scope.namespace;
    let maxEventMs = 0;
    // Row of accepted item i with its score; per entity, calls come in event order.
    const emit = (i: number, score: number): void => {
      const item = items[i] as BatchItem;
      const ev = item.event;
      const st = states[slotOf[i] as number] as EntityState;
      if (beforeOfRow !== undefined) {
        st.recent ??= { baseMs: st.count === 0 ? -1 : st.lastEventMs, entries: [] };
        recordView(st.recent, eventKey(ev.eventId), ev.timeMs, beforeOfRow[rowOf[i] ?? 0], Math.max(st.lastEventMs, ev.timeMs), this.recentViews);
      }
      rows[rowOf[i] as number] = {
        eventId: ev.eventId,
        eventTimeMs: ev.timeMs,
        side,
        entityId: entityIds[slotOf[i] as number] as string,
        priorCount: st.count,
        score,
        label: ev.label,
        adapter: adapterName,
        release,
        namespace,
      };
      st.count++;
      st.lastOffset = item.offset;
      // Feast-style: the recorded event time never moves backwards on late events.
      if (ev.timeMs > st.lastEventMs) st.lastEventMs = ev.timeMs;
      if (ev.timeMs > maxEventMs) maxEventMs = ev.timeMs;
    };
    if (this.adapter.predictThenAdaptSequence !== undefined && processed > 0) {
      // One call for the whole batch, accepted items in offset order (adapters/types.ts).
      const events: LabelledEvent[] = new Array<LabelledEvent>(processed);
      const params: Float32Array[] = new Array<Float32Array>(processed);
      for (let i = 0; i < n; i++) {
        if ((waveOf[i] as number) < 0) continue;
        const r = rowOf[i] as number;
        events[r] = (items[i] as BatchItem).event;
        params[r] = (states[slotOf[i] as number] as EntityState).params;
        // One call adapts an entity's events in turn: only the view before its first is observed.
        if (beforeOfRow !== undefined && waveOf[i] === 0) beforeOfRow[r] = params[r].slice(0, viewSize);
      }
      const scores = this.adapter.predictThenAdaptSequence({
        events,
        states: params,
        ...(otherOfRow === undefined ? {} : { others: otherOfRow }),
        ...(baselineOfRow === undefined ? {} : { baseline: baselineOfRow }),
      });
      for (let i = 0; i < n; i++) if ((waveOf[i] as number) >= 0) emit(i, scores[rowOf[i] as number] as number);
    } else {
      let heldSince = performance.now();
      for (let w = 0; w < waves; w++) {
        if (w > 0 && performance.now() - heldSince > HOLD_EVENT_LOOP_MS) {
          // A slow adapter's chunk (emerg: many waves) would otherwise hold the event loop for
          // seconds: the consumer's heartbeats and the other partitions' I/O get a turn.
          await new Promise<void>((resolve) => setImmediate(resolve));
          heldSince = performance.now();
        }
        const from = waveStart[w] as number;
        const to = waveStart[w + 1] as number;
        const events: LabelledEvent[] = new Array<LabelledEvent>(to - from);
        const params: Float32Array[] = new Array<Float32Array>(to - from);
        const others: (Float32Array | undefined)[] | undefined = otherOfRow === undefined ? undefined : new Array<Float32Array | undefined>(to - from);
        for (let j = from; j < to; j++) {
          const i = order[j] as number;
          events[j - from] = (items[i] as BatchItem).event;
          const st = (states[slotOf[i] as number] as EntityState).params;
          params[j - from] = st;
          if (others !== undefined && otherOfRow !== undefined) others[j - from] = otherOfRow[rowOf[i] ?? 0];
          if (beforeOfRow !== undefined) beforeOfRow[rowOf[i] ?? 0] = st.slice(0, viewSize);
        }
        const baseline = baselineOfRow === undefined ? undefined : new Float32Array(to - from);
        const scores = this.adapter.predictThenAdapt({ events, states: params, ...(others === undefined ? {} : { others }), ...(baseline === undefined ? {} : { baseline }) });
        for (let j = from; j < to; j++) {
          const i = order[j] as number;
          if (baseline !== undefined && baselineOfRow !== undefined) baselineOfRow[rowOf[i] ?? 0] = baseline[j - from] ?? 0;
          emit(i, scores[j - from] as number);
        }
      }
    }
    // The safeguard, in offset order (rows are): its state is a fold over the partition's events.
    let safeguard: PreparedBatch['safeguard'];
    if (this.safeguard !== undefined && baselineOfRow !== undefined && processed > 0) {
      const st = this.safeguard.foldRows(loadedSafeguard, rows, baselineOfRow, processed);
      if (origin !== undefined) st.origin = { ...origin };
      st.count += processed;
      st.lastOffset = Math.max(st.lastOffset, lastAcceptedOffset(items, waveOf));
      if (maxEventMs > st.lastEventMs) st.lastEventMs = maxEventMs;
      safeguard = { entityId: safeguardId, state: st };
    }
    const t2 = performance.now();

    const changed: { entityId: string; state: EntityState }[] = [];
    for (let s = 0; s < m; s++) {
      if ((perEntity[s] as number) > 0) changed.push({ entityId: entityIds[s] as string, state: states[s] as EntityState });
    }
    return {
      rows,
      changed,
      safeguard,
      processed,
      skipped,
      entities: m,
      newEntities,
      waves,
      originMismatches: moved.length,
      maxEventMs,
      crossRead,
      crossRefused,
      startedAt: t0,
      loadMs: t1 - t0,
      computeMs: t2 - t1,
    };
  }

  /**
   * Steps 3-4: rows durable, then states written (CAS on lastOffset). Rejects with the sink's or
   * the store's error; the caller must then not commit and should redeliver the batch.
   */
  async persist(p: PreparedBatch, progress?: Omit<ProgressWrite, 'scope'>): Promise<BatchResult> {
    const t2 = performance.now();
    // Rows first: once they are durable, losing the state write only costs a recomputation.
    if (p.processed > 0) await this.sink.write(p.rows);
    const t3 = performance.now();

    let statesWritten = 0;
    let statesRefused = 0;
    if (p.changed.length > 0 || progress !== undefined) {
      const writes = [{ scope: this.stateScope, entries: p.changed }];
      if (p.safeguard !== undefined && this.safeguardScope !== undefined) writes.push({ scope: this.safeguardScope, entries: [p.safeguard] });
      // The partition's progress in the same atomic call (consumers/progress.ts).
      const res = await putScoped(this.store, writes, progress === undefined ? undefined : { scope: this.stateScope, ...progress });
      statesWritten = res.written;
      statesRefused = res.skipped;
      // Refusals mean another writer got ahead of us (two workers on one partition during a
      // rebalance); our rows are still durable and de-duplicated by event id downstream.
      if (statesRefused > 0) this.logger.warn('state writes refused by offset check', { refused: statesRefused, ...this.scope });
    }
    const t4 = performance.now();

    return {
      processed: p.processed,
      skipped: p.skipped,
      entities: p.entities,
      newEntities: p.newEntities,
      waves: p.waves,
      originMismatches: p.originMismatches,
      statesWritten,
      statesRefused,
      maxEventMs: p.maxEventMs,
      crossRead: p.crossRead,
      crossRefused: p.crossRefused,
      timings: { loadMs: p.loadMs, computeMs: p.computeMs, sinkMs: t3 - t2, storeMs: t4 - t3, totalMs: t4 - p.startedAt },
    };
  }

  /** One warning per re-based entity (at most MOVED_WARNINGS_PER_BATCH per batch, then a count). */
  private warnMoved(moved: readonly MovedEntity[], topic: string | undefined, partition: number): void {
    for (const m of moved.slice(0, MOVED_WARNINGS_PER_BATCH)) {
      this.logger.warn('entity state recorded another partition or topic: re-based on this partition, its events applied', {
        ...this.scope,
        entityId: m.entityId,
        topic,
        partition,
        recordedPartition: m.recorded.partition,
        recordedTopicTag: m.recorded.topicTag,
        recordedLastOffset: m.lastOffset,
      });
    }
    if (moved.length > MOVED_WARNINGS_PER_BATCH) {
      this.logger.warn('more entity states of another partition or topic in this batch', { ...this.scope, topic, partition, more: moved.length - MOVED_WARNINGS_PER_BATCH });
    }
  }

  /**
   * In one store round trip: the own states of `ids` (not-yet-durable ones from `pending`), the other
   * side's states of `otherIds`, and the partition's safeguard state (pending first).
   */
  private async load(
    ids: readonly string[],
    otherIds: readonly string[],
    safeguardId: string,
    pending: PendingStates | undefined,
    pendingSafeguard: EntityState | undefined,
  ): Promise<{ own: (EntityState | undefined)[]; others: (EntityState | undefined)[]; safeguard: EntityState | undefined }> {
    const own = new Array<EntityState | undefined>(ids.length);
    const missIdx: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const s = pending?.get(ids[i] as string);
      if (s === undefined) missIdx.push(i);
      else own[i] = s;
    }
    const reads: ScopedRead[] = [{ scope: this.stateScope, entityIds: missIdx.map((i) => ids[i] as string) }];
    if (this.crossScope !== undefined) reads.push({ scope: this.crossScope, entityIds: otherIds });
    const wantSafeguard = this.safeguardScope !== undefined && pendingSafeguard === undefined;
    if (wantSafeguard && this.safeguardScope !== undefined) reads.push({ scope: this.safeguardScope, entityIds: [safeguardId] });
    const got = await getScoped(this.store, reads);
    const loadedOwn = got[0] ?? [];
    for (let j = 0; j < missIdx.length; j++) own[missIdx[j] as number] = loadedOwn[j];
    const others = this.crossScope === undefined ? [] : (got[1] ?? []);
    const safeguard = wantSafeguard ? got[reads.length - 1]?.[0] : pendingSafeguard;
    return { own, others, safeguard };
  }
}

/** An entity whose stored state recorded another origin than the batch's. */
interface MovedEntity {
  entityId: string;
  recorded: StateOrigin;
  lastOffset: number;
}

/** Longest one chunk's adaptation holds the event loop between waves before it yields. Milliseconds. */
const HOLD_EVENT_LOOP_MS = 100;
/** Entities named one by one in a batch's warnings; the rest are counted. */
const MOVED_WARNINGS_PER_BATCH = 20;

/** The largest offset among accepted items (waveOf ≥ 0). */
function lastAcceptedOffset(items: readonly BatchItem[], waveOf: Int32Array): number {
  let last = -1;
  for (let i = 0; i < items.length; i++) if ((waveOf[i] ?? -1) >= 0) last = Math.max(last, (items[i] as BatchItem).offset);
  return last;
}
