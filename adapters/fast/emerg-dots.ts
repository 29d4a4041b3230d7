/** The EmerG fast path's inner products, unrolled by hand (adapters/fast/emerg.ts): float32 weights against float64 activations. */

/** w [n, m] row-major as its transpose [m, n], float32. */
export function transposed32(w: Float32Array, n: number, m: number): Float32Array {
  const t = new Float32Array(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) t[j * n + i] = w[i * m + j]!;
  return t;
}

/** Σ_i w[wo+i]·a[ao+i] for i < n: a float32 weight row against float64 activations. */
export function dotW(w: Float32Array, wo: number, a: Float64Array, ao: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    s0 += w[wo + i]! * a[ao + i]!;
    s1 += w[wo + i + 1]! * a[ao + i + 1]!;
  }
  if (i < n) s0 += w[wo + i]! * a[ao + i]!;
  return s0 + s1;
}

/** Σ_i a[ao+i]·b[bo+i] for i < n, float64. */
export function dotA(a: Float64Array, ao: number, b: Float64Array, bo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    s0 += a[ao + i]! * b[bo + i]!;
    s1 += a[ao + i + 1]! * b[bo + i + 1]!;
  }
  if (i < n) s0 += a[ao + i]! * b[bo + i]!;
  return s0 + s1;
}

/**
 * Three dot products of one weight row w[wo, wo+n) with a[ao + k·as, … + n), k = 0..2, into
 * out[oo + k·os] (added to it with `add`): each weight is loaded once for three products.
 */
export function dot3(w: Float32Array, wo: number, a: Float64Array, ao: number, as: number, n: number, out: Float64Array, oo: number, os: number, add: boolean): void {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  const a1 = ao + as;
  const a2 = a1 + as;
  for (let i = 0; i < n; i++) {
    const x = w[wo + i]!;
    s0 += x * a[ao + i]!;
    s1 += x * a[a1 + i]!;
    s2 += x * a[a2 + i]!;
  }
  if (add) {
    out[oo] = out[oo]! + s0;
    out[oo + os] = out[oo + os]! + s1;
    out[oo + 2 * os] = out[oo + 2 * os]! + s2;
  } else {
    out[oo] = s0;
    out[oo + os] = s1;
    out[oo + 2 * os] = s2;
  }
}

/**
 * dot3 of two weight rows w[wo…] and w[wo + ws…] at once: out[oo + k·os] and out[oo + 1 + k·os]
 * (k = 0..2); each activation is loaded once for two products.
 */
export function dot3x2(w: Float32Array, wo: number, ws: number, a: Float64Array, ao: number, as: number, n: number, out: Float64Array, oo: number, os: number): void {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let r0 = 0;
  let r1 = 0;
  let r2 = 0;
  const a1 = ao + as;
  const a2 = a1 + as;
  const wp = wo + ws;
  for (let i = 0; i < n; i++) {
    const x = w[wo + i]!;
    const y = w[wp + i]!;
    const p = a[ao + i]!;
    const q = a[a1 + i]!;
    const r = a[a2 + i]!;
    s0 += x * p;
    s1 += x * q;
    s2 += x * r;
    r0 += y * p;
    r1 += y * q;
    r2 += y * r;
  }
  out[oo] = s0;
  out[oo + os] = s1;
  out[oo + 2 * os] = s2;
  out[oo + 1] = r0;
  out[oo + 1 + os] = r1;
  out[oo + 1 + 2 * os] = r2;
}
