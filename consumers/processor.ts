/**
 * BatchProcessor: the transport-free core of an adaptation worker. The Kafka worker and the
 * zero-setup demo both feed it micro-batches of (offset, event) pairs of ONE partition (or one
 * ordered source) and it does, per call:
 *
 *   1. load    one `store.getMany` for the distinct entities of the batch (missing → initial state)
 *   2. compute split the new events into waves (k-th event of each entity → wave k) and call
 *              `adapter.predictThenAdapt` once per wave: per-entity event order is kept while each
 *              wave is one batched computation (or, if the adapter has it, one
 *              `predictThenAdaptSequence` call for the whole batch in offset order)
 *   3. sink    `await sink.write(rows)`: the prequential rows are durable (ClickHouse or disk spool)
 *   4. store   one `store.putMany` of the changed states (each carrying its new lastOffset)
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
import type { EntityState, EntityStore, StateScope } from '../model-store/types.js';
import { entityIdOf, type LabelledEvent } from '../schemas/types.js';

/** One event of a micro-batch with its position in its partition. */
export interface BatchItem {
  /** Kafka offset within the partition (or the position in an ordered source); increasing per entity. */
  offset: number;
  event: LabelledEvent;
}

export interface BatchProcessorOptions {
  /** The per-entity adapter; its `side` and `name` must match `scope`. */
  adapter: Adapter;
  /** Where entity states live (Redis, cached Redis, memory). */
  store: EntityStore;
  /** Where prequential prediction rows go; `write` resolving means durable. */
  sink: PredictionSink;
  /** Namespace, side and adapter name addressing the states. */
  scope: StateScope;
  /** @default silentLogger */
  logger?: Logger;
}

/** Wall-clock milliseconds spent in each phase of one `process` call. */
export interface PhaseTimings {
  loadMs: number;
  computeMs: number;
  sinkMs: number;
  storeMs: number;
  totalMs: number;
}

export interface BatchResult {
  /** Events scored and applied. */
  processed: number;
  /** Events at or below their entity's lastOffset (redeliveries), neither scored nor applied. */
  skipped: number;
  /** Distinct entities in the batch. */
  entities: number;
  /** Entities first seen in this batch. */
  newEntities: number;
  /** predictThenAdapt calls (the largest number of new events of one entity). */
  waves: number;
  /** States accepted / refused by the store's offset compare-and-set. */
  statesWritten: number;
  statesRefused: number;
  /** Event time of the newest processed event, unix ms; 0 if none. */
  maxEventMs: number;
  timings: PhaseTimings;
}

/**
 * States computed by earlier chunks of the same partition that are not durable yet (their persist
 * is in flight). `prepare` reads an entity here before the store. Never mutated by the processor.
 */
export interface PendingStates {
  get(entityId: string): EntityState | undefined;
}

/** The result of `prepare`: everything `persist` writes, plus the counts of the batch. */
export interface PreparedBatch {
  /** Prediction rows in offset order (durable first). */
  readonly rows: PredictionRow[];
  /** New states of the entities with at least one applied event (written second). */
  readonly changed: { entityId: string; state: EntityState }[];
  readonly processed: number;
  readonly skipped: number;
  readonly entities: number;
  readonly newEntities: number;
  readonly waves: number;
  readonly maxEventMs: number;
  /** performance.now() when prepare started, and its phase times. */
  readonly startedAt: number;
  readonly loadMs: number;
  readonly computeMs: number;
}

