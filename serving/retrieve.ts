/**
 * Retrieval in `thaw serve` (`--retrieval DIR`): the dual encoder's towers and the ANN index of a
 * retrieval snapshot (retrieval/index/encoder-snapshot.ts), the background sealer, and what the
 * Kafka indexer (serving/retrieve-indexer.ts) and `POST /v1/retrieve` (serving/retrieve-routes.ts)
 * call.
 *
 * An item's vector is the item tower's output for its features (plus its id row when the encoder
 * was trained on it). A user's vector is the user tower's output for the request's features and the
 * mean of the index's vectors of the request's `history` items (the last `historyLength`; ids the
 * index does not hold are skipped), as in training.
 *
 * The service also keeps the features of every item it was asked to index (the latest profile's,
 * else the first event's): POST /v1/recommend ranks a candidate with them. An item of the snapshot
 * never seen on Kafka since start has none (the snapshot does not store features): it is ranked by
 * its id and stored state alone.
 */
import { performance } from 'node:perf_hooks';
import type { AnnIndex, SearchHits } from '../retrieval/index/ann-index.js';
import { loadRetrievalSnapshot, type RetrievalSnapshot } from '../retrieval/index/encoder-snapshot.js';
import type { AnnIndexOptions } from '../retrieval/index/options.js';
import { BackgroundSealer } from '../retrieval/index/sealer.js';
import type { DualEncoder } from '../retrieval/towers.js';
import type { Features } from '../schemas/types.js';

/** What to retrieve for. */
export interface RetrieveQuery {
  features: Features;
  /** Item ids the user interacted with positively, oldest first. */
  history: readonly string[];
  k: number;
  /** Leave the history's items out of the answer. @default true */
  excludeHistory?: boolean;
}

/** Writes the item tower's vector of an item into `out` (its id row used when the encoder was trained on it). */
export function encodeItem(snapshot: Pick<RetrievalSnapshot, 'encoder' | 'knownItems'>, id: string, features: Features, out: Float32Array): void {
  snapshot.encoder.itemForward(snapshot.encoder.itemInput(id, features), snapshot.knownItems.has(id), out, 0);
}

/** Why an item is indexed: a profile (its vector is recomputed) or an event (indexed only when absent). */
export type IndexReason = 'profile' | 'event';

/** Counters of the service, for /metrics and logs. */
export interface RetrievalCounts {
  indexed: number;
  unchanged: number;
  retrieved: number;
}

export class RetrievalService {
  private snapshot: RetrievalSnapshot;
  private sealer: BackgroundSealer;
  private sealing = false;
  private itemOut: Float32Array;
  private userOut: Float32Array;
  readonly counts: RetrievalCounts = { indexed: 0, unchanged: 0, retrieved: 0 };
  /** Time of the last index write (performance.now()), for freshness checks. */
  lastIndexedAt = 0;
  /** Each item's features as last indexed: its latest profile's, else its first event's. */
  private readonly itemFeatures = new Map<string, Features>();
  /** While a rebuild runs (serving/retrieve-rebuild.ts): the items indexed meanwhile, for it to re-encode before the swap. */
  private indexedDuringRebuild: Set<string> | undefined;

  constructor(encoder: DualEncoder, knownItems: ReadonlySet<string>, index: AnnIndex) {
    this.snapshot = { encoder, knownItems, index };
    this.sealer = new BackgroundSealer(index);
    this.itemOut = new Float32Array(encoder.opts.dim);
    this.userOut = new Float32Array(encoder.opts.dim);
  }

  /** Loads a retrieval snapshot directory; `indexOverrides` may set efSearch and sealing options. */
  static async load(dir: string, indexOverrides: Partial<AnnIndexOptions> = {}): Promise<RetrievalService> {
    const snap = await loadRetrievalSnapshot(dir, indexOverrides);
    return new RetrievalService(snap.encoder, snap.knownItems, snap.index);
  }

  /** The towers in use. */
  get encoder(): DualEncoder {
    return this.snapshot.encoder;
  }

  /** The index in use. */
  get index(): AnnIndex {
    return this.snapshot.index;
  }

  /** Starts sealing in the background. */
  start(): void {
    this.sealing = true;
    this.sealer.start();
  }

  stop(): void {
    this.sealing = false;
    this.sealer.stop();
  }

