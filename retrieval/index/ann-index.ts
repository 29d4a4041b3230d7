/**
 * An ANN index that takes new items at once and serves them at once (the design of Milvus and
 * Lucene): a new or changed item goes into the GROWING segment (retrieval/index/growing.ts),
 * searched exactly, and is later SEALED into an HNSW graph (hnswlib-node) by `sealSome`, which the
 * background sealer (retrieval/index/sealer.ts) calls in small time-budgeted chunks between
 * searches. A search asks both and merges: every live item sits in exactly one of the two at any
 * moment (a seal moves an item within one synchronous step), so it is found once, never twice.
 *
 * Scores are inner products (the towers output unit vectors: cosine). Ids are strings mapped to
 * dense numeric labels that are never reused, so a label names one id for the index's life.
 *
 * Deletes are tombstones honoured by both parts: a sealed item is marked deleted in the graph
 * (hnswlib `markDelete`: it still routes searches, never appears in results); a growing one leaves
 * the segment. A re-insert of an existing id (a changed vector) is delete + insert: the new vector
 * goes to the growing segment, and sealing it revives the graph node with the new vector
 * (hnswlib's `addPoint` on an existing label updates the node and its links).
 */
import { performance } from 'node:perf_hooks';
import { ThawError } from '../../lib/errors.js';
import { topK } from '../exact-search.js';
import { GrowingSegment } from './growing.js';
import { loadHnsw, type HnswFactory, type HnswGraph } from './hnsw.js';
import { resolveAnnIndexOptions, type AnnIndexOptions, type ResolvedAnnIndexOptions } from './options.js';

/** Where a label's live vector is. */
export const Place = {
  /** Never inserted, or deleted. */
  None: 0,
  Growing: 1,
  Sealed: 2,
} as const;

/** The k best items of a search, best first. */
export interface SearchHits {
  ids: string[];
  scores: Float32Array;
}

/** Counts of an index. */
export interface AnnIndexStats {
  /** Live items (growing + sealed). */
  items: number;
  growing: number;
  sealed: number;
  /** Graph nodes marked deleted (tombstones awaiting a rebuild). */
  tombstones: number;
  /** Graph capacity (nodes). */
  capacity: number;
}

/** The parts a snapshot holds (retrieval/index/snapshot.ts). */
export interface AnnIndexParts {
  ids: readonly string[];
  place: Uint8Array;
  inGraph: Uint8Array;
  growingRows: Float32Array;
  growingLabels: Int32Array;
}

export class AnnIndex {
  readonly opts: ResolvedAnnIndexOptions;
  readonly dim: number;
  private readonly ids: string[] = [];
  private readonly labelOf = new Map<string, number>();
  private place = new Uint8Array(1024);
  /** 1 when the label has a node in the graph (live or marked deleted). */
  private inGraph = new Uint8Array(1024);
  private readonly segment: GrowingSegment;
  private sealedLive = 0;
  private tombstones = 0;
  private scratch = new Float32Array(1024);
  private readonly query: number[];
  private insertListener: (() => void) | undefined;

  private constructor(
    opts: ResolvedAnnIndexOptions,
    private readonly graph: HnswGraph,
  ) {
    this.opts = opts;
    this.dim = opts.dim;
    this.segment = new GrowingSegment(opts.dim);
    this.query = new Array<number>(opts.dim).fill(0);
  }

  /** An empty index; INDEX_UNAVAILABLE when hnswlib-node is missing, CONFIG_INVALID on a bad option. */
  static async create(options: AnnIndexOptions): Promise<AnnIndex> {
    const opts = resolveAnnIndexOptions(options);
    const factory = await loadHnsw();
    const graph = factory(opts.dim);
    graph.initIndex({ maxElements: opts.initialCapacity, m: opts.m, efConstruction: opts.efConstruction, randomSeed: opts.seed });
    graph.setEf(opts.efSearch);
    return new AnnIndex(opts, graph);
  }

  /** An index over a graph read by `load` (snapshot restore) and the saved parts. */
  static async restore(options: AnnIndexOptions, load: (graph: HnswGraph) => void, parts: AnnIndexParts): Promise<AnnIndex> {
    const opts = resolveAnnIndexOptions(options);
    const factory: HnswFactory = await loadHnsw();
    const graph = factory(opts.dim);
    load(graph);
    graph.setEf(opts.efSearch);
    const index = new AnnIndex(opts, graph);
    index.adopt(parts);
    return index;
  }

  /** Called after every insert (the sealer's wake-up). */
  onInsert(listener: (() => void) | undefined): void {
    this.insertListener = listener;
  }

