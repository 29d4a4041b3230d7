/**
 * Plain-JS forward of the ColdNAS adapter for small waves (adapters/coldnas.ts uses it for waves of
 * at most `FAST_MAX_ROWS` rows). Mirrors models/coldnas.ts (`fields`, `modulation`, `modulate`,
 * `logits`, `encode`) and models/coldnas-common.ts (`flatFields`, `dense`, LEAKY); the parity test
 * (test/unit/adapters/fast-paths.test.ts) compares it with the tf path to 1e-5 and catches drift.
 *
 * Why it exists: a TensorFlow.js call costs a fixed ~0.5 ms here (wasm backend, 2-core host) before
 * any row is computed, and the worker calls the adapter once per wave, most of which hold a handful
 * of events (power-law popularity). Measured with bench/adapters/per-call.ts (wasm), predictThenAdapt
 * per call before any change: 0.70 ms for 1 event, 0.74 ms for 4, 1.51 ms for 32, 43 ms for 1024
 * (42 µs/event): small waves paid 15–20× the per-event cost of large ones. This path: 0.17–0.27 ms
 * for 1 event, 0.43 ms for 4, but ~150 µs/event at scale (plain JS does ~3 ns per multiply-add on
 * this host, wasm SIMD far less), hence only up to COLDNAS_FAST_MAX_ROWS. Only the modulation
 * columns of the ops a position uses are computed (one of four with a fixed structure), none when
 * the row's mean is all zeros (the bias alone: new users, the frozen `none` baseline), and the
 * interaction encoding adds cached per-(table row, field) products (kernels.ts RowProjections,
 * S·C adds instead of ~(F-1)·D·C multiply-adds); `encodeRow` alone serves
 * ColdNasAdapter.predictThenAdaptSequence.
 */
import type { RowBatch } from '../../models/ctr-model.js';
import type { ColdNas } from '../../models/coldnas.js';
import { LEAKY } from '../../models/coldnas-common.js';
import { denseRow, dot, leakyInPlace, poolRow, RowProjections, transposed } from './kernels.js';

export class ColdNasFastPath {
  private readonly m: ColdNas;
  /** Op weights [position][op] (the fixed structure's one-hot, or softmax of the supernet's alpha). */
  private readonly weights: number[][];
  /** Offset of each position inside one op's block of the modulation vector. */
  private readonly offsets: number[];
  private readonly x: Float64Array;
  private readonly y: Float64Array;
  private readonly q: Float64Array;
  private readonly acc: Float64Array;
  private readonly ctxIn: Float64Array;
  private readonly mean: Float64Array;
  /** Transposed weights (kernels.ts `transposed`): hidden layers, output layer, modulation. */
  private readonly wT: Float64Array[];
  private readonly outT: Float64Array;
  private readonly modT: Float64Array;
  /** The context encoder on the fields, per (table row, field) (kernels.ts RowProjections). */
  private readonly ctxProj: RowProjections;
  /** The label's row of `cn.ctx.w` [C]. */
  private readonly ctxLabel: Float32Array;
  /** True while the current row's mean is all zeros: its modulation is the bias alone (0·W = 0). */
  private zeroMean = false;

  constructor(model: ColdNas) {
    this.m = model;
    const ops = model.structure?.ops;
    if (ops !== undefined) {
      this.weights = ops.map((op) => (['max', 'min', 'multiply', 'add'] as const).map((o) => (o === op ? 1 : 0)));
    } else {
      // Softmax of the (frozen) architecture logits, as tf.softmax(alpha, 1).
      const a = model.arch.get('cn.alpha').data;
      this.weights = [0, 1, 2, 3].map((pos) => {
        const row = [0, 1, 2, 3].map((o) => a[pos * 4 + o]!);
        const mx = Math.max(...row);
        const e = row.map((v) => Math.exp(v - mx));
        const s = e.reduce((u, v) => u + v, 0);
        return e.map((v) => v / s);
      });
    }
    this.offsets = [];
    let off = 0;
    for (const d of model.positionDims) {
      this.offsets.push(off);
      off += d;
    }
    const widest = Math.max(...model.positionDims, model.contextDim);
    this.x = new Float64Array(widest);
    this.y = new Float64Array(widest);
    this.q = new Float64Array(widest);
    this.acc = new Float64Array(widest);
    this.ctxIn = new Float64Array(model.positionDims[0]! + 1);
    this.mean = new Float64Array(model.contextDim);
    const get = (n: string): Float32Array => model.dense.get(n).data;
    const dims = model.positionDims;
    this.wT = [0, 1, 2].map((i) => transposed(get(`cn.w${i}`), dims[i]!, dims[i + 1]!));
    this.outT = transposed(get('cn.wOut'), dims[3]!, 1);
    this.modT = transposed(get('cn.mod.w'), model.contextDim, 4 * model.modDim);
    const ctxW = get('cn.ctx.w');
    this.ctxProj = new RowProjections(model.table, model.layout.fieldNames.length, ctxW, model.contextDim, (g) => (g - 1) * model.dim, model.dim);
    this.ctxLabel = ctxW.subarray(dims[0]! * model.contextDim, (dims[0]! + 1) * model.contextDim);
  }

