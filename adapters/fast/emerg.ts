/**
 * Plain-JS forward of a frozen EmerG release (readout 'layers') and its backward to ONE item's own
 * parameters: its ID embedding e (W values) and its F×F graph A. adapters/emerg.ts uses it for
 * waves of at most `fastMaxRows` rows; the parity test (test/unit/adapters/fast-emerg.test.ts)
 * compares scores and adapted states with the tf path (models/emerg.ts `head` under tf.valueAndGrads).
 *
 * Why it exists: the worker calls the adapter once per WAVE (the k-th event of each item goes to
 * wave k), and with power-law item popularity the average wave holds few events whatever the
 * micro-batch size. A tf.valueAndGrads call of EmerG runs ~150 kernels (forward, backward, gradient
 * bookkeeping) whose fixed cost dominated: a CPU profile of the synthetic curves run showed tf-core
 * dispatch and tape code, not arithmetic (per-call figures: bench/adapters, `npm run bench -- --only spine`).
 *
 * Mirrors models/emerg.ts `head`/`layerReadout` (per row b):
 *   full = [e; pooled fields] (F×W); h0 = full[:, :D]; first = Σ_f full[f][D] (firstOrder)
 *   u_l = h0·W_l; a_l = A·u_l (LeakyReLU 0.01 but on the last layer); h_{l+1} = a_l ⊙ h_l
 *   tokens t = 0..L: q_t = vec(h_t)·Wq, k_t = vec(h_t)·Wk; att = softmax_s(q_t·k_s / √ATT)
 *   v_t[f] = h_t[f]·Wv; m_t = Σ_s att[t][s] v_s; o_t[f] = m_t[f]·Wres + bres
 *   fin[f] = relu(Σ_t relu(o_t[f])); score[f] = fin[f]·ws; wt = σ(vec(fin)·Wout)
 *   logit = Σ_f wt[f]·score[f] + bias + first
 * with three exact rewrites that halve the work (same values up to float rounding, ~1e-7):
 * - the value and residual projections are folded: o_t[f] = Σ_s att[t][s]·z_s[f] + bres with
 *   z_s[f] = h_s[f]·(Wv·Wres), one D×D product per (token, field) instead of two;
 * - the backward only computes what reaches e and A: of dh_0 only field 0 (the pooled fields are
 *   constants), of du_l only field 0 (u_l[0] = e·W_l);
 * - the products of a feature-table row with the weights that h_0's pooled fields meet (W_l, Wv·Wres,
 *   the field's block of Wq|Wk) are cached per (table row, field) (`RowCache`, emerg-row-cache.ts), so a row's pooled
 *   fields cost S·(3D + D + 2·ATT) adds instead of (F−1)·D·(3D + D) + (F−1)·D·2·ATT multiply-adds.
 * Per row this leaves about 34k multiply-adds forward and 37k backward (F = 10, D = 16, L = 3).
 * The token projections of layers 1..L run three tokens × two weight rows per pass (`dot3x2`: each
 * load feeds two or three multiply-adds; emerg-dots.ts). Still scalar JS: on large waves
 * TensorFlow.js's SIMD kernels cost less per row (bench/adapters/per-call.ts), hence the adapter's
 * fastMaxRows bound.
 */
import type { RowBatch } from '../../models/ctr-model.js';
import type { Emerg } from '../../models/emerg.js';
import { ThawError } from '../../lib/errors.js';
import { dot3, dot3x2, dotA, dotW, transposed32 } from './emerg-dots.js';
import { RowCache } from './emerg-row-cache.js';

const LEAKY = 0.01;

