/**
 * Plain-JS forward of a frozen EmerG release (readout 'layers') and its backward to ONE item's own
 * parameters: its ID embedding e (W values) and its F×F graph A. adapters/emerg.ts uses it for
 * waves of at most `fastMaxRows` rows; the parity test (test/unit/adapters/fast-emerg.test.ts)
 * compares scores and gradients with the tf path (models/emerg.ts `head` under tf.valueAndGrads).
 *
 * Why it exists: the worker calls the adapter once per WAVE (the k-th event of each item goes to
 * wave k), and with power-law item popularity the average wave holds about 1/p(hottest item)
 * events whatever the micro-batch size. A tf.valueAndGrads call of EmerG runs ~150 kernels
 * (forward, backward, gradient bookkeeping) whose fixed cost dominated: a CPU profile of the
 * synthetic curves run (10,000 items) showed tf-core dispatch and tape code, not arithmetic, and the
 * `emerg` worker ran at 1,570 events/s. Per row this path costs about 3·(L·(F·D² + F²·D) +
 * 2·T·F·D·A + 2·T·F·D² + F²·D) multiply-adds (~165k for F = 10, D = 16, L = 3, A = 16), so large waves
 * stay on TensorFlow.js (numbers in adapters/emerg.ts EMERG_FAST_MAX_ROWS).
 *
 * Mirrors models/emerg.ts `head`/`layerReadout` exactly (per row b):
 *   full = [e; pooled fields] (F×W); h0 = full[:, :D]; first = Σ_f full[f][D] (firstOrder)
 *   u_l = h0·W_l; a_l = A·u_l (LeakyReLU 0.01 but on the last layer); h_{l+1} = a_l ⊙ h_l
 *   tokens t = 0..L: q_t = vec(h_t)·Wq, k_t = vec(h_t)·Wk; att = softmax_s(q_t·k_s / √ATT)
 *   v_t[f] = h_t[f]·Wv; m_t = Σ_s att[t][s] v_s; o_t[f] = m_t[f]·Wres + bres
 *   fin[f] = relu(Σ_t relu(o_t[f])); score[f] = fin[f]·ws; wt = σ(vec(fin)·Wout)
 *   logit = Σ_f wt[f]·score[f] + bias + first
 */
import type { RowBatch } from '../../models/ctr-model.js';
import type { Emerg } from '../../models/emerg.js';
import { ThawError } from '../../lib/errors.js';
import { dot, poolRow, transposed } from './kernels.js';

const LEAKY = 0.01;

function f64(a: Float32Array): Float64Array {
  return Float64Array.from(a);
}

