/**
 * The per-partition chain of a worker's chunks between prepare and durable (consumers/worker.ts
 * explains the pipeline), and the error of a chunk discarded because an earlier one failed.
 */
import { ThawError } from '../lib/errors.js';
import type { EntityState, StateScope } from '../model-store/types.js';
import type { BatchProcessor } from './processor.js';

/**
 * A chunk handed over after an earlier chunk of its partition failed: it was not persisted (it may
 * have read the failed chunk's states) and must be redelivered after the failed one.
 */
export class DiscardedChunkError extends ThawError {
  override readonly name = 'DiscardedChunkError';
  constructor(partition: number, firstOffset: number | undefined) {
    super('LIFECYCLE', `chunk of partition ${partition} from offset ${firstOffset ?? '?'} discarded: an earlier chunk of the partition failed`);
  }
}

/** Per partition: the chain of chunks between prepare and durable (see the file comment). */
export class PartitionPipe {
  /** Bumped when the pipe restarts after a failure; a call of an older generation is discarded. */
  gen = 0;
  /** A chunk failed: chunks after it are discarded until it is handed over again. */
  broken = false;
  /** First offset of the chunk that failed (valid while broken). */
  failedFrom = 0;
  /** Settles when the previous chunk's prepare has (it may then have added to `pending`). */
  prepared: Promise<void> = Promise.resolve();
  /** Settles when the previous chunk's persist has. */
  durable: Promise<void> = Promise.resolve();
  /** States prepared but not yet durable, by entity id; valid for `processor` only. */
  readonly pending = new Map<string, EntityState>();
  /** The partition's safeguard state prepared but not yet durable (same rules as `pending`). */
  pendingSafeguard: EntityState | undefined;
  processor: BatchProcessor | undefined;
  /**
   * The partition's progress this worker last wrote, or found stored when it was assigned, in the
   * state scope `writtenScope`: a write to that scope finding the store behind it means the store
   * lost acknowledged writes (StoreRegressedError). Progress is kept per state scope, and a release
   * that starts a new state epoch starts a new scope with no progress yet: no expectation there.
   */
  written: number | undefined;
  writtenScope: string | undefined;
}

export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The key of a state scope in PartitionPipe.writtenScope. */
export function scopeKeyOf(scope: StateScope): string {
  return `${scope.namespace}\u0000${scope.side}\u0000${scope.adapter}`;
}
