/**
 * Exact top-K: every candidate scored, the K best kept in a small binary min-heap. Ties go to the
 * lower index, so rankings are deterministic.
 */

/** Inner product of row `row` of the row-major `matrix` (width `dim`) with `vec`. */
export function dotRow(matrix: Float32Array, row: number, vec: Float32Array, dim: number): number {
  let s = 0;
  const base = row * dim;
  for (let j = 0; j < dim; j++) s += (matrix[base + j] ?? 0) * (vec[j] ?? 0);
  return s;
}

/** `a` ranks before `b`: higher score, then lower index. */
function better(sa: number, ia: number, sb: number, ib: number): boolean {
  return sa > sb || (sa === sb && ia < ib);
}

/**
 * Indices of the `k` highest of `scores` (best first), skipping indices in `exclude`.
 */
export function topK(scores: Float32Array | Float64Array, k: number, exclude?: ReadonlySet<number>): Int32Array {
  const heapIdx = new Int32Array(k);
  const heapScore = new Float64Array(k);
  let size = 0;
  // The heap's root is its worst entry.
  const siftDown = (start: number): void => {
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let w = i;
      if (l < size && better(heapScore[w] ?? 0, heapIdx[w] ?? 0, heapScore[l] ?? 0, heapIdx[l] ?? 0)) w = l;
      if (r < size && better(heapScore[w] ?? 0, heapIdx[w] ?? 0, heapScore[r] ?? 0, heapIdx[r] ?? 0)) w = r;
      if (w === i) return;
      const ti = heapIdx[i] ?? 0;
      const ts = heapScore[i] ?? 0;
      heapIdx[i] = heapIdx[w] ?? 0;
      heapScore[i] = heapScore[w] ?? 0;
      heapIdx[w] = ti;
      heapScore[w] = ts;
      i = w;
    }
  };
  for (let c = 0; c < scores.length; c++) {
    if (exclude?.has(c)) continue;
    const s = scores[c] ?? -Infinity;
    if (size < k) {
      // Sift up.
      let i = size++;
      heapIdx[i] = c;
      heapScore[i] = s;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!better(heapScore[p] ?? 0, heapIdx[p] ?? 0, heapScore[i] ?? 0, heapIdx[i] ?? 0)) break;
        const ti = heapIdx[i] ?? 0;
        const ts = heapScore[i] ?? 0;
        heapIdx[i] = heapIdx[p] ?? 0;
        heapScore[i] = heapScore[p] ?? 0;
        heapIdx[p] = ti;
        heapScore[p] = ts;
        i = p;
      }
    } else if (k > 0 && better(s, c, heapScore[0] ?? 0, heapIdx[0] ?? 0)) {
      heapIdx[0] = c;
      heapScore[0] = s;
      siftDown(0);
    }
  }
  const order = Array.from({ length: size }, (_, i) => i);
  order.sort((a, b) => (better(heapScore[a] ?? 0, heapIdx[a] ?? 0, heapScore[b] ?? 0, heapIdx[b] ?? 0) ? -1 : 1));
  return Int32Array.from(order, (i) => heapIdx[i] ?? 0);
}

/** Scores of every row of `items` (row-major, width `dim`) against `query`, into `out`. */
export function scoreAll(items: Float32Array, dim: number, query: Float32Array, out: Float32Array): Float32Array {
  const n = items.length / dim;
  for (let r = 0; r < n; r++) out[r] = dotRow(items, r, query, dim);
  return out;
}
