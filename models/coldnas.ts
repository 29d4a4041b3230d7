/**
 * ColdNAS (Wu et al., WWW'23) for user cold-start, after the official code (LARS-research/ColdNAS,
 * `nas4lfm.py` / `model_lfm4.py`):
 * - each history interaction [row's field embeddings; label] → Linear + LeakyReLU (the "context"
 *   encoding, C values) → MEAN over the user's history → Linear → the parameters of the
 *   modulation ops at every position (op-major, as `p.view(4, -1)` there);
 * - predictor: x0 = flattened non-ID field embeddings; positions are x0 and the outputs of the
 *   three hidden layers; each position applies its op(s) with the user's parameters, then
 *   LeakyReLU, then the next layer; a last linear layer gives the logit;
 * - ops: max(x, p), min(x, p), x·(1+p), x+p. (The official multiply uses relu(p), which zeroes
 *   units until p grows; 1+p starts at the identity. We do not L1-normalise inside the supernet.)
 *
 * Search: a supernet mixes the four ops at each position with softmax(alpha[position]) weights;
 * the trainer updates alpha on VALIDATION users only and then fixes the argmax op per position.
 * (The official search keeps the alpha of the epoch with the best *test* loss; we never look at
 * test data.) With a fixed structure only the chosen op runs.
 *
 * Because the history is mean pooled, a user's state is {count, mean encoding}: adding an event is
 * an O(C) running-mean update (`userStateUpdate`), and scoring a new user is one forward pass. The
 * state depends on the shared parameters, so a release of new shared parameters re-initialises it.
 */
import * as tf from '@tensorflow/tfjs';
import { ThawError } from '../lib/errors.js';
import type { FieldLayout, RowBatch } from './ctr-model.js';
import { poolingMatrix, sliceBatch } from './ctr-model.js';
import { addLayer, checkDims, dense, flatFields, gatherEmb, LEAKY, oneHotRows } from './coldnas-common.js';
import { EmbeddingTable } from './embedding-table.js';
import { ParamSet, type TensorMap } from './params.js';
import { Rng } from './rng.js';
import { at, defined } from '../lib/at.js';

export const COLDNAS_OPS = ['max', 'min', 'multiply', 'add'] as const;

/** Op `op` (index in COLDNAS_OPS) of modulation parameters q on activations x; q broadcasts over rows. */
export function applyColdNasOp(op: number, x: tf.Tensor2D, q: tf.Tensor): tf.Tensor2D {
  if (op === 0) return tf.maximum(x, q);
  if (op === 1) return tf.minimum(x, q);
  if (op === 2) return x.mul(q.add(1));
  return x.add(q);
}
export type ColdNasOp = (typeof COLDNAS_OPS)[number];
export const COLDNAS_POSITIONS = ['input', 'hidden1', 'hidden2', 'hidden3'] as const;

/** The searched structure: one op per position (the release manifest records it). */
export interface ColdNasStructure {
  ops: [ColdNasOp, ColdNasOp, ColdNasOp, ColdNasOp];
}

/** A user's state: interactions seen and the running mean of their encodings (C values). */
export interface ColdNasUserState {
  count: number;
  mean: Float32Array;
}

export interface ColdNasOptions {
  layout: FieldLayout;
  /** Feature-table rows. */
  vocab: number;
  /** Embedding size D. @default 16 */
  dim?: number;
  /** Hidden layer sizes of the predictor (the official code uses 3 layers). @default [64, 32, 16] */
  hidden?: readonly [number, number, number];
  /** Interaction encoding size C (official: 8·D). @default 64 */
  contextDim?: number;
  /** Seed of the initialisers. @default 7788 */
  seed?: number;
  /** Adam learning rate of the feature table. @default 0.001 */
  tableLr?: number;
  /**
   * Draw the feature table at random (uniform in ±0.01). false leaves it at zero, for a model whose
   * weights are loaded right after (models/onnx/bundle.ts): a release switch would otherwise spend
   * most of its build drawing a million numbers only to overwrite them. @default true
   */
  randomTable?: boolean;
  /** Fixed structure; undefined = supernet (mixture of all ops, weighted by `arch`). */
  structure?: ColdNasStructure;
}

export class ColdNas {
  readonly kind = 'coldnas' as const;
  readonly layout: FieldLayout;
  readonly dim: number;
  readonly hidden: readonly [number, number, number];
  readonly contextDim: number;
  readonly table: EmbeddingTable;
  readonly dense = new ParamSet();
  /** Architecture logits `cn.alpha` [4 positions, 4 ops] (used only while searching). */
  readonly arch = new ParamSet();
  structure: ColdNasStructure | undefined;
  /** Values per position: input (F-1)·D, then the hidden sizes. */
  readonly positionDims: readonly number[];
  /** Parameters per op (sum of positionDims); the modulation vector has 4× this. */
  readonly modDim: number;
  private readonly pm: Float32Array;

