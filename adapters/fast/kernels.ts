/**
 * Typed-array kernels of the adapters' small-wave hand paths (adapters/fast/*): pooling of a row's
 * feature slots into fields and dense layers on one row. Float64 accumulation (the tf path is
 * float32; both agree to ~1e-6, the parity tests check 1e-5). Dense weights are used transposed
 * (`transposed`, made once per frozen model): each output is then a dot product over contiguous
 * memory, about twice as fast in V8 as accumulating into the output row by row.
 */
import type { FieldLayout, RowBatch } from '../../models/ctr-model.js';
import type { EmbeddingTable } from '../../models/embedding-table.js';

/**
 * Pooled non-ID fields of row `r` into out[(F-1)·W], field-major (models/ctr-model.ts `pool`:
 * Σ over the field's slots of weight × table row; padding slots have weight 0).
 */
export function poolRow(table: EmbeddingTable, layout: FieldLayout, b: RowBatch, r: number, out: Float64Array): void {
  const s = layout.slotField.length;
  const w = table.dim;
  const data = table.data;
  out.fill(0);
  for (let j = 0; j < s; j++) {
    const wt = b.featW[r * s + j]!;
    if (wt === 0) continue;
    const at = (layout.slotField[j]! - 1) * w;
    const row = b.featIdx[r * s + j]! * w;
    for (let k = 0; k < w; k++) out[at + k] = out[at + k]! + wt * data[row + k]!;
  }
}

/** w [n, m] row-major as its transpose [m, n], in float64. */
export function transposed(w: Float32Array, n: number, m: number): Float64Array {
  const t = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) t[j * n + i] = w[i * m + j]!;
  return t;
}

/** Σ_i a[ao+i]·b[bo+i] for i < n (4 accumulators). */
export function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += a[ao + i]! * b[bo + i]!;
    s1 += a[ao + i + 1]! * b[bo + i + 1]!;
    s2 += a[ao + i + 2]! * b[bo + i + 2]!;
    s3 += a[ao + i + 3]! * b[bo + i + 3]!;
  }
  for (; i < n; i++) s0 += a[ao + i]! * b[bo + i]!;
  return s0 + s1 + s2 + s3;
}

/** out[j] = bias[j] + Σ_i x[i]·w[i, j] for j < m, with wT = transposed(w) [m, n]. */
export function denseRow(x: Float64Array, n: number, wT: Float64Array, bias: Float32Array | undefined, m: number, out: Float64Array): void {
  for (let j = 0; j < m; j++) out[j] = (bias === undefined ? 0 : bias[j]!) + dot(wT, j * n, x, 0, n);
}

/** LeakyReLU in place on x[0, n). */
export function leakyInPlace(x: Float64Array, n: number, slope: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    if (v < 0) x[i] = v * slope;
  }
}

/**
 * Cached products of table rows with a field's block of a dense layer's weight w [in, m]: the
 * layer's pre-activation on a row's flattened pooled fields is Σ over the row's slots of
 * weight × P(table row, field), P = table row[0, len) · w[block of the field]. With one
 * (row, field) product cached, a row costs S·m adds instead of in·m multiply-adds (fixed-adaptive:
 * 11·64 instead of 144·64 for the first layer's non-user inputs). Same float64 sums in another
 * order (~1e-15 relative). At most `maxEntries` products are kept (8·m bytes each); beyond, they are
 * computed on the fly.
 */
export class RowProjections {
  private readonly cache = new Map<number, Float64Array>();
  private readonly scratch: Float64Array;

  /**
   * @param w the layer's weight [in, m], row-major
   * @param blockOf first input row of w for field f (f ≥ 1: the non-ID fields); its len rows are used
   * @param len table columns used per field (≤ table.dim)
   */
  constructor(
    private readonly table: EmbeddingTable,
    private readonly fields: number,
    private readonly w: Float32Array,
    private readonly m: number,
    private readonly blockOf: (field: number) => number,
    private readonly len: number,
    private readonly maxEntries = 1 << 16,
  ) {
    this.scratch = new Float64Array(m);
  }

  /** out[0, m) += Σ over row r's slots of weight × P(slot's table row, slot's field). */
  addRow(layout: FieldLayout, b: RowBatch, r: number, out: Float64Array): void {
    const s = layout.slotField.length;
    const m = this.m;
    for (let j = 0; j < s; j++) {
      const wt = b.featW[r * s + j]!;
      if (wt === 0) continue;
      const p = this.product(b.featIdx[r * s + j]!, layout.slotField[j]!);
      for (let k = 0; k < m; k++) out[k] = out[k]! + wt * p[k]!;
    }
  }

  private product(row: number, field: number): Float64Array {
    const key = row * this.fields + field;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const full = this.cache.size < this.maxEntries;
    const p = full ? new Float64Array(this.m) : this.scratch.fill(0);
    const m = this.m;
    const data = this.table.data;
    const at = row * this.table.dim;
    const blk = this.blockOf(field);
    for (let k = 0; k < this.len; k++) {
      const v = data[at + k]!;
      if (v === 0) continue;
      const wr = (blk + k) * m;
      for (let j = 0; j < m; j++) p[j] = p[j]! + v * this.w[wr + j]!;
    }
    if (full) this.cache.set(key, p);
    return p;
  }
}