  /**
   * Logits of rows [0, b.n) into logits[at…] with the per-row mean encodings means (n × C);
   * with `enc`, also each row's interaction encoding into enc (n × C).
   */
  run(b: RowBatch, means: Float32Array, logits: Float32Array, at: number, enc?: Float32Array): void {
    const m = this.m;
    const c = m.contextDim;
    const d0 = m.positionDims[0]!;
    const p = (n: string): Float32Array => m.dense.get(n).data;
    const mean = this.mean;
    for (let r = 0; r < b.n; r++) {
      let zero = true;
      for (let k = 0; k < c; k++) {
        const v = means[r * c + k]!;
        mean[k] = v;
        if (v !== 0) zero = false;
      }
      this.zeroMean = zero;
      const fields = this.ctxIn;
      poolRow(m.table, m.layout, b, r, fields);
      // Position 0 on the fields, then 3 × (LeakyReLU, layer, modulate), LeakyReLU, output layer.
      this.modulate(fields, 0, mean, this.x);
      let width = d0;
      for (let i = 0; i < 3; i++) {
        leakyInPlace(this.x, width, LEAKY);
        const h = m.hidden[i]!;
        denseRow(this.x, width, this.wT[i]!, p(`cn.b${i}`), h, this.y);
        this.modulate(this.y, i + 1, mean, this.x);
        width = h;
      }
      leakyInPlace(this.x, width, LEAKY);
      denseRow(this.x, width, this.outT, p('cn.bOut'), 1, this.y);
      logits[at + r] = this.y[0] ?? 0;
      if (enc !== undefined) this.encodeRow(b, r, enc, r * c);
    }
  }

  /**
   * Interaction encoding of row r into enc[at, at+C) (models/coldnas.ts `encode`):
   * LeakyReLU(b + label·w[label row] + Σ slots weight × cached (table row · w[field block])).
   */
  encodeRow(b: RowBatch, r: number, enc: Float32Array, at: number): void {
    const m = this.m;
    const c = m.contextDim;
    const y = this.y;
    const cb = m.dense.get('cn.ctx.b').data;
    const label = b.label[r]!;
    for (let k = 0; k < c; k++) y[k] = cb[k]! + label * this.ctxLabel[k]!;
    this.ctxProj.addRow(m.layout, b, r, y);
    leakyInPlace(y, c, LEAKY);
    for (let k = 0; k < c; k++) enc[at + k] = y[k]!;
  }

  /** out[0, d) = the position's op mixture applied to x[0, d) with this row's modulation. */
  private modulate(x: Float64Array, pos: number, mean: Float64Array, out: Float64Array): void {
    const m = this.m;
    const d = m.positionDims[pos]!;
    const c = m.contextDim;
    const modT = this.modT;
    const bias = m.dense.get('cn.mod.b').data;
    const { q, acc } = this;
    let used = false;
    for (let op = 0; op < 4; op++) {
      const wt = this.weights[pos]![op]!;
      if (wt === 0) continue;
      // q = mean · cn.mod.w[:, cols of (op, pos)] + cn.mod.b[those cols]
      const from = op * m.modDim + this.offsets[pos]!;
      if (this.zeroMean) for (let k = 0; k < d; k++) q[k] = bias[from + k]!;
      else for (let k = 0; k < d; k++) q[k] = bias[from + k]! + dot(modT, (from + k) * c, mean, 0, c);
      for (let k = 0; k < d; k++) {
        const xv = x[k]!;
        const qv = q[k]!;
        let t = op === 0 ? Math.max(xv, qv) : op === 1 ? Math.min(xv, qv) : op === 2 ? xv * (qv + 1) : xv + qv;
        if (wt !== 1) t *= wt;
        acc[k] = used ? acc[k]! + t : t;
      }
      used = true;
    }
    for (let k = 0; k < d; k++) out[k] = used ? acc[k]! : x[k]!;
  }
}
