/**
 * Dense parameters as named Float32Arrays. Models build tensors from them for each step and the
 * optimisers update them in place, so checkpoints, releases and per-entity copies are plain bytes
 * and nothing depends on tf.Variable lifetimes.
 */
import * as tf from '@tensorflow/tfjs';
import { ThawError } from '../lib/errors.js';

export interface DenseParam {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export type TensorMap = Record<string, tf.Tensor>;

export class ParamSet {
  readonly params = new Map<string, DenseParam>();

  add(name: string, shape: readonly number[], data: Float32Array): void {
    const size = shape.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new ThawError('MODEL_ERROR', `param ${name}: ${data.length} values for shape [${shape.join(',')}]`);
    this.params.set(name, { shape, data });
  }

  get(name: string): DenseParam {
    const p = this.params.get(name);
    if (p === undefined) throw new ThawError('MODEL_ERROR', `unknown param ${name}`);
    return p;
  }

  names(): string[] {
    return [...this.params.keys()];
  }

  /** Tensors of the named params (all by default); the caller disposes them (use inside tf.tidy). */
  tensors(names: readonly string[] = this.names()): TensorMap {
    const out: TensorMap = {};
    for (const n of names) {
      const p = this.get(n);
      out[n] = tf.tensor(p.data, [...p.shape]);
    }
    return out;
  }

  count(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.data.length;
    return n;
  }

  clone(): ParamSet {
    const c = new ParamSet();
    for (const [n, p] of this.params) c.add(n, p.shape, p.data.slice());
    return c;
  }
}

/** Adam over a subset of a ParamSet's params (decoupled from tf so its state checkpoints as bytes). */
export class DenseAdam {
  step = 0;
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();

  /**
   * @param lr learning rate. @param weightDecay L2 added to the gradient. @default 0
   */
  constructor(
    readonly lr: number,
    readonly weightDecay = 0,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly eps = 1e-8,
  ) {}

  /** Applies one step for every param named in `grads`. */
  apply(params: ParamSet, grads: Map<string, Float32Array>): void {
    this.step++;
    const bc1 = 1 - this.beta1 ** this.step;
    const bc2 = 1 - this.beta2 ** this.step;
    for (const [name, g] of grads) {
      const p = params.get(name).data;
      let m = this.m.get(name);
      let v = this.v.get(name);
      if (m === undefined || v === undefined) {
        m = new Float32Array(p.length);
        v = new Float32Array(p.length);
        this.m.set(name, m);
        this.v.set(name, v);
      }
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]! + this.weightDecay * p[i]!;
        m[i] = this.beta1 * m[i]! + (1 - this.beta1) * gi;
        v[i] = this.beta2 * v[i]! + (1 - this.beta2) * gi * gi;
        p[i] = p[i]! - (this.lr * (m[i]! / bc1)) / (Math.sqrt(v[i]! / bc2) + this.eps);
      }
    }
  }
}
