/**
 * Seeded pseudo-random numbers (mulberry32): every initialiser and shuffle in models/ and
 * trainers/ draws from one of these so runs are reproducible from their seed.
 */
import { at } from '../lib/at.js';

export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(a: { [index: number]: T; length: number }): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = at(a, i, 'a');
      a[i] = at(a, j, 'a');
      a[j] = tmp;
    }
  }

  /** Fills `out` uniformly in [-scale, scale). */
  fillUniform(out: Float32Array, scale: number): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.uniform(-scale, scale);
    return out;
  }

  /** Glorot-uniform initialisation for a fanIn × fanOut matrix. */
  glorot(fanIn: number, fanOut: number): Float32Array {
    return this.fillUniform(new Float32Array(fanIn * fanOut), Math.sqrt(6 / (fanIn + fanOut)));
  }
}
