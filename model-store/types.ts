/**
 * Per-entity state as persisted: the adapter's parameters plus the bookkeeping that makes
 * processing effectively-once (last applied offset) and builds warm-up curves (interaction count).
 */
export interface EntityState {
  /** Interactions applied to this entity so far (its prior count for the next event). */
  count: number;
  /**
   * Kafka offset of the last event applied to this entity, -1 if none. Events at or below it are
   * redeliveries and are skipped. Safe as a JS number (offsets stay far below 2^53).
   */
  lastOffset: number;
  /** Event time of the last applied event, unix ms (Feast-style: older writes never win). */
  lastEventMs: number;
  /** The adapter's parameters. */
  params: Float32Array;
  /**
   * The entity's VIEW (the first floats of its params that the other side's workers read) before
   * each of its latest events, so that a worker of the other side scoring one of those events (or an
   * older one) can use the state as it was before it, never one that includes it or a later event
   * (consumers/cross-side.ts). Absent when the entity's adapter has no view.
   */
  recent?: RecentViews;
  /**
   * The partition (and topic, as a tag) whose offsets `lastOffset` counts; absent in states written
   * outside a Kafka worker (demo, evaluation) and in format-1 states (model-store/origin.ts).
   */
  origin?: StateOrigin;
}

/** Where a state's lastOffset comes from (model-store/origin.ts). */
export interface StateOrigin {
  /** `topicTag(topic)`: 32-bit FNV-1a of the topic name. */
  topicTag: number;
  partition: number;
}

/**
 * How far one Kafka partition has been applied to a scope's states: written in the same atomic call
 * as the states (`putManyScoped`), so the store, not the consumer group's committed offsets, is the
 * source of truth of a worker's progress (consumers/progress.ts).
 */
export interface PartitionProgress {
  topic: string;
  partition: number;
  /** Every message of the partition at or below this offset is applied (or dead-lettered). */
  offset: number;
}

/** A topic's partition, as the cache tier's invalidation names it. */
export interface PartitionRef {
  topic: string;
  partition: number;
}

/** The views of an entity before its latest events, oldest first (consumers/cross-side.ts). */
export interface RecentViews {
  /** Time of the entity's event just before the oldest entry, unix ms; -1 if the oldest entry is its first event. */
  baseMs: number;
  entries: RecentView[];
}

export interface RecentView {
  /** `eventKey` of the event (a 32-bit hash of its id). */
  key: number;
  /** The event's time, unix ms. */
  eventMs: number;
  /** The view before the event; absent when it was not observed (the event was not its entity's first in a one-call batch). */
  before: Float32Array | undefined;
}

/** Address of one entity's state: namespace, side, adapter and entity id. */
export interface StateScope {
  /** Namespace: `live` or a replay's name. Isolates replays from live state. */
  namespace: string;
  side: 'user' | 'item';
  adapter: string;
}

/** One scope's part of a multi-scope read. */
export interface ScopedRead {
  scope: StateScope;
  entityIds: readonly string[];
}

/** One scope's part of a multi-scope write. */
export interface ScopedWrite {
  scope: StateScope;
  entries: readonly { entityId: string; state: EntityState }[];
}

/** A partition's progress written with a batch of states, in one scope (the worker's state scope). */
export interface ProgressWrite extends PartitionProgress {
  scope: StateScope;
  /**
   * The progress this writer recorded (or read) last for the partition. When the stored progress is
   * below it (or gone), the store lost acknowledged writes: the whole write is refused, nothing
   * applied, with a StoreRegressedError (lib/errors.ts). Unset: no check.
   */
  expectAtLeast?: number;
}

export interface EntityStore {
  /** Loads many states in one round trip; `undefined` where the entity was never seen. */
  getMany(scope: StateScope, entityIds: readonly string[]): Promise<(EntityState | undefined)[]>;
  /**
   * Writes many states in one round trip. An entry is skipped (not written) when the stored
   * state's lastOffset is not older than the entry's: one writer per entity, redeliveries never
   * roll state back. Resolves once durable as far as the store guarantees.
   */
  putMany(scope: StateScope, entries: readonly { entityId: string; state: EntityState }[]): Promise<{ written: number; skipped: number }>;
  /**
   * Optional: `getMany` of several scopes in ONE round trip (the worker reads its own states, the
   * other side's and its safeguard together). model-store/scoped.ts falls back to parallel getMany.
   */
  getManyScoped?(reads: readonly ScopedRead[]): Promise<(EntityState | undefined)[][]>;
  /**
   * Optional: `putMany` of several scopes in ONE atomic write (same CAS per entry), so a crash never
   * leaves one scope written and the other not. model-store/scoped.ts falls back to putMany in turn.
   * Required by a worker whose adapter is safeguarded (the BatchProcessor refuses the store otherwise).
   */
  putManyScoped?(writes: readonly ScopedWrite[], progress?: ProgressWrite): Promise<{ written: number; skipped: number }[]>;
  /**
   * Optional: the stored progress of one partition in one scope (the largest offset written with
   * `putManyScoped`'s `progress`), undefined if none. Stores without it keep no progress.
   */
  getProgress?(scope: StateScope, topic: string, partition: number): Promise<number | undefined>;
  /**
   * Optional: forget cached states of these partitions (and cached states of unknown origin), because
   * another worker may have advanced them. A store without a cache tier has nothing to do.
   */
  invalidatePartitions?(partitions: readonly PartitionRef[]): void;
  /** Releases connections. */
  close(): Promise<void>;
}