export class BatchProcessor {
  readonly adapter: Adapter;
  readonly scope: StateScope;
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
    this.adapter = opts.adapter;
    this.scope = opts.scope;
    this.store = opts.store;
    this.sink = opts.sink;
    this.logger = opts.logger ?? silentLogger;
  }

  /**
   * Processes one micro-batch; items must be in offset order (as Kafka delivers a partition).
   * Resolves once rows are durable and states are written; rejects (with the store's or sink's
   * error) otherwise, in which case the caller must not commit and should redeliver the batch.
   */
  async process(items: readonly BatchItem[]): Promise<BatchResult> {
    return this.persist(await this.prepare(items));
  }

  /**
   * Steps 1-2: loads states (from `pending` first, then one `store.getMany` for the rest), runs
   * the waves of predict-then-adapt, builds the rows. Writes nothing; the states it returns are
   * copies, so a prepared batch that is never persisted leaves no trace.
   */
  async prepare(items: readonly BatchItem[], pending?: PendingStates): Promise<PreparedBatch> {
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

    const loaded = m === 0 ? [] : await this.load(entityIds, pending);
    const t1 = performance.now();

    // Work on copies: a store may hand out its own objects (memory store, cache tier), and nothing
    // must change there unless the whole batch succeeds (rows durable, then putMany).
    const states: EntityState[] = new Array<EntityState>(m);
    let newEntities = 0;
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
      }
    }

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

    const rows: PredictionRow[] = new Array<PredictionRow>(processed);
    const { name: adapterName, release } = this.adapter;
    const namespace = this.scope.namespace;
    let maxEventMs = 0;
    // Row of accepted item i with its score; per entity, calls come in event order.
    const emit = (i: number, score: number): void => {
      const item = items[i] as BatchItem;
      const ev = item.event;
      const st = states[slotOf[i] as number] as EntityState;
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
      }
      const scores = this.adapter.predictThenAdaptSequence({ events, states: params });
      for (let i = 0; i < n; i++) if ((waveOf[i] as number) >= 0) emit(i, scores[rowOf[i] as number] as number);
    } else {
      for (let w = 0; w < waves; w++) {
        const from = waveStart[w] as number;
        const to = waveStart[w + 1] as number;
        const events: LabelledEvent[] = new Array<LabelledEvent>(to - from);
        const params: Float32Array[] = new Array<Float32Array>(to - from);
        for (let j = from; j < to; j++) {
          const i = order[j] as number;
          events[j - from] = (items[i] as BatchItem).event;
          params[j - from] = (states[slotOf[i] as number] as EntityState).params;
        }
        const scores = this.adapter.predictThenAdapt({ events, states: params });
        for (let j = from; j < to; j++) emit(order[j] as number, scores[j - from] as number);
      }
    }
    const t2 = performance.now();

    const changed: { entityId: string; state: EntityState }[] = [];
    for (let s = 0; s < m; s++) {
      if ((perEntity[s] as number) > 0) changed.push({ entityId: entityIds[s] as string, state: states[s] as EntityState });
    }
    return { rows, changed, processed, skipped, entities: m, newEntities, waves, maxEventMs, startedAt: t0, loadMs: t1 - t0, computeMs: t2 - t1 };
  }

  /**
   * Steps 3-4: rows durable, then states written (CAS on lastOffset). Rejects with the sink's or
   * the store's error; the caller must then not commit and should redeliver the batch.
   */
  async persist(p: PreparedBatch): Promise<BatchResult> {
    const t2 = performance.now();
    // Rows first: once they are durable, losing the state write only costs a recomputation.
    if (p.processed > 0) await this.sink.write(p.rows);
    const t3 = performance.now();

    let statesWritten = 0;
    let statesRefused = 0;
    if (p.changed.length > 0) {
      const res = await this.store.putMany(this.scope, p.changed);
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
      statesWritten,
      statesRefused,
      maxEventMs: p.maxEventMs,
      timings: { loadMs: p.loadMs, computeMs: p.computeMs, sinkMs: t3 - t2, storeMs: t4 - t3, totalMs: t4 - p.startedAt },
    };
  }

  /** States of `ids`: not-yet-durable ones from `pending`, the rest in one getMany. */
  private async load(ids: readonly string[], pending: PendingStates | undefined): Promise<(EntityState | undefined)[]> {
    if (pending === undefined) return this.store.getMany(this.scope, ids);
    const out = new Array<EntityState | undefined>(ids.length);
    const missIdx: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const s = pending.get(ids[i] as string);
      if (s === undefined) missIdx.push(i);
      else out[i] = s;
    }
    if (missIdx.length === 0) return out;
    const loaded = missIdx.length === ids.length ? await this.store.getMany(this.scope, ids) : await this.store.getMany(this.scope, missIdx.map((i) => ids[i] as string));
    if (missIdx.length === ids.length) return loaded;
    for (let j = 0; j < missIdx.length; j++) out[missIdx[j] as number] = loaded[j];
    return out;
  }
}
