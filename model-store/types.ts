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
}

/** Address of one entity's state: namespace, side, adapter and entity id. */
export interface StateScope {
  /** Namespace: `live` or a replay's name. Isolates replays from live state. */
  namespace: string;
  side: 'user' | 'item';
  adapter: string;
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
  /** Releases connections. */
  close(): Promise<void>;
}