  constructor(opts: ColdNasOptions) {
    this.layout = opts.layout;
    this.dim = opts.dim ?? 16;
    this.hidden = opts.hidden ?? [64, 32, 16];
    this.contextDim = opts.contextDim ?? 64;
    checkDims(this.layout, this.dim, this.hidden);
    this.structure = opts.structure;
    this.pm = poolingMatrix(this.layout);
    const rng = new Rng(opts.seed ?? 7788);
    this.table = new EmbeddingTable({ rows: opts.vocab, dim: this.dim, lr: opts.tableLr ?? 0.001 });
    if (opts.randomTable !== false) this.table.init(rng, 0.01);
    const inDim = (this.layout.fieldNames.length - 1) * this.dim;
    this.positionDims = [inDim, ...this.hidden];
    this.modDim = this.positionDims.reduce((a, b) => a + b, 0);
    let fanIn = inDim;
    this.hidden.forEach((h, i) => {
      addLayer(this.dense, rng, 'cn', i, fanIn, h);
      fanIn = h;
    });
    addLayer(this.dense, rng, 'cn', 'Out', fanIn, 1);
    addLayer(this.dense, rng, 'cn.ctx', '', inDim + 1, this.contextDim);
    // Small output weights: every op starts near its identity-like value, so the supernet starts as the plain MLP.
    this.dense.add('cn.mod.w', [this.contextDim, 4 * this.modDim], rng.fillUniform(new Float32Array(this.contextDim * 4 * this.modDim), 0.01));
    this.dense.add('cn.mod.b', [4 * this.modDim], new Float32Array(4 * this.modDim));
    this.arch.add('cn.alpha', [4, 4], new Float32Array(16));
  }

  /** Slot count S. */
  get slots(): number {
    return this.layout.slotField.length;
  }

  /** Flattened non-ID field embeddings of rows given their gathered slot rows. */
  fields(emb: tf.Tensor3D, b: RowBatch): tf.Tensor2D {
    return flatFields(emb, b, this.layout, this.pm);
  }

  /** Interaction encodings [n, C]: LeakyReLU(Linear([fields; label])). */
  encode(p: TensorMap, fields: tf.Tensor2D, label: tf.Tensor1D): tf.Tensor2D {
    const x = tf.concat([fields, label.reshape([-1, 1])], 1) as tf.Tensor2D;
    return tf.leakyRelu(dense(p, 'cn.ctx', '', x), LEAKY);
  }

  /** Modulation parameters [T, 4·modDim] from mean encodings [T, C]. */
  modulation(p: TensorMap, mean: tf.Tensor2D): tf.Tensor2D {
    return mean.matMul(p['cn.mod.w'] as tf.Tensor2D).add(defined(p['cn.mod.b'], "p['cn.mod.b']"));
  }

  /** Softmax mixture weights [4, 4] from architecture logits, or one-hot rows of the fixed structure. */
  opWeights(alpha: tf.Tensor | undefined): number[][] | tf.Tensor2D {
    if (this.structure !== undefined) return this.structure.ops.map((op) => COLDNAS_OPS.map((o) => (o === op ? 1 : 0)));
    if (alpha === undefined) throw new ThawError('MODEL_ERROR', 'a ColdNAS supernet needs its architecture logits');
    return tf.softmax(alpha as tf.Tensor2D, 1);
  }

  private modulate(x: tf.Tensor2D, mod: tf.Tensor2D, pos: number, weights: number[][] | tf.Tensor2D): tf.Tensor2D {
    const d = at(this.positionDims, pos, 'this.positionDims');
    let off = 0;
    for (let i = 0; i < pos; i++) off += at(this.positionDims, i, 'this.positionDims');
    const n = x.shape[0];
    const apply = (op: number): tf.Tensor2D => applyColdNasOp(op, x, mod.slice([0, op * this.modDim + off], [n, d]));
    if (Array.isArray(weights)) {
      const row = at(weights, pos, 'weights');
      let out: tf.Tensor2D | undefined;
      row.forEach((w, op) => {
        if (w === 0) return;
        const t: tf.Tensor2D = w === 1 ? apply(op) : apply(op).mul(w);
        out = out === undefined ? t : out.add<tf.Tensor2D>(t);
      });
      return out ?? x;
    }
    let out: tf.Tensor2D | undefined;
    for (let op = 0; op < 4; op++) {
      const t: tf.Tensor2D = apply(op).mul(weights.slice([pos, op], [1, 1]).reshape([]));
      out = out === undefined ? t : out.add<tf.Tensor2D>(t);
    }
    return defined(out, 'out');
  }

  /** Logits [n] of rows with fields [n, (F-1)·D] and per-row modulation parameters [n, 4·modDim]. */
  logits(p: TensorMap, fields: tf.Tensor2D, modRows: tf.Tensor2D, alpha?: tf.Tensor): tf.Tensor1D {
    const w = this.opWeights(alpha);
    return this.predictor(p, fields, (pos, x) => this.modulate(x, modRows, pos, w));
  }

