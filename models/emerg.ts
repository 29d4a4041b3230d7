/**
 * EmerG (KDD'24, item cold-start), following the official code (LARS-research/EmerG, model/gnn.py
 * and model/warm.py):
 * - a hypernetwork maps the item's feature embeddings to an item-specific F×F graph: one small MLP
 *   per field i on [item features; onehot(i)] gives row i (the onehot becomes a per-field bias);
 * - GNN layers on the field embeddings H0 [F×D]: a_l = A·(H0·W_l), LeakyReLU on all but the last
 *   layer, h_l = a_l ⊙ h_{l-1}, so layer l carries (l+1)-order interactions;
 * - readout: self-attention among the layer outputs [h_0..h_L] (the official attends over all
 *   (layer, field) tokens with 3 heads; ours attends over the L+1 layer tokens with one head, far
 *   cheaper on one CPU core; `readout: 'fields'` attends over the (layer, field) tokens with one
 *   head, no better on validation items), a per-field residual projection, ReLU, sum over layers, then
 *   attention-weighted per-field scores (AttentionalPrediction);
 * - item-specific parameters: the item-ID embedding and the item graph; both are generated for a
 *   new item (ID embedding by a Meta-Embedding-style generator) and adapted on its warm batches.
 * Unlike the official code, the generated graph stays in the autodiff graph (the official writes
 * it into an nn.Embedding's `.data`, detaching it, so its hypernetwork never learns).
 * Also different: no field mask (the official masks the last 4 fields, in CUDA-only code).
 */
import * as tf from '@tensorflow/tfjs';
import { CtrModel, type FieldLayout, type ForwardInputs } from './ctr-model.js';
import { EmbeddingTable } from './embedding-table.js';
import { addIdGenerator, generateId, idGeneratorParams, itemInput } from './meta-embedding.js';
import { ParamSet, type TensorMap } from './params.js';
import { Rng } from './rng.js';
import { defined } from '../lib/at.js';

export interface EmergOptions {
  layout: FieldLayout;
  /** Feature-table rows. */
  vocab: number;
  /** Embedding size D. @default 16 */
  dim?: number;
  /** GNN layers. @default 3 */
  layers?: number;
  /** Hidden units of each per-field graph-generator MLP. @default 16 */
  genHidden?: number;
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
  /**
   * Add DeepFM's first-order term: each embedding row (the item-ID entity param included) carries
   * a scalar weight in an extra column, summed into the logit. Not in the official EmerG; it gives
   * a new item a direct bias that its warm batches can adapt. @default true
   */
  firstOrder?: boolean;
  /**
   * Readout attention tokens: 'layers' = the L+1 layer outputs (each token all F·D values; cheap),
   * 'fields' = the (L+1)·F (layer, field) tokens as the official code (one head; each token's
   * query and key are read from its whole layer, its value from its own field). @default 'layers'
   */
  readout?: 'layers' | 'fields';
}

/** Query/key size of the layer attention. */
const ATT_DIM = 16;

export const GRAPH_GEN_PARAMS = ['gen.graph.w1', 'gen.graph.b1', 'gen.graph.w2', 'gen.graph.b2', 'gen.graph.w3', 'gen.graph.b3'];

export class Emerg extends CtrModel {
  readonly kind = 'emerg' as const;
  readonly dim: number;
  readonly width: number;
  readonly graphSize: number;
  readonly layout: FieldLayout;
  readonly dense = new ParamSet();
  readonly table: EmbeddingTable;
  readonly layers: number;
  readonly firstOrder: boolean;
  readonly readout: 'layers' | 'fields';