  stats(): AnnIndexStats {
    return { items: this.segment.count + this.sealedLive, growing: this.segment.count, sealed: this.sealedLive, tombstones: this.tombstones, capacity: this.graph.getMaxElements() };
  }

  /** Items in the growing segment (not yet sealed). */
  get growingCount(): number {
    return this.segment.count;
  }

  has(id: string): boolean {
    const label = this.labelOf.get(id);
    return label !== undefined && this.place[label] !== Place.None;
  }

  /** The live vector of `id` (a copy), undefined when absent. */
  vectorOf(id: string): Float32Array | undefined {
    const label = this.labelOf.get(id);
    if (label === undefined) return undefined;
    const where = this.place[label];
    if (where === Place.Growing) return this.segment.vectorOf(label);
    if (where === Place.Sealed) return Float32Array.from(this.graph.getPoint(label));
    return undefined;
  }

  /**
   * Inserts `id` with `vector` into the growing segment (searchable at once). An id already live
   * is replaced: its graph node, if any, is tombstoned until the new vector is sealed.
   */
  upsert(id: string, vector: ArrayLike<number>): void {
    this.checkDim(vector);
    const label = this.labelFor(id);
    if (this.place[label] === Place.Sealed) this.tombstone(label);
    this.segment.put(label, vector);
    this.place[label] = Place.Growing;
    this.insertListener?.();
  }

  /** Inserts straight into the graph (a bulk build: no growing segment). Replaces a live id. */
  upsertSealed(id: string, vector: ArrayLike<number>): void {
    this.checkDim(vector);
    const label = this.labelFor(id);
    if (this.place[label] === Place.Growing) this.segment.remove(label);
    else if (this.place[label] === Place.Sealed) this.sealedLive--;
    this.addToGraph(label, Array.from(vector));
  }

  /** Deletes `id`; false when it was not live. */
  delete(id: string): boolean {
    const label = this.labelOf.get(id);
    if (label === undefined) return false;
    const where = this.place[label];
    if (where === Place.Growing) {
      this.segment.remove(label);
      this.place[label] = Place.None;
      return true;
    }
    if (where === Place.Sealed) {
      this.tombstone(label);
      this.place[label] = Place.None;
      return true;
    }
    return false;
  }

  /**
   * Seals up to `maxItems` growing items into the graph, stopping once `budgetMs` is spent (at
   * least one item when any is waiting). Returns how many were sealed.
   */
  sealSome(maxItems: number = this.opts.sealChunk, budgetMs: number = this.opts.sealBudgetMs): number {
    const t0 = performance.now();
    let sealed = 0;
    while (sealed < maxItems && this.segment.count > 0) {
      const slot = this.segment.count - 1;
      const label = this.segment.labelAt(slot);
      const vector = Array.from(this.segment.rowAt(slot));
      this.addToGraph(label, vector);
      this.segment.remove(label);
      sealed++;
      if (performance.now() - t0 >= budgetMs) break;
    }
    return sealed;
  }

  /** Seals every growing item now (blocking). */
  sealAll(): number {
    let n = 0;
    while (this.segment.count > 0) n += this.sealSome(Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY);
    return n;
  }

  /**
   * The `k` items of highest inner product with `query`, best first (ties: the lower label, i.e.
   * the earlier inserted id). `ef` overrides the graph's candidate list (raised to k).
   */
  search(query: ArrayLike<number>, k: number, ef: number = this.opts.efSearch): SearchHits {
    this.checkDim(query);
    if (!Number.isInteger(k) || k < 1) throw new ThawError('USAGE', `k must be a positive integer, got ${k}`);
    const q = query instanceof Float32Array ? query : Float32Array.from(query);
    // Sealed part.
    let gLabels: number[] = [];
    let gDist: number[] = [];
    if (this.sealedLive > 0) {
      const kk = Math.min(k, this.graph.getMaxElements());
      const wantEf = Math.max(ef, kk);
      if (this.graph.getEf() !== wantEf) this.graph.setEf(wantEf);
      for (let j = 0; j < this.dim; j++) this.query[j] = q[j] ?? 0;
      const res = this.graph.searchKnn(this.query, kk);
      gLabels = res.neighbors;
      gDist = res.distances;
    }
    // Growing part, exact.
    const n = this.segment.count;
    let sSlots: Int32Array = new Int32Array(0);
    let sScores: Float32Array = new Float32Array(0);
    if (n > 0) {
      if (this.scratch.length < n) this.scratch = new Float32Array(Math.max(n, this.scratch.length * 2));
      sScores = this.segment.scoreAll(q, this.scratch);
      sSlots = topK(sScores, Math.min(k, n));
    }
    // Merge two lists that are each best first.
    const total = Math.min(k, gLabels.length + sSlots.length);
    const ids = new Array<string>(total);
    const scores = new Float32Array(total);
    let gi = 0;
    let si = 0;
    for (let o = 0; o < total; o++) {
      const gLabel = gLabels[gi];
      const gScore = gLabel === undefined ? -Infinity : 1 - (gDist[gi] ?? 0);
      const sSlot = sSlots[si];
      const sLabel = sSlot === undefined ? -1 : this.segment.labelAt(sSlot);
      const sScore = sSlot === undefined ? -Infinity : (sScores[sSlot] ?? -Infinity);
      const takeGraph = sSlot === undefined || (gLabel !== undefined && (gScore > sScore || (gScore === sScore && gLabel < sLabel)));
      const label = takeGraph ? (gLabel ?? -1) : sLabel;
      scores[o] = takeGraph ? gScore : sScore;
      ids[o] = this.ids[label] ?? '';
      if (takeGraph) gi++;
      else si++;
    }
    return { ids, scores };
  }

