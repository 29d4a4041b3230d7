/**
 * Meta-Embedding-style generator (Pan et al., SIGIR'19): a small network from a new item's
 * feature embeddings to its initial item-ID embedding. Trained on hot items with the backbone
 * frozen, with the paper's loss a·cold + (1-a)·warm: "cold" scores batch A with the generated
 * embedding, "warm" scores batch B after one gradient step on the embedding over batch A (see
 * trainers/meta-trainer.ts). EmerG reuses it for its ID embedding.
 */
import * as tf from '@tensorflow/tfjs';
import type { ParamSet, TensorMap } from './params.js';
import type { Rng } from './rng.js';
import { at, defined } from '../lib/at.js';

export interface IdGeneratorSpec {
  /** Item fields × row width: size of the generator input. */
  inputSize: number;
  /** Output width (the model's embedding row width). */
  outputSize: number;
  /** Hidden units. @default 32 */
  hidden?: number;
  /** Param name prefix. @default 'gen.id' */
  prefix?: string;
}

/** Adds the generator's params to `ps` (output layer initialised small, like a fresh embedding). */
export function addIdGenerator(ps: ParamSet, rng: Rng, spec: IdGeneratorSpec): void {
  const pre = spec.prefix ?? 'gen.id';
  const h = spec.hidden ?? 32;
  ps.add(`${pre}.w1`, [spec.inputSize, h], rng.glorot(spec.inputSize, h));
  ps.add(`${pre}.b1`, [h], new Float32Array(h));
  ps.add(`${pre}.w2`, [h, spec.outputSize], rng.fillUniform(new Float32Array(h * spec.outputSize), 0.01));
  ps.add(`${pre}.b2`, [spec.outputSize], new Float32Array(spec.outputSize));
}

/** Names of the generator's params. */
export function idGeneratorParams(prefix = 'gen.id'): string[] {
  return ['w1', 'b1', 'w2', 'b2'].map((n) => `${prefix}.${n}`);
}

/** Item-field input of the generators: the item fields of pooled [B,F-1,W] flattened to [B, k·W]. */
export function itemInput(pooled: tf.Tensor3D, itemFields: readonly number[]): tf.Tensor2D {
  // Slices, not tf.gather: gather's gradient kernel is missing on the wasm backend.
  const [b, , w] = pooled.shape;
  const parts = itemFields.map((f) => pooled.slice([0, f - 1, 0], [b, 1, w]).reshape([b, w]));
  return (parts.length === 1 ? at(parts, 0, 'parts') : tf.concat(parts, 1)) as tf.Tensor2D;
}

/** Generated ID embeddings [B, outputSize]. */
export function generateId(p: TensorMap, x: tf.Tensor2D, prefix = 'gen.id'): tf.Tensor2D {
  const h = tf.relu(x.matMul(defined(p[`${prefix}.w1`], 'p[`${prefix}.w1`]')).add(defined(p[`${prefix}.b1`], 'p[`${prefix}.b1`]')));
  return h.matMul(defined(p[`${prefix}.w2`], 'p[`${prefix}.w2`]')).add<tf.Tensor2D>(defined(p[`${prefix}.b2`], 'p[`${prefix}.b2`]'));
}
