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
