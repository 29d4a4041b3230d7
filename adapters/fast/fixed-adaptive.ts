/**
 * Plain-JS forward and backward of the fixed-adaptive adapter for small waves
 * (adapters/fixed-adaptive.ts uses it for waves of at most `FAST_MAX_ROWS` rows): each row's logit z
 * of the DeepFM backbone and ∂z/∂θ for the user's adaptive values θ (the D+1 values of field 0's
 * row). Mirrors models/deepfm.ts `head` (first-order + FM pairwise + ReLU MLP + bias) and
 * models/ctr-model.ts `pooledOf`; the parity test (test/unit/adapters/fast-paths.test.ts) compares
 * logits and gradients with the tf path (tf.valueAndGrads) to 1e-5 and catches drift.
 *
 * Backward to one input row: ∂first/∂θ_D = 1; ∂fm/∂v0_d = Σ_f v_f,d − v0_d; the MLP's part is
 * wOut pulled back through the ReLU layers (a few matrix-vector products), read at field 0's inputs.
 *
 * Why it exists: a TensorFlow.js forward+backward costs a fixed ~0.6 ms here (wasm backend, 2-core
 * host) before any row is computed, and the worker calls the adapter once per wave, most of which
 * hold a handful of events (power-law popularity). Measured with bench/adapters/per-call.ts (wasm),
 * predictThenAdapt per call before any change: 0.80 ms for 1 event, 0.95 ms for 4, 1.59 ms for 32,
 * 46 ms for 1024 (45 µs/event): small waves paid 5–18× the per-event cost of large ones. This path
 * (same host, same time): 0.07 ms for 1 event, 0.15 ms for 4, 1.3 ms for 32, 38 ms for 1024.
 * The first hidden layer now takes the non-user fields from cached per-(table row, field)
 * products (kernels.ts RowProjections: S·H adds instead of (F-1)·D·H multiply-adds), which made
 * this path faster than tf at every wave size (numbers at FIXED_ADAPTIVE_FAST_MAX_ROWS).
 */
import type { RowBatch } from '../../models/ctr-model.js';
import type { DeepFm } from '../../models/deepfm.js';
import { denseRow, dot, poolRow, RowProjections, transposed } from './kernels.js';

export class FixedAdaptiveFastPath {
  private readonly bb: DeepFm;
  private readonly f: number;
  private readonly pooled: Float64Array;
  /** Activations per layer: acts[0] = MLP input (F·D), acts[i+1] = output of hidden layer i (post-ReLU). */
  private readonly acts: Float64Array[];
  private readonly grad: Float64Array[];
  /** Hidden layers' weights: transposed (forward) and as stored [in, out] in float64 (backward). */
  private readonly wT: Float64Array[];
  private readonly w: Float64Array[];
  private readonly wOut: Float64Array;
  /** First hidden layer on the non-user fields, per (table row, field) (kernels.ts RowProjections); undefined without hidden layers. */
  private readonly proj: RowProjections | undefined;
  /** b0 + θ·W0[θ rows] for the last θ seen (lastTheta), valid once computed. */
  private readonly thetaPart: Float64Array;
  private readonly lastTheta: Float64Array;
  private thetaValid = false;

  constructor(backbone: DeepFm) {
    this.bb = backbone;
    this.f = backbone.layout.fieldNames.length;
    this.pooled = new Float64Array((this.f - 1) * backbone.width);
    const sizes = [this.f * backbone.dim, ...backbone.hidden];
    this.acts = sizes.map((s) => new Float64Array(s));
    this.grad = sizes.map((s) => new Float64Array(s));
    const get = (n: string): Float32Array => backbone.dense.get(n).data;
    this.wT = backbone.hidden.map((h, i) => transposed(get(`fm.w${i}`), sizes[i]!, h));
    this.w = backbone.hidden.map((_, i) => Float64Array.from(get(`fm.w${i}`)));
    this.wOut = Float64Array.from(get('fm.wOut'));
    const d = backbone.dim;
    this.thetaPart = new Float64Array(backbone.hidden[0] ?? 0);
    this.lastTheta = new Float64Array(d);
    this.proj = backbone.hidden.length === 0 ? undefined : new RowProjections(backbone.table, this.f, get('fm.w0'), backbone.hidden[0]!, (g) => g * d, d);
  }

