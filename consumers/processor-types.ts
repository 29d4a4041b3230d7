/**
 * The BatchProcessor's options, inputs and results (consumers/processor.ts explains the steps).
 */
import type { Adapter } from '../adapters/types.js';
import type { PredictionRow, PredictionSink } from '../analytics/types.js';
import type { Logger } from '../lib/log.js';
import type { EntityState, EntityStore, StateScope } from '../model-store/types.js';
import type { LabelledEvent } from '../schemas/types.js';
import type { RecentViewOptions } from './cross-side.js';
import type { SafeguardOptions } from './safeguard.js';

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
  /** Namespace, side and adapter name of the rows (and of the states, unless `stateScope` says otherwise). */
  scope: StateScope;
  /**
   * Where the states live when it is not `scope`: the same namespace and side, with the adapter
   * segment of the release's state epoch (consumers/release-adapter.ts). @default scope
   */
  stateScope?: StateScope;
  /**
   * The other side's states to score with (storage scope of the partner adapter's states, read
   * never written). @default none: every other entity is cold
   */
  cross?: { scope: StateScope };
  /**
   * The safeguard that mixes the adapted score with the adapter's baseline (consumers/safeguard.ts);
   * `false` turns it off. Only adapters with `hasBaseline` are safeguarded. @default on, its defaults
   */
  safeguard?: SafeguardOptions | false;
  /**
   * Bounds of the recent views each written state keeps for the other side's readers
   * (consumers/cross-side.ts); only adapters with a view (`viewSize` > 0) write them.
   * @default RECENT_VIEW_DEFAULTS (16 views, 60 s)
   */
  recentViews?: RecentViewOptions;
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
  /**
   * Entities whose stored state recorded another partition or topic (partitions added, topic
   * changed): re-based on this partition, their events applied, each logged with a warning.
   */
  originMismatches: number;
  /** States accepted / refused by the store's offset compare-and-set. */
  statesWritten: number;
  statesRefused: number;
  /** Event time of the newest processed event, unix ms; 0 if none. */
  maxEventMs: number;
  /** Processed events scored with a state of the other side's entity (cross-side read). */
  crossRead: number;
  /** Processed events whose other entity had only states newer than the event (scored cold). */
  crossRefused: number;
  timings: PhaseTimings;
}

/**
 * States computed by earlier chunks of the same partition that are not durable yet (their persist
 * is in flight). `prepare` reads an entity here before the store. Never mutated by the processor.
 */
export interface PendingStates {
  get(entityId: string): EntityState | undefined;
}

/** Where a micro-batch comes from, beyond its events. */
export interface PrepareContext {
  /** Its Kafka partition (the safeguard keeps one state per partition). @default 0 */
  partition?: number;
  /**
   * Its Kafka topic: written states then record their origin (topic and partition, state format 2)
   * and a state of another origin is detected and re-based (model-store/origin.ts). @default none
   * (states without origin: the demo and the evaluation)
   */
  topic?: string;
  /** The partition's safeguard state prepared by an earlier chunk and not durable yet. */
  pendingSafeguard?: EntityState;
}

/** The result of `prepare`: everything `persist` writes, plus the counts of the batch. */
export interface PreparedBatch {
  /** Prediction rows in offset order (durable first). */
  readonly rows: PredictionRow[];
  /** New states of the entities with at least one applied event (written second). */
  readonly changed: { entityId: string; state: EntityState }[];
  /** The partition's new safeguard state (written with `changed`), if the adapter is safeguarded. */
  readonly safeguard: { entityId: string; state: EntityState } | undefined;
  readonly crossRead: number;
  readonly crossRefused: number;
  readonly processed: number;
  readonly skipped: number;
  readonly entities: number;
  readonly newEntities: number;
  readonly waves: number;
  readonly originMismatches: number;
  readonly maxEventMs: number;
  /** performance.now() when prepare started, and its phase times. */
  readonly startedAt: number;
  readonly loadMs: number;
  readonly computeMs: number;
}