  constructor(opts: EmergOptions) {
    super();
    this.layout = opts.layout;
    this.dim = opts.dim ?? 16;
    this.firstOrder = opts.firstOrder ?? true;
    this.width = this.dim + (this.firstOrder ? 1 : 0);
    this.layers = opts.layers ?? 3;
    const f = this.numFields;
    this.graphSize = f * f;
    const d = this.dim;
    const rng = new Rng(opts.seed ?? 7788);
    this.table = new EmbeddingTable({ rows: opts.vocab, dim: this.width, lr: opts.tableLr ?? 0.001 });
    if (opts.randomTable !== false) this.table.init(rng, 0.01);
    for (let l = 0; l < this.layers; l++) this.dense.add(`gnn.w${l}`, [d, d], rng.glorot(d, d));
    const fd = f * d;
    this.readout = opts.readout ?? 'layers';
    // 'fields': F query/key vectors of size D per layer token.
    const qk = this.readout === 'fields' ? f * d : ATT_DIM;
    this.dense.add('att.wq', [fd, qk], rng.glorot(fd, qk));
    this.dense.add('att.wk', [fd, qk], rng.glorot(fd, qk));
    this.dense.add('att.wv', [d, d], rng.glorot(d, d));
    this.dense.add('att.wres', [d, d], rng.glorot(d, d));
    this.dense.add('att.bres', [d], new Float32Array(d));
    this.dense.add('out.score', [d, 1], rng.glorot(d, 1));
    this.dense.add('out.weight', [fd, f], rng.glorot(fd, f));
    this.dense.add('out.bias', [1], new Float32Array(1));
    const inSize = this.layout.itemFields.length * this.width;
    const gh = opts.genHidden ?? 16;
    const per = (a: number, b: number): Float32Array => {
      const out = new Float32Array(f * a * b);
      for (let i = 0; i < f; i++) out.set(rng.glorot(a, b), i * a * b);
      return out;
    };
    this.dense.add('gen.graph.w1', [f, inSize, gh], per(inSize, gh));
    this.dense.add('gen.graph.b1', [f, 1, gh], new Float32Array(f * gh));
    this.dense.add('gen.graph.w2', [f, gh, gh], per(gh, gh));
    this.dense.add('gen.graph.b2', [f, 1, gh], new Float32Array(f * gh));
    this.dense.add('gen.graph.w3', [f, gh, f], per(gh, f));
    // Start near the complete graph with unit weights so early layers pass signal.
    this.dense.add('gen.graph.b3', [f, 1, f], new Float32Array(f * f).fill(1 / f));
    addIdGenerator(this.dense, rng, { inputSize: inSize, outputSize: this.width });
  }

  /** Names of the hypernetwork params (graph and ID generators). */
  override generatorParams(): string[] {
    return [...GRAPH_GEN_PARAMS, ...idGeneratorParams()];
  }

  /** Item graphs [B,F,F] generated from pooled field embeddings [B,F-1,D]. */
  override generateGraph(p: TensorMap, pooled: tf.Tensor3D): tf.Tensor3D {
    const x = itemInput(pooled, this.layout.itemFields); // [B, in]
    const f = this.numFields;
    const xs = tf.stack(Array.from({ length: f }, () => x)) as tf.Tensor3D; // [F, B, in]
    const h1 = tf.relu(tf.matMul(xs, defined(p['gen.graph.w1'], "p['gen.graph.w1']")).add(defined(p['gen.graph.b1'], "p['gen.graph.b1']")));
    const h2 = tf.relu(tf.matMul(h1, defined(p['gen.graph.w2'], "p['gen.graph.w2']")).add(defined(p['gen.graph.b2'], "p['gen.graph.b2']")));
    const g = tf.matMul(h2, defined(p['gen.graph.w3'], "p['gen.graph.w3']")).add(defined(p['gen.graph.b3'], "p['gen.graph.b3']")); // [F, B, F]: row i of each graph
    return g.transpose<tf.Tensor3D>([1, 0, 2]);
  }

  /** Generated initial ID embeddings [B,D]. */
  override generateIdEmb(p: TensorMap, pooled: tf.Tensor3D): tf.Tensor2D {
    return generateId(p, itemInput(pooled, this.layout.itemFields));
  }

