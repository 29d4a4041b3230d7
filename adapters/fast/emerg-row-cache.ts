/** The EmerG fast path's cache of feature-table rows times the frozen weights (adapters/fast/emerg.ts). */

/**
 * Lazily filled products of feature-table rows with the frozen weights h_0's pooled fields meet:
 * per (row, field) [row·W_0 … row·W_{L−1}, row·(Wv·Wres), row·Wqk[field block]], (L+1)·D + 2·ATT
 * floats, stored as float32 (relative rounding ~6e-8, far below the parity test's 1e-5).
 * Direct-mapped: (row, field) lives in slot row mod `slots`, tagged with both, recomputed on a
 * miss; at most ROW_CACHE_SLOTS slots (25 MB for D = 16, L = 3, ATT = 16).
 */
const ROW_CACHE_SLOTS = 1 << 16;

export class RowCache {
  readonly stride: number;
  readonly values: Float32Array;
  private readonly slots: number;
  private readonly tagRow: Int32Array;
  private readonly tagField: Int32Array;
  private readonly tmp: Float64Array;

  constructor(
    private readonly table: Float32Array,
    private readonly tableDim: number,
    rows: number,
    private readonly D: number,
    private readonly L: number,
    private readonly A2: number,
    /** W_l [D, D] row-major, then Wvr [D, D]. */
    private readonly mats: readonly Float32Array[],
    /** Wq|Wk [F·D, 2·ATT] row-major. */
    private readonly wqk: Float32Array,
  ) {
    this.stride = (L + 1) * D + A2;
    this.slots = Math.min(rows, ROW_CACHE_SLOTS);
    this.values = new Float32Array(this.slots * this.stride);
    this.tagRow = new Int32Array(this.slots).fill(-1);
    this.tagField = new Int32Array(this.slots);
    this.tmp = new Float64Array(this.stride);
  }

  /** Offset of (row, field)'s products in `values`, computed on a miss. */
  at(row: number, field: number): number {
    const slot = row % this.slots;
    const base = slot * this.stride;
    if (this.tagRow[slot] === row && this.tagField[slot] === field) return base;
    const { D, L, A2, table, tmp } = this;
    const src = row * this.tableDim;
    tmp.fill(0);
    for (let m = 0; m <= L; m++) {
      const w = this.mats[m]!;
      const o = m * D;
      for (let d = 0; d < D; d++) {
        const x = table[src + d]!;
        if (x === 0) continue;
        for (let e = 0; e < D; e++) tmp[o + e] = tmp[o + e]! + x * w[d * D + e]!;
      }
    }
    const o = (L + 1) * D;
    for (let d = 0; d < D; d++) {
      const x = table[src + d]!;
      if (x === 0) continue;
      const wr = (field * D + d) * A2;
      for (let c = 0; c < A2; c++) tmp[o + c] = tmp[o + c]! + x * this.wqk[wr + c]!;
    }
    this.values.set(tmp, base);
    this.tagRow[slot] = row;
    this.tagField[slot] = field;
    return base;
  }
}