  /** Writes the graph with `write` and returns the other parts (retrieval/index/snapshot.ts). */
  parts(write: (graph: HnswGraph) => void): AnnIndexParts {
    write(this.graph);
    const { rows, labels } = this.segment.export();
    const count = this.ids.length;
    return { ids: this.ids.slice(), place: this.place.slice(0, count), inGraph: this.inGraph.slice(0, count), growingRows: rows, growingLabels: labels };
  }

  private adopt(parts: AnnIndexParts): void {
    const count = parts.ids.length;
    if (parts.place.length !== count || parts.inGraph.length !== count)
      throw new ThawError('INDEX_CORRUPT', `the snapshot's id map holds ${count} ids but ${parts.place.length} places and ${parts.inGraph.length} graph flags`);
    this.ensureLabels(count);
    for (let label = 0; label < count; label++) {
      const id = parts.ids[label] ?? '';
      this.ids.push(id);
      this.labelOf.set(id, label);
      const where = parts.place[label] ?? 0;
      this.place[label] = where;
      this.inGraph[label] = parts.inGraph[label] ?? 0;
      if (where === Place.Sealed) this.sealedLive++;
      else if (this.inGraph[label] === 1) this.tombstones++;
    }
    for (const label of parts.growingLabels) {
      if (this.place[label] !== Place.Growing) throw new ThawError('INDEX_CORRUPT', `the snapshot's growing segment holds label ${label}, which its id map does not place there`);
    }
    this.segment.import(parts.growingRows, parts.growingLabels);
    if (this.graph.getCurrentCount() !== this.sealedLive + this.tombstones) {
      throw new ThawError('INDEX_CORRUPT', `the snapshot's graph holds ${this.graph.getCurrentCount()} nodes, its id map ${this.sealedLive + this.tombstones}`);
    }
  }

  private addToGraph(label: number, vector: number[]): void {
    if (this.inGraph[label] !== 1 && this.graph.getCurrentCount() >= this.graph.getMaxElements()) {
      this.graph.resizeIndex(Math.max(this.graph.getMaxElements() * 2, 1024));
    }
    // An existing node (a tombstone of an earlier vector) is revived and updated by addPoint.
    if (this.inGraph[label] === 1 && this.place[label] !== Place.Sealed) this.tombstones--;
    this.graph.addPoint(vector, label);
    this.inGraph[label] = 1;
    this.place[label] = Place.Sealed;
    this.sealedLive++;
  }

  private tombstone(label: number): void {
    this.graph.markDelete(label);
    this.sealedLive--;
    this.tombstones++;
  }

  private labelFor(id: string): number {
    let label = this.labelOf.get(id);
    if (label === undefined) {
      label = this.ids.length;
      this.ensureLabels(label + 1);
      this.ids.push(id);
      this.labelOf.set(id, label);
    }
    return label;
  }

  private ensureLabels(n: number): void {
    if (n <= this.place.length) return;
    let size = this.place.length;
    while (size < n) size *= 2;
    const place = new Uint8Array(size);
    place.set(this.place);
    this.place = place;
    const inGraph = new Uint8Array(size);
    inGraph.set(this.inGraph);
    this.inGraph = inGraph;
  }

  private checkDim(v: ArrayLike<number>): void {
    if (v.length !== this.dim) throw new ThawError('USAGE', `vectors of this index have ${this.dim} floats, got ${v.length}`);
  }
}
