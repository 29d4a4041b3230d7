/**
 * Dense parameters as named Float32Arrays. Models build tensors from them for each step and the
 * optimisers update them in place, so checkpoints, releases and per-entity copies are plain bytes
 * and nothing depends on tf.Variable lifetimes.
 *
 * Frozen sets: an adapter never changes the shared parameters of its release, yet every forward
 * asked `tensors()` for a fresh copy of every param (one copy into the backend per param per call:
 * most of the fixed cost of a small wave, bench/adapters/per-call.ts). `freeze()` makes the set
 * read-only and `tensors()` return tensors created once and kept (tf.keep: a tf.tidy around the
 * caller does not dispose them, since tidy only disposes tensors created in its own scope).
 * `dispose()` releases them (the owner calls it when the set is retired, e.g. its release is
 * replaced); a later `tensors()` re-creates them, so a straggler call is never wrong, only leaky.
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
  private frozenAt = false;
  /** The kept tensors of a frozen set, created on the first `tensors()` after freeze/dispose. */
  private cache: TensorMap | undefined;

  /** True once `freeze()` was called: the values must not change any more. */
  get frozen(): boolean {
    return this.frozenAt;
  }

  /**
   * Makes the set read-only for good: `add` and `DenseAdam.apply` throw from now on, and `tensors()`
   * returns cached tensors that callers must NOT dispose. Idempotent. Only for sets nobody trains
   * (an adapter's release model); `get(name).data` can still be written, which nobody may do.
   */
  freeze(): this {
    this.frozenAt = true;
    return this;
  }

  /** Releases the cached tensors of a frozen set (no-op otherwise); the set stays frozen. */
  dispose(): void {
    const c = this.cache;
    this.cache = undefined;
    if (c !== undefined) for (const t of Object.values(c)) t.dispose();
  }

  /** Throws MODEL_ERROR if the set is frozen; `what` names the attempted mutation. */
  assertMutable(what: string): void {
    if (this.frozenAt) throw new ThawError('MODEL_ERROR', `${what}: the parameter set is frozen (shared parameters of a release in use are read-only)`);
  }

  add(name: string, shape: readonly number[], data: Float32Array): void {
    this.assertMutable(`add ${name}`);
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

  /**
   * Tensors of the named params (all by default). Unfrozen: fresh copies the caller disposes (use
   * inside tf.tidy). Frozen: the set's kept tensors, shared by every call; never dispose them.
   */
  tensors(names?: readonly string[]): TensorMap {
    if (this.frozenAt) {
      const all = (this.cache ??= this.createKept());
      if (names === undefined) return { ...all };
      const out: TensorMap = {};
      for (const n of names) {
        const t = all[n];
        if (t === undefined) throw new ThawError('MODEL_ERROR', `unknown param ${n}`);
        out[n] = t;
      }
      return out;
    }
    const out: TensorMap = {};
    for (const n of names ?? this.names()) {
      const p = this.get(n);
      out[n] = tf.tensor(p.data, [...p.shape]);
    }
    return out;
  }

  private createKept(): TensorMap {
    const out: TensorMap = {};
    for (const [n, p] of this.params) out[n] = tf.keep(tf.tensor(p.data, [...p.shape]));
    return out;
  }

  count(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.data.length;
    return n;
  }

  /** An unfrozen copy (same values, own arrays): what a trainer may start from. */
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
    params.assertMutable('DenseAdam.apply');
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
        const gi = (g[i] ?? 0) + this.weightDecay * (p[i] ?? 0);
        m[i] = this.beta1 * (m[i] ?? 0) + (1 - this.beta1) * gi;
        v[i] = this.beta2 * (v[i] ?? 0) + (1 - this.beta2) * gi * gi;
        p[i] = (p[i] ?? 0) - (this.lr * ((m[i] ?? 0) / bc1)) / (Math.sqrt((v[i] ?? 0) / bc2) + this.eps);
      }
    }
  }
}