  head(p: TensorMap, x: ForwardInputs): tf.Tensor1D {
    const f = this.numFields;
    const d = this.dim;
    const full = tf.concat([x.id.expandDims(1), x.pooled], 1) as tf.Tensor3D; // [B,F,W]
    const b = full.shape[0];
    const h0 = this.firstOrder ? full.slice<tf.Tensor3D>([0, 0, 0], [b, f, d]) : full;
    const first = this.firstOrder ? full.slice([0, 0, d], [b, f, 1]).sum([1, 2]) : undefined;
    const graph = x.graph ?? this.generateGraph(p, x.pooled);
    const hs: tf.Tensor3D[] = [h0];
    let h = h0;
    const flat0 = h0.reshape([b * f, d]);
    for (let l = 0; l < this.layers; l++) {
      let a = tf.matMul<tf.Tensor3D>(graph, flat0.matMul(defined(p[`gnn.w${l}`], 'p[`gnn.w${l}`]')).reshape([b, f, d]));
      if (l !== this.layers - 1) a = tf.leakyRelu(a, 0.01);
      h = a.mul(h);
      hs.push(h);
    }
    const t = hs.length;
    const stacked = tf.stack(hs, 1); // [B,T,F,D]
    const tokens = stacked.reshape<tf.Tensor2D>([b * t, f * d]);
    const fin = this.readout === 'fields' ? this.fieldReadout(p, stacked, tokens, b, t) : this.layerReadout(p, stacked, tokens, b, t);
    const score = fin
      .reshape([b * f, d])
      .matMul(defined(p['out.score'], "p['out.score']"))
      .reshape([b, f]);
    const weight = tf.sigmoid(fin.reshape([b, f * d]).matMul(defined(p['out.weight'], "p['out.weight']")));
    const logit = weight.mul(score).sum(1).add(defined(p['out.bias'], "p['out.bias']"));
    return (first === undefined ? logit : logit.add(first)) as tf.Tensor1D;
  }

  /** Self-attention among the T·F (layer, field) tokens of each example, then residual projection: [B,F,D]. */
  private fieldReadout(p: TensorMap, stacked: tf.Tensor, tokens: tf.Tensor2D, b: number, t: number): tf.Tensor {
    const f = this.numFields;
    const d = this.dim;
    const n = t * f;
    const q = tokens.matMul(defined(p['att.wq'], "p['att.wq']")).reshape<tf.Tensor3D>([b, n, d]);
    const k = tokens.matMul(defined(p['att.wk'], "p['att.wk']")).reshape<tf.Tensor3D>([b, n, d]);
    const att = tf.softmax(tf.matMul(q, k, false, true).div(Math.sqrt(d))); // [B,TF,TF]
    const v = stacked
      .reshape([b * n, d])
      .matMul(defined(p['att.wv'], "p['att.wv']"))
      .reshape<tf.Tensor3D>([b, n, d]);
    const mixed = tf.matMul(att, v); // [B,TF,D]
    const o = mixed
      .reshape([b * n, d])
      .matMul(defined(p['att.wres'], "p['att.wres']"))
      .add(defined(p['att.bres'], "p['att.bres']"));
    return tf.relu(tf.relu(o).reshape([b, t, f, d]).sum(1));
  }

  /** Self-attention among the T layer tokens of each example, then residual projection: [B,F,D]. */
  private layerReadout(p: TensorMap, stacked: tf.Tensor, tokens: tf.Tensor2D, b: number, t: number): tf.Tensor {
    const f = this.numFields;
    const d = this.dim;
    const a = ATT_DIM;
    // Self-attention among the T layer outputs of each example (T×T weights: broadcasts, not
    // batched matMuls, which are slow for tiny matrices on wasm).
    const q = tokens.matMul(defined(p['att.wq'], "p['att.wq']")).reshape([b, t, 1, a]);
    const k = tokens.matMul(defined(p['att.wk'], "p['att.wk']")).reshape([b, 1, t, a]);
    const att = tf.softmax(q.mul(k).sum(3).div(Math.sqrt(a))); // [B,T,T]
    const v = stacked
      .reshape([b * t * f, d])
      .matMul(defined(p['att.wv'], "p['att.wv']"))
      .reshape([b, 1, t, f * d]);
    const mixed = att.expandDims(3).mul(v).sum(2); // [B,T,F·D]
    const o = mixed
      .reshape([b * t * f, d])
      .matMul(defined(p['att.wres'], "p['att.wres']"))
      .add(defined(p['att.bres'], "p['att.bres']"));
    return tf.relu(tf.relu(o).reshape([b, t, f, d]).sum(1));
  }
}