  /**
   * The predictor [n] over fields [n, (F-1)·D], with `modulate(pos, x)` applied at each of the four
   * positions (the fields, then after each hidden layer). `logits` modulates with all ops' columns;
   * adapters/coldnas.ts with a fixed structure's used columns only.
   */
  predictor(p: TensorMap, fields: tf.Tensor2D, modulate: (pos: number, x: tf.Tensor2D) => tf.Tensor2D): tf.Tensor1D {
    let x = modulate(0, fields);
    for (let i = 0; i < 3; i++) x = modulate(i + 1, dense(p, 'cn', i, tf.leakyRelu(x, LEAKY)));
    return dense(p, 'cn', 'Out', tf.leakyRelu(x, LEAKY)).reshape<tf.Tensor1D>([-1]);
  }

  /** Interaction encodings of labelled rows, n × C (no gradient): what a worker folds into user states. */
  encodeInteractions(b: RowBatch, chunk = 4096): Float32Array {
    const out = new Float32Array(b.n * this.contextDim);
    for (let from = 0; from < b.n; from += chunk) {
      const part = sliceBatch(b, from, Math.min(b.n, from + chunk));
      const t = tf.tidy(() => this.encode(this.dense.tensors(['cn.ctx.w', 'cn.ctx.b']), this.fields(gatherEmb(this.table, part, this.slots), part), tf.tensor1d(part.label)));
      out.set(t.dataSync(), from * this.contextDim);
      t.dispose();
    }
    return out;
  }

  emptyState(): ColdNasUserState {
    return { count: 0, mean: new Float32Array(this.contextDim) };
  }

  /** Batch mean-pooled states of `count` users from their history rows (b.entity = user). */
  batchStates(b: RowBatch, count: number): ColdNasUserState[] {
    const enc = this.encodeInteractions(b);
    const c = this.contextDim;
    const sums = Array.from({ length: count }, () => new Float64Array(c));
    const states = Array.from({ length: count }, () => this.emptyState());
    for (let i = 0; i < b.n; i++) {
      const e = b.entity[i] ?? 0;
      const s = at(sums, e, 'sums');
      for (let k = 0; k < c; k++) s[k] = (s[k] ?? 0) + (enc[i * c + k] ?? 0);
      at(states, e, 'states').count++;
    }
    states.forEach((st, e) => {
      if (st.count === 0) return;
      const s = at(sums, e, 'sums');
      for (let k = 0; k < c; k++) st.mean[k] = (s[k] ?? 0) / st.count;
    });
    return states;
  }

  /** Click probabilities of rows; row i belongs to user b.entity[i] with state states[b.entity[i]]. One forward, no gradient. */
  predict(b: RowBatch, states: readonly ColdNasUserState[], chunk = 4096): Float32Array {
    const c = this.contextDim;
    const means = new Float32Array(states.length * c);
    states.forEach((s, i) => means.set(s.mean, i * c));
    const out = new Float32Array(b.n);
    for (let from = 0; from < b.n; from += chunk) {
      const part = sliceBatch(b, from, Math.min(b.n, from + chunk));
      const probs = tf.tidy(() => {
        const p = { ...this.dense.tensors(), ...this.arch.tensors() };
        const mod = this.modulation(p, tf.tensor2d(means, [states.length, c]));
        const rows = tf.tensor2d(oneHotRows(part.entity, states.length), [part.n, states.length]).matMul(mod) as tf.Tensor2D;
        return tf.sigmoid(this.logits(p, this.fields(gatherEmb(this.table, part, this.slots), part), rows, p['cn.alpha']));
      });
      out.set(probs.dataSync(), from);
      probs.dispose();
    }
    return out;
  }

  /** The searched structure as JSON for the release manifest. */
  structureJson(): { positions: { position: string; op: ColdNasOp }[]; alpha?: number[] } {
    if (this.structure === undefined) throw new ThawError('MODEL_ERROR', 'ColdNAS structure not chosen yet (still a supernet)');
    return { positions: this.structure.ops.map((op, i) => ({ position: at(COLDNAS_POSITIONS, i, 'COLDNAS_POSITIONS'), op })) };
  }

  /** The argmax op per position of the current architecture logits. */
  chooseStructure(): ColdNasStructure {
    const a = this.arch.get('cn.alpha').data;
    const ops = [0, 1, 2, 3].map((pos) => {
      let best = 0;
      for (let o = 1; o < 4; o++) if ((a[pos * 4 + o] ?? 0) > (a[pos * 4 + best] ?? 0)) best = o;
      return at(COLDNAS_OPS, best, 'COLDNAS_OPS');
    });
    return { ops: ops as ColdNasStructure['ops'] };
  }
}

/**
 * Folds one interaction encoding into a user's state in O(C): mean ← mean + (enc − mean)/(n+1).
 * Returns a new state (the input is not mutated), so a worker can keep the previous one until the
 * new one is durable.
 */
export function userStateUpdate(state: ColdNasUserState, interactionEncoding: Float32Array): ColdNasUserState {
  const c = state.mean.length;
  if (interactionEncoding.length !== c) throw new ThawError('MODEL_ERROR', `encoding has ${interactionEncoding.length} values, state ${c}`);
  const n = state.count + 1;
  const mean = new Float32Array(c);
  for (let k = 0; k < c; k++) mean[k] = (state.mean[k] ?? 0) + ((interactionEncoding[k] ?? 0) - (state.mean[k] ?? 0)) / n;
  return { count: n, mean };
}
