/**
 * RocketQA's cross-batch negatives, on one process: the item vectors of the last `batches`
 * micro-batches, kept (as constants) in a FIFO queue and offered to the loss as extra negatives.
 * RocketQA shares them across GPUs within a step; here they come from earlier steps, so they are up
 * to `batches` updates stale.
 */

export class CrossBatchQueue {
  private readonly vectors: Float32Array[] = [];
  private readonly ids: Int32Array[] = [];

  /** @param batches how many past micro-batches are kept (0: none, in-batch negatives only). */
  constructor(
    private readonly batches: number,
    private readonly dim: number,
  ) {}

  /** Adds a micro-batch's item vectors (copied) and their catalogue indices; drops the oldest beyond capacity. */
  push(vectors: Float32Array, ids: Int32Array): void {
    if (this.batches === 0) return;
    this.vectors.push(vectors.slice());
    this.ids.push(ids.slice());
    while (this.vectors.length > this.batches) {
      this.vectors.shift();
      this.ids.shift();
    }
  }

  /** All queued vectors (rows of width dim) and their ids, oldest first. */
  snapshot(): { vectors: Float32Array; ids: Int32Array } {
    const n = this.ids.reduce((s, a) => s + a.length, 0);
    const vectors = new Float32Array(n * this.dim);
    const ids = new Int32Array(n);
    let at = 0;
    this.vectors.forEach((v, k) => {
      vectors.set(v, at * this.dim);
      const batchIds = this.ids[k] ?? new Int32Array(0);
      ids.set(batchIds, at);
      at += batchIds.length;
    });
    return { vectors, ids };
  }
}