export class EmergFastPath {
  private readonly m: Emerg;
  private readonly F: number;
  private readonly D: number;
  private readonly W: number;
  private readonly L: number;
  private readonly T: number;
  private readonly A: number;
  private readonly first: boolean;
  // Weights, float32 as released (Wv·Wres rounded to float32): W_l [D, D] as stored and transposed;
  // Wq|Wk side by side [F·D, 2A] and transposed; Wv·Wres [D, D] and transposed; Wout and transposed.
  private readonly gnn: Float32Array[];
  private readonly gnnT: Float32Array[];
  private readonly wqk: Float32Array;
  private readonly wqkT: Float32Array;
  private readonly wvr: Float32Array;
  private readonly wvrT: Float32Array;
  private readonly bres: Float32Array;
  private readonly ws: Float32Array;
  private readonly wout: Float32Array;
  private readonly woutT: Float32Array;
  private readonly bias: number;
  private readonly cache: RowCache;
  // Scratch (one row at a time), float64.
  private readonly graph: Float64Array;
  /** h_t, t = 0..L, at t·F·D. */
  private readonly h: Float64Array;
  /** u_l, pre-activation of a_l and post-activation a_l, at l·F·D. */
  private readonly u: Float64Array;
  private readonly aPre: Float64Array;
  private readonly aPost: Float64Array;
  /** q_t|k_t per token, 2A each. */
  private readonly qk: Float64Array;
  /** z_t per token, F·D each. */
  private readonly z: Float64Array;
  private readonly att: Float64Array;
  private readonly o: Float64Array;
  private readonly fin: Float64Array;
  private readonly score: Float64Array;
  private readonly wt: Float64Array;
  // Backward scratch.
  /** dLoss/dh_t at t·F·D (of h_0 only field 0). */
  private readonly dh: Float64Array;
  private readonly dfin: Float64Array;
  private readonly dS: Float64Array;
  private readonly dO: Float64Array;
  private readonly dz: Float64Array;
  private readonly dqk: Float64Array;
  private readonly datt: Float64Array;
  private readonly dg: Float64Array;
  private readonly da: Float64Array;
  private readonly du0: Float64Array;
  private rowsOf: Float64Array = new Float64Array(0);

  constructor(model: Emerg) {
    if (model.readout !== 'layers') throw new ThawError('MODEL_ERROR', "emerg fast path: only readout 'layers'");
    this.m = model;
    const F = (this.F = model.numFields);
    const D = (this.D = model.dim);
    this.W = model.width;
    const L = (this.L = model.layers);
    const T = (this.T = L + 1);
    this.first = model.firstOrder;
    const get = (n: string): Float32Array => model.dense.get(n).data;
    const fd = F * D;
    const A = (this.A = get('att.wq').length / fd);
    const A2 = 2 * A;
    this.gnn = [];
    this.gnnT = [];
    for (let l = 0; l < L; l++) {
      this.gnn.push(Float32Array.from(get(`gnn.w${l}`)));
      this.gnnT.push(transposed32(get(`gnn.w${l}`), D, D));
    }
    const wq = get('att.wq');
    const wk = get('att.wk');
    this.wqk = new Float32Array(fd * A2);
    for (let x = 0; x < fd; x++) {
      for (let c = 0; c < A; c++) {
        this.wqk[x * A2 + c] = wq[x * A + c]!;
        this.wqk[x * A2 + A + c] = wk[x * A + c]!;
      }
    }
    this.wqkT = transposed32(this.wqk, fd, A2);
    const wv = get('att.wv');
    const wres = get('att.wres');
    this.wvr = new Float32Array(D * D);
    for (let d = 0; d < D; d++) {
      for (let e = 0; e < D; e++) {
        let s = 0;
        for (let k = 0; k < D; k++) s += wv[d * D + k]! * wres[k * D + e]!;
        this.wvr[d * D + e] = s;
      }
    }
    this.wvrT = transposed32(this.wvr, D, D);
    this.bres = Float32Array.from(get('att.bres'));
    this.ws = Float32Array.from(get('out.score'));
    this.wout = Float32Array.from(get('out.weight'));
    this.woutT = transposed32(get('out.weight'), fd, F);
    this.bias = get('out.bias')[0]!;
    this.cache = new RowCache(model.table.data, model.table.dim, model.table.rows, D, L, A2, [...this.gnn, this.wvr], this.wqk);
    this.graph = new Float64Array(F * F);
    this.h = new Float64Array(T * fd);
    this.u = new Float64Array(L * fd);
    this.aPre = new Float64Array(L * fd);
    this.aPost = new Float64Array(L * fd);
    this.qk = new Float64Array(T * A2);
    this.z = new Float64Array(T * fd);
    this.att = new Float64Array(T * T);
    this.o = new Float64Array(T * fd);
    this.fin = new Float64Array(fd);
    this.score = new Float64Array(F);
    this.wt = new Float64Array(F);
    this.dh = new Float64Array(T * fd);
    this.dfin = new Float64Array(fd);
    this.dS = new Float64Array(fd);
    this.dO = new Float64Array(fd);
    this.dz = new Float64Array(T * fd);
    this.dqk = new Float64Array(T * A2);
    this.datt = new Float64Array(T * T);
    this.dg = new Float64Array(F);
    this.da = new Float64Array(fd);
    this.du0 = new Float64Array(D);
  }

