/**
 * Synthetic clustered unit vectors: `clusters` random unit centres; each item is its centre plus
 * Gaussian noise of `spread` per coordinate, normalised. Queries are drawn the same way, so
 * neighbourhoods are dense and uneven as with a trained item tower (uniform random vectors would
 * make every neighbour nearly equidistant, the hardest and least realistic case for a graph).
 */
import { Rng } from '../../models/rng.js';

export interface ClusteredOptions {
  dim: number;
  clusters: number;
  /** Noise standard deviation per coordinate, before normalising. @default 0.05 */
  spread?: number;
  seed: number;
}

function gaussian(rng: Rng): number {
  const u = Math.max(rng.next(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

function normalise(v: Float32Array, off: number, dim: number): void {
  let s = 0;
  for (let j = 0; j < dim; j++) s += (v[off + j] ?? 0) ** 2;
  const n = Math.sqrt(s) || 1;
  for (let j = 0; j < dim; j++) v[off + j] = (v[off + j] ?? 0) / n;
}

/** A generator of clustered unit vectors (row-major batches). */
export class ClusteredVectors {
  private readonly rng: Rng;
  private readonly centres: Float32Array;
  private readonly spread: number;

  constructor(readonly opts: ClusteredOptions) {
    this.rng = new Rng(opts.seed);
    this.spread = opts.spread ?? 0.05;
    this.centres = new Float32Array(opts.clusters * opts.dim);
    for (let i = 0; i < this.centres.length; i++) this.centres[i] = gaussian(this.rng);
    for (let c = 0; c < opts.clusters; c++) normalise(this.centres, c * opts.dim, opts.dim);
  }

  /** `n` vectors, row-major. */
  next(n: number): Float32Array {
    const { dim, clusters } = this.opts;
    const out = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      const c = this.rng.int(clusters);
      for (let j = 0; j < dim; j++) out[i * dim + j] = (this.centres[c * dim + j] ?? 0) + this.spread * gaussian(this.rng);
      normalise(out, i * dim, dim);
    }
    return out;
  }
}
