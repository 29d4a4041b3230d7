/**
 * DeepFM (Guo et al. 2017), the field's standard CTR backbone and Thaw's no-adaptation baseline:
 * bias + first-order weights + FM pairwise term + MLP over the F field embeddings. Each embedding
 * row carries its first-order weight in its last column (row width D+1), so the item-ID entity
 * parameter holds both and one sparse table serves both terms.
 */
import * as tf from '@tensorflow/tfjs';
import { CtrModel, type FieldLayout, type ForwardInputs } from './ctr-model.js';
import { EmbeddingTable } from './embedding-table.js';
import { addIdGenerator, generateId, idGeneratorParams, itemInput } from './meta-embedding.js';
import { ParamSet, type TensorMap } from './params.js';
import { Rng } from './rng.js';
import { defined } from '../lib/at.js';

export interface DeepFmOptions {
  layout: FieldLayout;
  /** Feature-table rows (vocabulary size of the non-ID fields). */
  vocab: number;
  /** Embedding size D. @default 16 */
  dim?: number;
  /** Hidden layer sizes of the MLP. @default [64, 32] */
  hidden?: readonly number[];
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
  /** Add a Meta-Embedding generator (item features → initial ID embedding). @default false */
  withGenerator?: boolean;
}

export class DeepFm extends CtrModel {
  readonly kind = 'deepfm' as const;
  readonly dim: number;
  readonly width: number;
  readonly graphSize = 0;
  readonly layout: FieldLayout;
  readonly dense = new ParamSet();
  readonly table: EmbeddingTable;
  readonly hidden: readonly number[];

  constructor(opts: DeepFmOptions) {
    super();
    this.layout = opts.layout;
    this.dim = opts.dim ?? 16;
    this.width = this.dim + 1;
    this.hidden = opts.hidden ?? [64, 32];
    const rng = new Rng(opts.seed ?? 7788);
    this.table = new EmbeddingTable({ rows: opts.vocab, dim: this.width, lr: opts.tableLr ?? 0.001 });
    if (opts.randomTable !== false) this.table.init(rng, 0.01);
    let fanIn = this.numFields * this.dim;
    this.hidden.forEach((h, i) => {
      this.dense.add(`fm.w${i}`, [fanIn, h], rng.glorot(fanIn, h));
      this.dense.add(`fm.b${i}`, [h], new Float32Array(h));
      fanIn = h;
    });
    this.dense.add('fm.wOut', [fanIn, 1], rng.glorot(fanIn, 1));
    this.dense.add('fm.bias', [1], new Float32Array(1));
    if (opts.withGenerator === true) {
      addIdGenerator(this.dense, rng, { inputSize: this.layout.itemFields.length * this.width, outputSize: this.width });
      this.generateIdEmb = (p: TensorMap, pooled: tf.Tensor3D): tf.Tensor2D => generateId(p, itemInput(pooled, this.layout.itemFields));
    }
  }

  override generatorParams(): string[] {
    return this.generateIdEmb === undefined ? [] : idGeneratorParams();
  }

  head(p: TensorMap, x: ForwardInputs): tf.Tensor1D {
    const d = this.dim;
    const h = tf.concat([x.id.expandDims(1), x.pooled], 1) as tf.Tensor3D; // [B,F,D+1]
    const b = h.shape[0];
    const v = h.slice([0, 0, 0], [b, this.numFields, d]);
    const first = h.slice([0, 0, d], [b, this.numFields, 1]).sum([1, 2]);
    const sumV = v.sum(1);
    const fm = sumV.square().sub(v.square().sum(1)).sum(1).mul(0.5);
    let z: tf.Tensor = v.reshape([b, this.numFields * d]);
    for (let i = 0; i < this.hidden.length; i++) z = tf.relu(z.matMul(defined(p[`fm.w${i}`], 'p[`fm.w${i}`]')).add(defined(p[`fm.b${i}`], 'p[`fm.b${i}`]')));
    const mlp = z.matMul(defined(p['fm.wOut'], "p['fm.wOut']")).reshape([b]);
    return mlp.add(fm).add(first).add<tf.Tensor1D>(defined(p['fm.bias'], "p['fm.bias']"));
  }
}