  /**
   * Scores rows [0, b.n) of `b` into out[at + r]; row r uses e = idEmb[r·W…], A = graph[r·F²…]
   * (entity b.entity[r] of the wave). With `gId`/`gGraph`, also adds each entity's gradient of its
   * mean log loss over its rows with respect to its e and A there (row-major, one row per entity,
   * like the tf path's scatter; models/ctr-model.ts perEntityMeanWeights). With `offset`, row r's
   * logit gains offset[r] (terms outside the model: the adapter's biases), in the scores and the loss.
   */
  run(b: RowBatch, idEmb: Float32Array, graph: Float32Array, out: Float32Array, at: number, gId?: Float32Array, gGraph?: Float32Array, offset?: Float32Array): void {
    const { W, F } = this;
    const G = F * F;
    const learn = gId !== undefined && gGraph !== undefined;
    if (learn) {
      const count = idEmb.length / W;
      if (this.rowsOf.length < count) this.rowsOf = new Float64Array(count);
      this.rowsOf.fill(0, 0, count);
      for (let r = 0; r < b.n; r++) {
        const e = b.entity[r]!;
        this.rowsOf[e] = this.rowsOf[e]! + 1;
      }
    }
    for (let r = 0; r < b.n; r++) {
      const ent = b.entity[r]!;
      const z = this.forward(b, r, idEmb, ent * W, graph, ent * G) + (offset?.[r] ?? 0);
      const p = 1 / (1 + Math.exp(-z));
      out[at + r] = p;
      if (learn) this.backward((p - b.label[r]!) / this.rowsOf[ent]!, gId, ent * W, gGraph, ent * G);
    }
  }

