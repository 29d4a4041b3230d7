/**
 * The background sealer: moves the growing segment into the HNSW graph in small chunks, one chunk
 * per event-loop turn (`setImmediate`), so searches and Kafka handlers run between chunks and wait
 * at most one chunk (`sealChunk` items or `sealBudgetMs`, whichever ends first). It sleeps while the
 * segment holds fewer than `sealMinItems` and wakes on the next insert.
 *
 * Why not a worker thread: the graph is a native object of this thread; a worker would need its
 * own copy of the graph and a hand-over, and the bench (bench/retrieval) measures how long searches
 * wait behind a chunk, which is the cost this design pays instead.
 */
import type { AnnIndex } from './ann-index.js';

export interface SealerStats {
  /** Items sealed since start. */
  sealed: number;
  /** Chunks run. */
  chunks: number;
  /** Total time inside chunks (ms). */
  busyMs: number;
}

export class BackgroundSealer {
  private scheduled: NodeJS.Immediate | undefined;
  private running = false;
  private readonly counters: SealerStats = { sealed: 0, chunks: 0, busyMs: 0 };

  constructor(private readonly index: AnnIndex) {}

  /** Starts sealing whenever the growing segment holds enough items. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.index.onInsert(() => this.wake());
    this.wake();
  }

  /** Stops after the current chunk; the growing segment keeps what is left (still searched). */
  stop(): void {
    this.running = false;
    this.index.onInsert(undefined);
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
  }

  stats(): SealerStats {
    return { ...this.counters };
  }

  private wake(): void {
    if (!this.running || this.scheduled !== undefined) return;
    if (this.index.growingCount < this.index.opts.sealMinItems) return;
    this.scheduled = setImmediate(() => this.turn());
  }

  private turn(): void {
    this.scheduled = undefined;
    if (!this.running) return;
    const t0 = performance.now();
    const n = this.index.sealSome();
    this.counters.busyMs += performance.now() - t0;
    this.counters.sealed += n;
    this.counters.chunks++;
    if (this.index.growingCount > 0) this.scheduled = setImmediate(() => this.turn());
  }
}
