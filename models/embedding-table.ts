/**
 * Embedding tables held as typed arrays with sparse optimiser updates, as parameter servers do.
 * TensorFlow.js cannot differentiate through `gather` into a large table here (the wasm backend
 * lacks the kernel, the cpu one loops per table row), so a step gathers the batch's rows into a
 * small tensor, takes gradients with respect to that tensor, and `applyGradients` scatter-adds
 * them back: duplicate rows in a batch have their gradients summed before one update per row.
 */
import { ThawError } from '../lib/errors.js';
import type { Rng } from './rng.js';
import { at, defined } from '../lib/at.js';

export type SparseOptimizer = 'adam' | 'adagrad' | 'sgd';

export interface EmbeddingTableOptions {
  /** Number of rows (vocabulary size). */
  rows: number;
  /** Values per row. */
  dim: number;
  /** Sparse optimiser. @default 'adam' */
  optimizer?: SparseOptimizer;
  /** Learning rate. @default 0.001 */
  lr?: number;
  /** L2 weight decay added to each touched row's gradient. @default 0 */
  weightDecay?: number;
}

export class EmbeddingTable {
  readonly rows: number;
  readonly dim: number;
  readonly optimizer: SparseOptimizer;
  lr: number;
  readonly weightDecay: number;
  readonly data: Float32Array;
  /** Adam first moment or Adagrad accumulator (empty for sgd). */
  readonly slot1: Float32Array;
  /** Adam second moment (empty otherwise). */
  readonly slot2: Float32Array;
  /** Global step count for Adam's bias correction (lazy Adam, as TensorFlow's LazyAdam). */
  step = 0;

  constructor(opts: EmbeddingTableOptions) {
    if (!Number.isInteger(opts.rows) || opts.rows <= 0) throw new ThawError('MODEL_ERROR', `embedding rows must be a positive integer, got ${opts.rows}`);
    if (!Number.isInteger(opts.dim) || opts.dim <= 0) throw new ThawError('MODEL_ERROR', `embedding dim must be a positive integer, got ${opts.dim}`);
    this.rows = opts.rows;
    this.dim = opts.dim;
    this.optimizer = opts.optimizer ?? 'adam';
    this.lr = opts.lr ?? 0.001;
    this.weightDecay = opts.weightDecay ?? 0;
    this.data = new Float32Array(this.rows * this.dim);
    const n = this.rows * this.dim;
    this.slot1 = new Float32Array(this.optimizer === 'sgd' ? 0 : n);
    this.slot2 = new Float32Array(this.optimizer === 'adam' ? n : 0);
    if (this.optimizer === 'adagrad') this.slot1.fill(1e-8);
  }

  /** Uniform initialisation in [-scale, scale). */
  init(rng: Rng, scale: number): this {
    rng.fillUniform(this.data, scale);
    return this;
  }

  /** Copies the rows `idx` into a new [idx.length × dim] array (row-major). */
  gather(idx: Int32Array | readonly number[]): Float32Array {
    const d = this.dim;
    const out = new Float32Array(idx.length * d);
    for (let i = 0; i < idx.length; i++) {
      const r = at(idx, i, 'idx');
      if (r < 0 || r >= this.rows) throw new ThawError('MODEL_ERROR', `embedding row ${r} out of range [0, ${this.rows})`);
      out.set(this.data.subarray(r * d, r * d + d), i * d);
    }
    return out;
  }

  /**
   * Scatter-adds `grads` ([idx.length × dim], the gradient with respect to gathered rows) per row,
   * then applies one optimiser step to each touched row. Rows listed with a zero weight can be
   * skipped by the caller by passing idx = -1.
   */
  applyGradients(idx: Int32Array | readonly number[], grads: Float32Array): void {
    const d = this.dim;
    const acc = new Map<number, Float32Array>();
    for (let i = 0; i < idx.length; i++) {
      const r = at(idx, i, 'idx');
      if (r < 0) continue;
      let g = acc.get(r);
      if (g === undefined) {
        g = new Float32Array(d);
        acc.set(r, g);
      }
      for (let k = 0; k < d; k++) g[k] = (g[k] ?? 0) + (grads[i * d + k] ?? 0);
    }
    this.step++;
    const rows = [...acc.keys()].sort((a, b) => a - b);
    for (const r of rows) this.updateRow(r, defined(acc.get(r), 'acc.get(r)'));
  }

  private updateRow(r: number, g: Float32Array): void {
    const d = this.dim;
    const base = r * d;
    const p = this.data;
    const wd = this.weightDecay;
    if (this.optimizer === 'sgd') {
      for (let k = 0; k < d; k++) p[base + k] = (p[base + k] ?? 0) - this.lr * ((g[k] ?? 0) + wd * (p[base + k] ?? 0));
      return;
    }
    if (this.optimizer === 'adagrad') {
      const a = this.slot1;
      for (let k = 0; k < d; k++) {
        const gi = (g[k] ?? 0) + wd * (p[base + k] ?? 0);
        a[base + k] = (a[base + k] ?? 0) + gi * gi;
        p[base + k] = (p[base + k] ?? 0) - (this.lr * gi) / Math.sqrt(a[base + k] ?? 0);
      }
      return;
    }
    const m = this.slot1;
    const v = this.slot2;
    const bc1 = 1 - 0.9 ** this.step;
    const bc2 = 1 - 0.999 ** this.step;
    for (let k = 0; k < d; k++) {
      const gi = (g[k] ?? 0) + wd * (p[base + k] ?? 0);
      m[base + k] = 0.9 * (m[base + k] ?? 0) + 0.1 * gi;
      v[base + k] = 0.999 * (v[base + k] ?? 0) + 0.001 * gi * gi;
      p[base + k] = (p[base + k] ?? 0) - (this.lr * ((m[base + k] ?? 0) / bc1)) / (Math.sqrt((v[base + k] ?? 0) / bc2) + 1e-8);
    }
  }
}