  /**
   * Logits of rows [0, b.n) into z, the row's user values being users[r·P, (r+1)·P) (P = D+1);
   * with `dz`, also ∂z_r/∂θ_r into dz (n × P).
   */
  run(b: RowBatch, users: Float32Array, z: Float64Array, dz?: Float64Array): void {
    const w = this.bb.width;
    for (let r = 0; r < b.n; r++) this.row(b, r, users, r * w, z, r, dz, r * w);
  }

  /**
   * Row r's logit into z[zAt] with the user values users[u, u+P); with `dz`, ∂z/∂θ into
   * dz[dzAt, dzAt+P). `users` may be the user's live state (adapters/fixed-adaptive.ts
   * `predictThenAdaptSequence` steps it between rows).
   */
  row(b: RowBatch, r: number, users: Float32Array, u: number, z: Float64Array, zAt: number, dz: Float64Array | undefined, dzAt: number): void {
    const bb = this.bb;
    const d = bb.dim;
    const w = bb.width;
    const f = this.f;
    const hidden = bb.hidden;
    const p = (n: string): Float32Array => bb.dense.get(n).data;
    const pooled = this.pooled;
    const x0 = this.acts[0]!;
    poolRow(bb.table, bb.layout, b, r, pooled);
    // h = [θ; pooled] [F, D+1]: v = its first D columns (flattened field-major = the MLP input).
    let first = users[u + d]!;
    for (let k = 0; k < d; k++) x0[k] = users[u + k]!;
    for (let g = 1; g < f; g++) {
      const at = (g - 1) * w;
      for (let k = 0; k < d; k++) x0[g * d + k] = pooled[at + k]!;
      first += pooled[at + d]!;
    }
    let fm = 0;
    for (let k = 0; k < d; k++) {
      let s = 0;
      let sq = 0;
      for (let g = 0; g < f; g++) {
        const v = x0[g * d + k]!;
        s += v;
        sq += v * v;
      }
      fm += s * s - sq;
    }
    fm *= 0.5;
    let inW = f * d;
    for (let i = 0; i < hidden.length; i++) {
      const h = hidden[i]!;
      const out = this.acts[i + 1]!;
      if (i === 0) {
        // User inputs (the D values of θ) by their weights, the other fields by cached products.
        // θ's part is kept while consecutive rows carry the same θ (the frozen baseline: every
        // user at fa.init; a new user's first event): the same arithmetic, done once.
        const tp = this.thetaPart;
        const last = this.lastTheta;
        let same = this.thetaValid;
        for (let k = 0; k < d && same; k++) same = last[k] === x0[k];
        if (!same) {
          const wT = this.wT[0]!;
          const b0 = p('fm.b0');
          for (let j = 0; j < h; j++) tp[j] = b0[j]! + dot(wT, j * inW, x0, 0, d);
          for (let k = 0; k < d; k++) last[k] = x0[k]!;
          this.thetaValid = true;
        }
        for (let j = 0; j < h; j++) out[j] = tp[j]!;
        this.proj!.addRow(bb.layout, b, r, out);
      } else {
        denseRow(this.acts[i]!, inW, this.wT[i]!, p(`fm.b${i}`), h, out);
      }
      for (let j = 0; j < h; j++) if (!(out[j]! > 0)) out[j] = 0;
      inW = h;
    }
    const wOut = this.wOut;
    const mlp = dot(wOut, 0, this.acts[hidden.length]!, 0, inW);
    z[zAt] = mlp + fm + first + p('fm.bias')[0]!;
    if (dz === undefined) return;
    // Backward: g = ∂mlp/∂(layer output), pulled back through ReLU and each layer's weights.
    let g = this.grad[hidden.length]!;
    for (let j = 0; j < inW; j++) g[j] = wOut[j]!;
    for (let i = hidden.length - 1; i >= 0; i--) {
      const h = hidden[i]!;
      const post = this.acts[i + 1]!;
      for (let j = 0; j < h; j++) if (!(post[j]! > 0)) g[j] = 0; // ReLU: gradient 0 where the output is 0
      const wt = this.w[i]!;
      const below = this.grad[i]!;
      // Only field 0's inputs are needed from the first layer.
      const n = i === 0 ? d : hidden[i - 1]!;
      for (let a = 0; a < n; a++) below[a] = dot(wt, a * h, g, 0, h);
      g = below;
    }
    const at = dzAt;
    for (let k = 0; k < d; k++) {
      let sumV = 0;
      for (let q = 0; q < f; q++) sumV += x0[q * d + k]!;
      dz[at + k] = g[k]! + sumV - x0[k]!;
    }
    dz[at + d] = 1;
  }
}
