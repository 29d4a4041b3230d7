/**
 * Rebuilding the retrieval index when the item tower changes (a new retrieval snapshot, serving/
 * retrieve-reload.ts): the new snapshot's index is completed with every item the service holds
 * features for (the latest profile's, else the first event's, as the Kafka indexer saw them),
 * re-encoded by the NEW item tower, and sealed into its graph; then the service swaps to the new
 * towers and index in one step (RetrievalService.swap).
 *
 * Off the request path: the work runs in chunks of `chunk` items, each followed by at most
 * `sealBudgetMs` of sealing, with a turn of the event loop between chunks, so requests and the
 * Kafka indexer run meanwhile against the OLD towers and index. Items indexed while the rebuild
 * runs are recorded and re-encoded at the end, in the same synchronous step as the swap, so none is
 * lost.
 *
 * What it cannot re-encode: an item of the old index that the new snapshot does not hold and whose
 * features the service never saw (a snapshot item not on Kafka since start). It is not in the new
 * index; `RebuildResult` says how many items each side holds.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ThawError } from '../lib/errors.js';
import type { RetrievalSnapshot } from '../retrieval/index/encoder-snapshot.js';
import { encodeItem, type RetrievalService } from './retrieve.js';

export interface RebuildOptions {
  /** Items re-encoded per event-loop turn (count). @default 256 */
  chunk?: number;
  /** Time of the sealing that follows each chunk (ms). @default 5 */
  sealBudgetMs?: number;
  /** Checked between chunks: true stops the rebuild (REBUILD_ABORTED), the old index kept serving. */
  aborted?: () => boolean;
}

export interface RebuildResult {
  /** Items the new snapshot's index held when loaded. */
  snapshotItems: number;
  /** Items re-encoded from their stored features (including those indexed during the rebuild). */
  reencoded: number;
  /** Of those, the ones whose vector the snapshot already held (left as they were). */
  unchanged: number;
  /** Items of the old index and of the new one at the swap. */
  oldItems: number;
  newItems: number;
}

/** Completes `next` with the service's items, seals it, and swaps the service to it. */
export async function rebuildAndSwap(service: RetrievalService, next: RetrievalSnapshot, opts: RebuildOptions = {}): Promise<RebuildResult> {
  const chunk = opts.chunk ?? 256;
  const sealBudgetMs = opts.sealBudgetMs ?? 5;
  const dim = next.encoder.opts.dim;
  if (next.index.dim !== dim) throw new ThawError('INDEX_CORRUPT', `the new index holds vectors of ${next.index.dim} floats, its encoder makes ${dim}`);
  const out = new Float32Array(dim);
  const result: RebuildResult = { snapshotItems: next.index.stats().items, reencoded: 0, unchanged: 0, oldItems: 0, newItems: 0 };
  const reencode = (id: string): void => {
    const features = service.featuresOf(id);
    if (features === undefined) return;
    encodeItem(next, id, features, out);
    result.reencoded++;
    const current = next.index.vectorOf(id);
    if (current !== undefined && current.every((x, j) => x === out[j])) {
      result.unchanged++;
      return;
    }
    next.index.upsert(id, out);
  };
  const indexedMeanwhile = service.beginRebuild();
  try {
    const ids = service.itemsWithFeatures();
    for (let from = 0; from < ids.length; from += chunk) {
      for (let i = from; i < Math.min(ids.length, from + chunk); i++) reencode(ids[i] ?? '');
      next.index.sealSome(Number.MAX_SAFE_INTEGER, sealBudgetMs);
      await nextTurn();
      if (opts.aborted?.() === true) throw new ThawError('REBUILD_ABORTED', 'the retrieval index rebuild was stopped; the old index keeps serving');
    }
    while (next.index.growingCount > 0) {
      next.index.sealSome(Number.MAX_SAFE_INTEGER, sealBudgetMs);
      await nextTurn();
      if (opts.aborted?.() === true) throw new ThawError('REBUILD_ABORTED', 'the retrieval index rebuild was stopped; the old index keeps serving');
    }
    // The items indexed meanwhile, then the swap, in one synchronous step: nothing indexed in between.
    for (const id of indexedMeanwhile) reencode(id);
    result.oldItems = service.index.stats().items;
    service.swap(next);
    result.newItems = next.index.stats().items;
    return result;
  } finally {
    service.endRebuild();
  }
}