export class EmergFastPath {
  private readonly m: Emerg;
  private readonly F: number;
  private readonly D: number;
  private readonly W: number;
  private readonly L: number;
  private readonly T: number;
  private readonly A: number;
  private readonly first: boolean;
  // Weights: as stored [in, out] (backward) and transposed [out, in] (forward dot products).
  private readonly gnn: Float64Array[];
  private readonly gnnT: Float64Array[];
  private readonly wq: Float64Array;
  private readonly wqT: Float64Array;
  private readonly wk: Float64Array;
  private readonly wkT: Float64Array;
  private readonly wv: Float64Array;
  private readonly wvT: Float64Array;
  private readonly wres: Float64Array;
  private readonly wresT: Float64Array;
  private readonly bres: Float64Array;
  private readonly ws: Float64Array;
  private readonly wout: Float64Array;
  private readonly woutT: Float64Array;
  private readonly bias: number;
  // Scratch (one row at a time).
  private readonly pooled: Float64Array;
  private readonly graph: Float64Array;
  /** h_t, t = 0..L, each F·D. */
  private readonly h: Float64Array[];
  /** u_l and the pre-activation of a_l, post-activation a_l, each F·D. */
  private readonly u: Float64Array[];
  private readonly aPre: Float64Array[];
  private readonly aPost: Float64Array[];
  private readonly q: Float64Array;
  private readonly k: Float64Array;
  private readonly v: Float64Array;
  private readonly att: Float64Array;
  private readonly mixed: Float64Array;
  private readonly o: Float64Array;
  private readonly fin: Float64Array;
  private readonly score: Float64Array;
  private readonly wt: Float64Array;
  // Backward scratch.
  private readonly dh: Float64Array[];
  private readonly dfin: Float64Array;
  private readonly dS: Float64Array;
  private readonly dmixed: Float64Array;
  private readonly dv: Float64Array;
  private readonly dq: Float64Array;
  private readonly dk: Float64Array;
  private readonly datt: Float64Array;
  private readonly da: Float64Array;
  private readonly du: Float64Array;
  private readonly tmp: Float64Array;

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
    this.gnn = [];
    this.gnnT = [];
    for (let l = 0; l < L; l++) {
      this.gnn.push(f64(get(`gnn.w${l}`)));
      this.gnnT.push(transposed(get(`gnn.w${l}`), D, D));
    }
    this.wq = f64(get('att.wq'));
    this.wqT = transposed(get('att.wq'), fd, A);
    this.wk = f64(get('att.wk'));
    this.wkT = transposed(get('att.wk'), fd, A);
    this.wv = f64(get('att.wv'));
    this.wvT = transposed(get('att.wv'), D, D);
    this.wres = f64(get('att.wres'));
    this.wresT = transposed(get('att.wres'), D, D);
    this.bres = f64(get('att.bres'));
    this.ws = f64(get('out.score'));
    this.wout = f64(get('out.weight'));
    this.woutT = transposed(get('out.weight'), fd, F);
    this.bias = get('out.bias')[0]!;
    this.pooled = new Float64Array((F - 1) * this.W);
    this.graph = new Float64Array(F * F);
    this.h = Array.from({ length: T }, () => new Float64Array(fd));
    this.u = Array.from({ length: L }, () => new Float64Array(fd));
    this.aPre = Array.from({ length: L }, () => new Float64Array(fd));
    this.aPost = Array.from({ length: L }, () => new Float64Array(fd));
    this.q = new Float64Array(T * A);
    this.k = new Float64Array(T * A);
    this.v = new Float64Array(T * fd);
    this.att = new Float64Array(T * T);
    this.mixed = new Float64Array(T * fd);
    this.o = new Float64Array(T * fd);
    this.fin = new Float64Array(fd);
    this.score = new Float64Array(F);
    this.wt = new Float64Array(F);
    this.dh = Array.from({ length: T }, () => new Float64Array(fd));
    this.dfin = new Float64Array(fd);
    this.dS = new Float64Array(fd);
    this.dmixed = new Float64Array(T * fd);
    this.dv = new Float64Array(T * fd);
    this.dq = new Float64Array(T * A);
    this.dk = new Float64Array(T * A);
    this.datt = new Float64Array(T * T);
    this.da = new Float64Array(fd);
    this.du = new Float64Array(fd);
    this.tmp = new Float64Array(Math.max(fd, A, D));
  }

  /**
   * Scores rows [0, b.n) of `b` into out[at + r]; row r uses e = idEmb[r·W…], A = graph[r·F²…]
   * (entity r of the wave). With `gId`/`gGraph`, also writes each row's gradient of its log loss
   * with respect to its e and A there (row-major, one row per entity, like the tf path's scatter
   * with one row per entity).
   */
  run(b: RowBatch, idEmb: Float32Array, graph: Float32Array, out: Float32Array, at: number, gId?: Float32Array, gGraph?: Float32Array): void {
    const { W, F } = this;
    const G = F * F;
    const learn = gId !== undefined && gGraph !== undefined;
    // The loss is each entity's MEAN over its rows (models/ctr-model.ts perEntityMeanWeights).
    const rows = new Map<number, number>();
    if (learn) for (let r = 0; r < b.n; r++) rows.set(b.entity[r]!, (rows.get(b.entity[r]!) ?? 0) + 1);
    for (let r = 0; r < b.n; r++) {
      const ent = b.entity[r]!;
      const z = this.forward(b, r, idEmb, ent * W, graph, ent * G);
      const p = 1 / (1 + Math.exp(-z));
      out[at + r] = p;
      if (learn) this.backward((p - b.label[r]!) / rows.get(ent)!, gId, ent * W, gGraph, ent * G);
    }
  }

  /** Forward of row r; keeps every activation for `backward`; returns the logit. */
  private forward(b: RowBatch, r: number, idEmb: Float32Array, eAt: number, graph: Float32Array, gAt: number): number {
    const { F, D, W, L, T, A } = this;
    const fd = F * D;
    poolRow(this.m.table, this.m.layout, b, r, this.pooled);
    const h0 = this.h[0]!;
    let first = 0;
    for (let d = 0; d < D; d++) h0[d] = idEmb[eAt + d]!;
    if (this.first) first += idEmb[eAt + D]!;
    for (let f = 1; f < F; f++) {
      const src = (f - 1) * W;
      for (let d = 0; d < D; d++) h0[f * D + d] = this.pooled[src + d]!;
      if (this.first) first += this.pooled[src + D]!;
    }
    const Ag = this.graph;
    for (let i = 0; i < F * F; i++) Ag[i] = graph[gAt + i]!;
    // GNN layers.
    for (let l = 0; l < L; l++) {
      const u = this.u[l]!;
      const wT = this.gnnT[l]!;
      for (let f = 0; f < F; f++) for (let e = 0; e < D; e++) u[f * D + e] = dot(wT, e * D, h0, f * D, D);
      const pre = this.aPre[l]!;
      const post = this.aPost[l]!;
      pre.fill(0);
      for (let i = 0; i < F; i++) {
        for (let j = 0; j < F; j++) {
          const aij = Ag[i * F + j]!;
          if (aij === 0) continue;
          for (let e = 0; e < D; e++) pre[i * D + e] = pre[i * D + e]! + aij * u[j * D + e]!;
        }
      }
      const last = l === L - 1;
      const hPrev = this.h[l]!;
      const hNext = this.h[l + 1]!;
      for (let x = 0; x < fd; x++) {
        const v = pre[x]!;
        const a = last || v > 0 ? v : v * LEAKY;
        post[x] = a;
        hNext[x] = a * hPrev[x]!;
      }
    }
    // Layer attention readout.
    const { q, k, v, att, mixed, o, fin } = this;
    for (let t = 0; t < T; t++) {
      const ht = this.h[t]!;
      for (let c = 0; c < A; c++) {
        q[t * A + c] = dot(this.wqT, c * fd, ht, 0, fd);
        k[t * A + c] = dot(this.wkT, c * fd, ht, 0, fd);
      }
      for (let f = 0; f < F; f++) for (let e = 0; e < D; e++) v[t * fd + f * D + e] = dot(this.wvT, e * D, ht, f * D, D);
    }
    const scale = 1 / Math.sqrt(A);
    for (let t = 0; t < T; t++) {
      let mx = -Infinity;
      for (let s = 0; s < T; s++) {
        const x = dot(q, t * A, k, s * A, A) * scale;
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
    mixed.fill(0);
    for (let t = 0; t < T; t++) {
      for (let s = 0; s < T; s++) {
        const w = att[t * T + s]!;
        for (let x = 0; x < fd; x++) mixed[t * fd + x] = mixed[t * fd + x]! + w * v[s * fd + x]!;
      }
    }
    fin.fill(0);
    for (let t = 0; t < T; t++) {
      for (let f = 0; f < F; f++) {
        for (let e = 0; e < D; e++) {
          const val = dot(this.wresT, e * D, mixed, t * fd + f * D, D) + this.bres[e]!;
          o[t * fd + f * D + e] = val;
          if (val > 0) fin[f * D + e] = fin[f * D + e]! + val;
        }
      }
    }
    // fin holds S = Σ_t relu(o_t); relu(S) = S since S ≥ 0.
    let logit = this.bias + first;
    for (let f = 0; f < F; f++) {
      const sc = dot(fin, f * D, this.ws, 0, D);
      this.score[f] = sc;
      const w = 1 / (1 + Math.exp(-dot(this.woutT, f * fd, fin, 0, fd)));
      this.wt[f] = w;
      logit += w * sc;
    }
    return logit;
  }

  /** Adds the gradient of the row's log loss (dz = p − y) w.r.t. e and A at gId[eAt…], gGraph[gAt…]. */
  private backward(dz: number, gId: Float32Array, eAt: number, gGraph: Float32Array, gAt: number): void {
    const { F, D, L, T, A } = this;
    const fd = F * D;
    const { fin, o, att, v, q, k, dfin, dS, dmixed, dv, dq, dk, datt } = this;
    if (this.first) gId[eAt + D] = gId[eAt + D]! + dz;
    // Output layer.
    dfin.fill(0);
    for (let f = 0; f < F; f++) {
      const dsc = dz * this.wt[f]!;
      const w = this.wt[f]!;
      const dg = dz * this.score[f]! * w * (1 - w);
      for (let d = 0; d < D; d++) dfin[f * D + d] = dfin[f * D + d]! + dsc * this.ws[d]!;
      for (let x = 0; x < fd; x++) dfin[x] = dfin[x]! + dg * this.wout[x * F + f]!;
    }
    // fin = relu(S) with S = Σ_t relu(o_t).
    for (let x = 0; x < fd; x++) dS[x] = fin[x]! > 0 ? dfin[x]! : 0;
    // o_t = m_t·Wres + bres, per field: dm_t[f][d'] = Σ_e do[f][e]·Wres[d'][e].
    const doRow = this.tmp;
    for (let t = 0; t < T; t++) {
      for (let f = 0; f < F; f++) {
        for (let e = 0; e < D; e++) doRow[e] = o[t * fd + f * D + e]! > 0 ? dS[f * D + e]! : 0;
        for (let d = 0; d < D; d++) dmixed[t * fd + f * D + d] = dot(this.wres, d * D, doRow, 0, D);
      }
    }
    // m_t = Σ_s att[t][s]·v_s.
    dv.fill(0);
    for (let t = 0; t < T; t++) {
      for (let s = 0; s < T; s++) {
        datt[t * T + s] = dot(dmixed, t * fd, v, s * fd, fd);
        const w = att[t * T + s]!;
        for (let x = 0; x < fd; x++) dv[s * fd + x] = dv[s * fd + x]! + w * dmixed[t * fd + x]!;
      }
    }
    // Softmax and the scaled dot products.
    const scale = 1 / Math.sqrt(A);
    dq.fill(0);
    dk.fill(0);
    for (let t = 0; t < T; t++) {
      let s0 = 0;
      for (let s = 0; s < T; s++) s0 += att[t * T + s]! * datt[t * T + s]!;
      for (let s = 0; s < T; s++) {
        const dl = att[t * T + s]! * (datt[t * T + s]! - s0) * scale;
        if (dl === 0) continue;
        for (let c = 0; c < A; c++) {
          dq[t * A + c] = dq[t * A + c]! + dl * k[s * A + c]!;
          dk[s * A + c] = dk[s * A + c]! + dl * q[t * A + c]!;
        }
      }
    }
    // Back to the tokens h_t: through q, k (vec(h_t)·Wq) and v (h_t[f]·Wv).
    for (let t = 0; t < T; t++) {
      const dht = this.dh[t]!;
      for (let x = 0; x < fd; x++) dht[x] = dot(this.wq, x * A, dq, t * A, A) + dot(this.wk, x * A, dk, t * A, A);
      for (let f = 0; f < F; f++) for (let d = 0; d < D; d++) dht[f * D + d] = dht[f * D + d]! + dot(this.wv, d * D, dv, t * fd + f * D, D);
    }
    // GNN layers, last to first: h_{l+1} = a_l ⊙ h_l, a_l = act(A·u_l), u_l = h0·W_l.
    const Ag = this.graph;
    const { da, du } = this;
    const dh0 = this.dh[0]!;
    for (let l = L - 1; l >= 0; l--) {
      const dNext = this.dh[l + 1]!;
      const hPrev = this.h[l]!;
      const post = this.aPost[l]!;
      const pre = this.aPre[l]!;
      const dPrev = this.dh[l]!;
      const last = l === L - 1;
      for (let x = 0; x < fd; x++) {
        const g = dNext[x]!;
        dPrev[x] = dPrev[x]! + g * post[x]!;
        const dPost = g * hPrev[x]!;
        da[x] = last || pre[x]! > 0 ? dPost : dPost * LEAKY;
      }
      const u = this.u[l]!;
      // dA[i][j] += Σ_e da[i][e]·u[j][e]; du[j][e] = Σ_i A[i][j]·da[i][e].
      du.fill(0);
      for (let i = 0; i < F; i++) {
        for (let j = 0; j < F; j++) {
          gGraph[gAt + i * F + j] = gGraph[gAt + i * F + j]! + dot(da, i * D, u, j * D, D);
          const aij = Ag[i * F + j]!;
          if (aij === 0) continue;
          for (let e = 0; e < D; e++) du[j * D + e] = du[j * D + e]! + aij * da[i * D + e]!;
        }
      }
      // u = h0·W_l: only h0's field 0 (the ID embedding) is a parameter here.
      const w = this.gnn[l]!;
      for (let d = 0; d < D; d++) dh0[d] = dh0[d]! + dot(w, d * D, du, 0, D);
    }
    for (let d = 0; d < D; d++) gId[eAt + d] = gId[eAt + d]! + dh0[d]!;
  }
}