  /** Forward of row r; keeps every activation for `backward`; returns the logit. */
  private forward(b: RowBatch, r: number, idEmb: Float32Array, eAt: number, graph: Float32Array, gAt: number): number {
    const { F, D, L, T } = this;
    const A2 = 2 * this.A;
    const fd = F * D;
    const m = this.m;
    const slotField = m.layout.slotField;
    const S = slotField.length;
    const table = m.table.data;
    const tw = m.table.dim;
    const cache = this.cache;
    const cv = cache.values;
    const { h, u, qk, z } = this;
    const wvrOff = L * D;
    const qkOff = (L + 1) * D;
    // Token 0: field 0 = e, computed; pooled fields 1..F-1 summed from the cached row products.
    h.fill(0, 0, fd);
    u.fill(0);
    z.fill(0, 0, fd);
    qk.fill(0, 0, A2);
    let first = 0;
    for (let j = 0; j < S; j++) {
      const wt = b.featW[r * S + j]!;
      if (wt === 0) continue;
      const f = slotField[j]!;
      const row = b.featIdx[r * S + j]!;
      const src = row * tw;
      const fo = f * D;
      for (let d = 0; d < D; d++) h[fo + d] = h[fo + d]! + wt * table[src + d]!;
      if (this.first) first += wt * table[src + D]!;
      const c = cache.at(row, f);
      for (let l = 0; l < L; l++) {
        const uo = l * fd + fo;
        const co = c + l * D;
        for (let e = 0; e < D; e++) u[uo + e] = u[uo + e]! + wt * cv[co + e]!;
      }
      for (let e = 0; e < D; e++) z[fo + e] = z[fo + e]! + wt * cv[c + wvrOff + e]!;
      for (let k = 0; k < A2; k++) qk[k] = qk[k]! + wt * cv[c + qkOff + k]!;
    }
    for (let d = 0; d < D; d++) h[d] = idEmb[eAt + d]!;
    if (this.first) first += idEmb[eAt + D]!;
    for (let l = 0; l < L; l++) {
      const wT = this.gnnT[l]!;
      for (let e = 0; e < D; e++) u[l * fd + e] = dotW(wT, e * D, h, 0, D);
    }
    for (let e = 0; e < D; e++) z[e] = dotW(this.wvrT, e * D, h, 0, D);
    for (let k = 0; k < A2; k++) qk[k] = qk[k]! + dotW(this.wqkT, k * fd, h, 0, D);
    const Ag = this.graph;
    for (let i = 0; i < F * F; i++) Ag[i] = graph[gAt + i]!;
    // GNN layers.
    const { aPre: pre, aPost: post } = this;
    for (let l = 0; l < L; l++) {
      const lo = l * fd;
      const last = l === L - 1;
      // pre[i] = Σ_j A[i][j]·u[j], four columns at a time in registers.
      for (let i = 0; i < F; i++) {
        const io = lo + i * D;
        const ao = i * F;
        let e = 0;
        for (; e + 3 < D; e += 4) {
          let s0 = 0;
          let s1 = 0;
          let s2 = 0;
          let s3 = 0;
          for (let j = 0; j < F; j++) {
            const aij = Ag[ao + j]!;
            const jo = lo + j * D + e;
            s0 += aij * u[jo]!;
            s1 += aij * u[jo + 1]!;
            s2 += aij * u[jo + 2]!;
            s3 += aij * u[jo + 3]!;
          }
          pre[io + e] = s0;
          pre[io + e + 1] = s1;
          pre[io + e + 2] = s2;
          pre[io + e + 3] = s3;
        }
        for (; e < D; e++) {
          let s0 = 0;
          for (let j = 0; j < F; j++) s0 += Ag[ao + j]! * u[lo + j * D + e]!;
          pre[io + e] = s0;
        }
      }
      for (let x = 0; x < fd; x++) {
        const v = pre[lo + x]!;
        const a = last || v > 0 ? v : v * LEAKY;
        post[lo + x] = a;
        h[lo + fd + x] = a * h[lo + x]!;
      }
    }
    // Layer attention readout (tokens 1..L; token 0's q|k and z came from the cache above).
    const { wqkT, wvrT } = this;
    let t = 1;
    for (; t + 2 < T; t += 3) {
      let k = 0;
      for (; k + 1 < A2; k += 2) dot3x2(wqkT, k * fd, fd, h, t * fd, fd, fd, qk, t * A2 + k, A2);
      for (; k < A2; k++) dot3(wqkT, k * fd, h, t * fd, fd, fd, qk, t * A2 + k, A2, false);
      for (let f = 0; f < F; f++) {
        let e = 0;
        for (; e + 1 < D; e += 2) dot3x2(wvrT, e * D, D, h, t * fd + f * D, fd, D, z, t * fd + f * D + e, fd);
        for (; e < D; e++) dot3(wvrT, e * D, h, t * fd + f * D, fd, D, z, t * fd + f * D + e, fd, false);
      }
    }
    for (; t < T; t++) {
      for (let k = 0; k < A2; k++) qk[t * A2 + k] = dotW(wqkT, k * fd, h, t * fd, fd);
      for (let f = 0; f < F; f++) for (let e = 0; e < D; e++) z[t * fd + f * D + e] = dotW(wvrT, e * D, h, t * fd + f * D, D);
    }
    const A = this.A;
    const att = this.att;
    const scale = 1 / Math.sqrt(A);
    for (let t = 0; t < T; t++) {
      let mx = -Infinity;
      for (let s = 0; s < T; s++) {
        const x = dotA(qk, t * A2, qk, s * A2 + A, A) * scale;
        att[t * T + s] = x;
        if (x > mx) mx = x;
      }
      let sum = 0;
      for (let s = 0; s < T; s++) {
        const x = Math.exp(att[t * T + s]! - mx);
        att[t * T + s] = x;
        sum += x;
      }
      for (let s = 0; s < T; s++) att[t * T + s] = att[t * T + s]! / sum;
    }
    const { o, fin, bres } = this;
    fin.fill(0);
    for (let t = 0; t < T; t++) {
      const to = t * fd;
      for (let f = 0; f < F; f++) for (let e = 0; e < D; e++) o[to + f * D + e] = bres[e]!;
      for (let s = 0; s < T; s++) {
        const w = att[t * T + s]!;
        const so = s * fd;
        for (let x = 0; x < fd; x++) o[to + x] = o[to + x]! + w * z[so + x]!;
      }
      for (let x = 0; x < fd; x++) {
        const v = o[to + x]!;
        if (v > 0) fin[x] = fin[x]! + v;
      }
    }
    // fin holds S = Σ_t relu(o_t); relu(S) = S since S ≥ 0.
    let logit = this.bias + first;
    for (let f = 0; f < F; f++) {
      const sc = dotW(this.ws, 0, fin, f * D, D);
      this.score[f] = sc;
      const w = 1 / (1 + Math.exp(-dotW(this.woutT, f * fd, fin, 0, fd)));
      this.wt[f] = w;
      logit += w * sc;
    }
    return logit;
  }

