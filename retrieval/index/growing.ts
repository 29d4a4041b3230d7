/**
 * The growing segment: the items inserted since the last seal, searched exactly. Row-major
 * Float32Array (one item's `dim` floats contiguous), labels beside them; a delete swaps the last
 * row into the hole, so the rows stay dense and a scan never skips.
 *
 * Row-major with four accumulators was chosen over dim-major (one column per dimension,
 * `out[r] += col[r]·q[j]`): faster in every measurement (V8 vectorises neither; the row loop keeps
 * four sums in registers). `npm run bench -- --only retrieval` prints both layouts' scans.
 */

/** Inner product of row `row` of `rows` (width `dim`) with `q`, four accumulators. */
export function dot4(rows: Float32Array, row: number, q: Float32Array, dim: number): number {
  const b = row * dim;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (; j + 3 < dim; j += 4) {
    s0 += (rows[b + j] ?? 0) * (q[j] ?? 0);
    s1 += (rows[b + j + 1] ?? 0) * (q[j + 1] ?? 0);
    s2 += (rows[b + j + 2] ?? 0) * (q[j + 2] ?? 0);
    s3 += (rows[b + j + 3] ?? 0) * (q[j + 3] ?? 0);
  }
  for (; j < dim; j++) s0 += (rows[b + j] ?? 0) * (q[j] ?? 0);
  return s0 + s1 + s2 + s3;
}

export class GrowingSegment {
  private rows: Float32Array;
  private labels: Int32Array;
  private readonly slotOf = new Map<number, number>();
  private n = 0;

  constructor(
    readonly dim: number,
    capacity = 1024,
  ) {
    this.rows = new Float32Array(Math.max(1, capacity) * dim);
    this.labels = new Int32Array(Math.max(1, capacity));
  }

  /** Items held. */
  get count(): number {
    return this.n;
  }

  has(label: number): boolean {
    return this.slotOf.has(label);
  }

  /** Label of slot `slot` (< count). */
  labelAt(slot: number): number {
    return this.labels[slot] ?? -1;
  }

  /** The `dim` floats of slot `slot`, a view (valid until the next write). */
  rowAt(slot: number): Float32Array {
    return this.rows.subarray(slot * this.dim, (slot + 1) * this.dim);
  }

  /** The vector of `label`, a copy; undefined when not held. */
  vectorOf(label: number): Float32Array | undefined {
    const slot = this.slotOf.get(label);
    return slot === undefined ? undefined : this.rowAt(slot).slice();
  }

  /** Adds `label` with `vector`, or overwrites its row when held. */
  put(label: number, vector: ArrayLike<number>): void {
    let slot = this.slotOf.get(label);
    if (slot === undefined) {
      if (this.n === this.labels.length) this.grow();
      slot = this.n++;
      this.labels[slot] = label;
      this.slotOf.set(label, slot);
    }
    this.rows.set(vector, slot * this.dim);
  }

  /** Removes `label`; false when it was not held. */
  remove(label: number): boolean {
    const slot = this.slotOf.get(label);
    if (slot === undefined) return false;
    const last = this.n - 1;
    if (slot !== last) {
      const moved = this.labels[last] ?? -1;
      this.rows.copyWithin(slot * this.dim, last * this.dim, (last + 1) * this.dim);
      this.labels[slot] = moved;
      this.slotOf.set(moved, slot);
    }
    this.slotOf.delete(label);
    this.n = last;
    return true;
  }

  /**
   * Scores of every held item against `q`, into `out` (length ≥ count); returns `out`'s first
   * `count` entries.
   */
  scoreAll(q: Float32Array, out: Float32Array): Float32Array {
    for (let r = 0; r < this.n; r++) out[r] = dot4(this.rows, r, q, this.dim);
    return out.subarray(0, this.n);
  }

  /** Rows and labels of the held items, in slot order (for snapshots). */
  export(): { rows: Float32Array; labels: Int32Array } {
    return { rows: this.rows.slice(0, this.n * this.dim), labels: this.labels.slice(0, this.n) };
  }

  /** Replaces the content with `rows`/`labels` in that slot order (a snapshot's). */
  import(rows: Float32Array, labels: Int32Array): void {
    const n = labels.length;
    this.rows = new Float32Array(Math.max(1, n, this.labels.length) * this.dim);
    this.rows.set(rows.subarray(0, n * this.dim));
    this.labels = new Int32Array(Math.max(1, n, this.labels.length));
    this.labels.set(labels);
    this.slotOf.clear();
    for (let s = 0; s < n; s++) this.slotOf.set(labels[s] ?? -1, s);
    this.n = n;
  }

  private grow(): void {
    const rows = new Float32Array(this.rows.length * 2);
    rows.set(this.rows);
    this.rows = rows;
    const labels = new Int32Array(this.labels.length * 2);
    labels.set(this.labels);
    this.labels = labels;
  }
}