  /** The ids of the items whose features the service holds (a copy: safe to iterate across turns). */
  itemsWithFeatures(): string[] {
    return [...this.itemFeatures.keys()];
  }

  /** Starts recording the items indexed from now on (until `swap` or `endRebuild`); returns the live set. */
  beginRebuild(): Set<string> {
    this.indexedDuringRebuild = new Set();
    return this.indexedDuringRebuild;
  }

  /** Whether a rebuild runs (between `beginRebuild` and `swap` or `endRebuild`). */
  get rebuilding(): boolean {
    return this.indexedDuringRebuild !== undefined;
  }

  /** Stops recording (a rebuild ended without a swap). */
  endRebuild(): void {
    this.indexedDuringRebuild = undefined;
  }

  /**
   * Serves `next` (towers and index) from now on: one assignment between two requests, so a request
   * sees the old pair or the new one, never a mix. The old index's sealer stops; the new one's
   * starts when the service was started. Ends a rebuild's recording.
   */
  swap(next: RetrievalSnapshot): void {
    this.sealer.stop();
    this.snapshot = next;
    this.sealer = new BackgroundSealer(next.index);
    if (this.sealing) this.sealer.start();
    this.itemOut = new Float32Array(next.encoder.opts.dim);
    this.userOut = new Float32Array(next.encoder.opts.dim);
    this.indexedDuringRebuild = undefined;
  }

  /** The item tower's vector of an item (a copy). */
  itemVector(id: string, features: Features): Float32Array {
    encodeItem(this.snapshot, id, features, this.itemOut);
    return this.itemOut.slice();
  }

  /**
   * Indexes an item: on an event only when the index does not hold it; on a profile whenever its
   * vector changed. Returns whether the index changed.
   */
  indexItem(id: string, features: Features, reason: IndexReason): boolean {
    if (reason === 'profile' || !this.itemFeatures.has(id)) {
      this.itemFeatures.set(id, features);
      this.indexedDuringRebuild?.add(id);
    }
    if (reason === 'event' && this.index.has(id)) {
      this.counts.unchanged++;
      return false;
    }
    const v = this.itemVector(id, features);
    if (reason === 'profile') {
      const current = this.index.vectorOf(id);
      if (current !== undefined && current.every((x, j) => x === v[j])) {
        this.counts.unchanged++;
        return false;
      }
    }
    this.index.upsert(id, v);
    this.counts.indexed++;
    this.lastIndexedAt = performance.now();
    return true;
  }

  /** The features an item was last indexed with (undefined: none seen since start). */
  featuresOf(id: string): Features | undefined {
    return this.itemFeatures.get(id);
  }

  /** The user tower's vector for `features` and `history` (a copy). */
  userVector(features: Features, history: readonly string[]): Float32Array {
    const { dim, historyLength } = this.encoder.opts;
    const mean = new Float32Array(dim);
    let n = 0;
    for (let i = history.length - 1; i >= 0 && n < historyLength; i--) {
      const v = this.index.vectorOf(history[i] ?? '');
      if (v === undefined) continue;
      for (let j = 0; j < dim; j++) mean[j] = (mean[j] ?? 0) + (v[j] ?? 0);
      n++;
    }
    if (n > 0) for (let j = 0; j < dim; j++) mean[j] = (mean[j] ?? 0) / n;
    this.encoder.userForward(this.encoder.userRows(features), mean, this.userOut, 0);
    return this.userOut.slice();
  }

  /** The k items of highest score for the query, best first. */
  retrieve(query: RetrieveQuery): SearchHits {
    const u = this.userVector(query.features, query.history);
    const exclude = query.excludeHistory === false ? undefined : new Set(query.history.filter((id) => this.index.has(id)));
    const extra = exclude?.size ?? 0;
    const hits = this.index.search(u, query.k + extra);
    this.counts.retrieved++;
    if (extra === 0 || exclude === undefined) return hits;
    const ids: string[] = [];
    const scores: number[] = [];
    for (let i = 0; i < hits.ids.length && ids.length < query.k; i++) {
      const id = hits.ids[i] ?? '';
      if (exclude.has(id)) continue;
      ids.push(id);
      scores.push(hits.scores[i] ?? 0);
    }
    return { ids, scores: Float32Array.from(scores) };
  }
}