  /** Adds the gradient of the row's log loss (dz = p − y) w.r.t. e and A at gId[eAt…], gGraph[gAt…]. */
  private backward(dzl: number, gId: Float32Array, eAt: number, gGraph: Float32Array, gAt: number): void {
    const { F, D, L, T, A } = this;
    const A2 = 2 * A;
    const fd = F * D;
    const { fin, o, att, z, qk, dfin, dS, dO, dz, dqk, datt, dg, dh } = this;
    if (this.first) gId[eAt + D] = gId[eAt + D]! + dzl;
    // Output layer: logit = Σ_f wt_f·score_f, wt = σ(vec(fin)·Wout), score_f = fin_f·ws.
    for (let f = 0; f < F; f++) {
      const w = this.wt[f]!;
      dg[f] = dzl * this.score[f]! * w * (1 - w);
    }
    for (let f = 0; f < F; f++) {
      const dsc = dzl * this.wt[f]!;
      for (let d = 0; d < D; d++) {
        const x = f * D + d;
        dfin[x] = dsc * this.ws[d]! + dotW(this.wout, x * F, dg, 0, F);
      }
    }
    for (let x = 0; x < fd; x++) dS[x] = fin[x]! > 0 ? dfin[x]! : 0;
    // o_t = Σ_s att[t][s]·z_s + bres: dz_s = Σ_t att[t][s]·do_t, datt[t][s] = do_t·z_s.
    dz.fill(0);
    for (let t = 0; t < T; t++) {
      const to = t * fd;
      for (let x = 0; x < fd; x++) dO[x] = o[to + x]! > 0 ? dS[x]! : 0;
      for (let s = 0; s < T; s++) {
        const so = s * fd;
        datt[t * T + s] = dotA(dO, 0, z, so, fd);
        const w = att[t * T + s]!;
        for (let x = 0; x < fd; x++) dz[so + x] = dz[so + x]! + w * dO[x]!;
      }
    }
    // Softmax and the scaled dot products q_t·k_s.
    const scale = 1 / Math.sqrt(A);
    dqk.fill(0);
    for (let t = 0; t < T; t++) {
      let s0 = 0;
      for (let s = 0; s < T; s++) s0 += att[t * T + s]! * datt[t * T + s]!;
      for (let s = 0; s < T; s++) {
        const dl = att[t * T + s]! * (datt[t * T + s]! - s0) * scale;
        if (dl === 0) continue;
        const tq = t * A2;
        const sk = s * A2 + A;
        for (let c = 0; c < A; c++) {
          dqk[tq + c] = dqk[tq + c]! + dl * qk[sk + c]!;
          dqk[sk + c] = dqk[sk + c]! + dl * qk[tq + c]!;
        }
      }
    }
    // Back to the tokens h_t through q|k (vec(h_t)·Wqk) and z (h_t[f]·Wvr); of h_0 only field 0.
    const { wqk, wvr } = this;
    for (let x = 0; x < D; x++) dh[x] = dotW(wqk, x * A2, dqk, 0, A2);
    for (let d = 0; d < D; d++) dh[d] = dh[d]! + dotW(wvr, d * D, dz, 0, D);
    let t = 1;
    for (; t + 2 < T; t += 3) {
      let x = 0;
      for (; x + 1 < fd; x += 2) dot3x2(wqk, x * A2, A2, dqk, t * A2, A2, A2, dh, t * fd + x, fd);
      for (; x < fd; x++) dot3(wqk, x * A2, dqk, t * A2, A2, A2, dh, t * fd + x, fd, false);
      for (let f = 0; f < F; f++) for (let d = 0; d < D; d++) dot3(wvr, d * D, dz, t * fd + f * D, fd, D, dh, t * fd + f * D + d, fd, true);
    }
    for (; t < T; t++) {
      for (let x = 0; x < fd; x++) dh[t * fd + x] = dotW(wqk, x * A2, dqk, t * A2, A2);
      for (let f = 0; f < F; f++) for (let d = 0; d < D; d++) dh[t * fd + f * D + d] = dh[t * fd + f * D + d]! + dotW(wvr, d * D, dz, t * fd + f * D, D);
    }
    // GNN layers, last to first: h_{l+1} = a_l ⊙ h_l, a_l = act(A·u_l), u_l = h0·W_l.
    const Ag = this.graph;
    const { da, du0, h, u, aPre: pre, aPost: post } = this;
    for (let l = L - 1; l >= 0; l--) {
      const lo = l * fd;
      const no = lo + fd;
      const last = l === L - 1;
      const nPrev = l === 0 ? D : fd;
      for (let x = 0; x < fd; x++) {
        const g = dh[no + x]!;
        if (x < nPrev) dh[lo + x] = dh[lo + x]! + g * post[lo + x]!;
        const dPost = g * h[lo + x]!;
        da[x] = last || pre[lo + x]! > 0 ? dPost : dPost * LEAKY;
      }
      // dA[i][j] += da[i]·u[j]; du[0] = Σ_i A[i][0]·da[i] (only u's field 0 depends on e).
      du0.fill(0);
      for (let i = 0; i < F; i++) {
        const io = i * D;
        for (let j = 0; j < F; j++) gGraph[gAt + i * F + j] = gGraph[gAt + i * F + j]! + dotA(da, io, u, lo + j * D, D);
        const ai0 = Ag[i * F]!;
        if (ai0 !== 0) for (let e = 0; e < D; e++) du0[e] = du0[e]! + ai0 * da[io + e]!;
      }
      const w = this.gnn[l]!;
      for (let d = 0; d < D; d++) dh[d] = dh[d]! + dotW(w, d * D, du0, 0, D);
    }
    for (let d = 0; d < D; d++) gId[eAt + d] = gId[eAt + d]! + dh[d]!;
  }
}
