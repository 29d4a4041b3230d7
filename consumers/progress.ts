/**
 * Progress lives with the state (issue 11). Each micro-batch's store write records, in the same
 * atomic call as the states (model-store/redis-store.ts putManyScoped, cas-script.ts), how far its
 * partition has been applied; on every assignment the worker starts each partition right after that
 * record, so the store, not the consumer group's committed offsets, says what has been done:
 *   - stored ahead of the committed offset (a crash or a rebalance between the state write and the
 *     commit, or a group whose offsets were lost): seek forward, nothing applied is fetched again;
 *   - stored behind it (Redis lost its last writes: a kill -9 under `appendfsync everysec`, a
 *     failover to a lagging replica): seek back, the lost events are applied again from Kafka. The
 *     per-entity CAS skips whatever did survive, and rows recomputed from the same states carry the
 *     same scores (the prediction log de-duplicates by event id);
 *   - no record (a new scope, or states written before progress existed): the committed offset;
 *   - stored beyond the partition's end (the topic was deleted and recreated, or truncated): the
 *     record is of another incarnation of the partition. The committed offset is kept and the case
 *     is logged and counted; states recorded against the old offsets may refuse the new events.
 * While a worker runs, each state write also tells the store the progress the worker wrote last for
 * the partition (ProgressWrite.expectAtLeast): a store that lost acknowledged writes meanwhile (the
 * same crash, with this worker still up and its cache tier holding the newer states) refuses the
 * write with STORE_REGRESSED, and the worker drops its cached states of the partition and has the
 * consumer refetch right after the stored progress (RewindPartition), as a restart would.
 * test/integration/consumers/worker-redis-kill.test.ts kills redis-server with -9 both ways.
 * A chunk with dead letters records its progress only up to just before its first poison message,
 * because the dead letters are sent after the state write: a restart re-sends them (at least once)
 * rather than lose them.
 */

/** Where a partition starts, given its stored progress and the consumer's position. */
export type StartDecision = { action: 'keep'; reason: 'no-progress' | 'in-step' | 'beyond-end' } | { action: 'seek'; offset: number; direction: 'ahead' | 'behind' };

/**
 * `stored`: the partition's recorded progress (last applied offset) or undefined; `fetchedFrom`: the
 * offset the consumer starts from; `highWatermark`: the partition's end offset (next to be written).
 */
export function decideStart(stored: number | undefined, fetchedFrom: number, highWatermark: number): StartDecision {
  if (stored === undefined) return { action: 'keep', reason: 'no-progress' };
  const next = stored + 1;
  if (next === fetchedFrom) return { action: 'keep', reason: 'in-step' };
  if (next > highWatermark) return { action: 'keep', reason: 'beyond-end' };
  return { action: 'seek', offset: next, direction: next > fetchedFrom ? 'ahead' : 'behind' };
}

/**
 * The progress a chunk may record once its states are written: its last offset, or, when it holds
 * poison messages (sent to dead letters only after the state write), the offset just before the
 * first of them. Undefined when that does not advance past the chunk's start (nothing to record).
 */
export function chunkProgress(offsets: readonly number[], poisonOffsets: readonly number[]): number | undefined {
  const first = offsets[0];
  const last = offsets[offsets.length - 1];
  if (first === undefined || last === undefined) return undefined;
  const upTo = poisonOffsets.length === 0 ? last : Math.min(last, Math.min(...poisonOffsets) - 1);
  return upTo >= first ? upTo : undefined;
}
