/**
 * Factorization machine over hashed categorical features, held in typed arrays (no tfjs: updates
 * are sparse, a few rows per event, which typed arrays do best).
 *
 *   z = w0 + Σ_i w_i + b + ½(‖Σ_i v_i‖² − Σ_i ‖v_i‖²) + e·Σ_i v_i
 *
 * i runs over the event's feature rows (user and item features, see `encodeEventInto`). `e` (k floats)
 * and `b` belong to ONE entity of the adapted side: the entity enters as one more FM feature whose
 * vector and bias live in the entity's state instead of the shared table. The shared part (w0, w,
 * v, and the cold-entity init) is the release; it is frozen while adapters run.
 */
import { ThawError } from '../lib/errors.js';
import type { Side } from '../schemas/types.js';

/** Options of `FactorizationMachine.create`. */
export interface FmOptions {
  /** Rows of the hashed feature table. @default 262144 (2^18) */
  buckets?: number;
  /** Latent dimension. @default 8 */
  k?: number;
  /** Std of the normal init of v. @default 0.01 */
  initStd?: number;
  /** Seed of the init. @default 1 */
  seed?: number;
  /** Release id. @default 'untrained' */
  release?: string;
  /** Side whose entities the per-entity vector stands for (recorded in the release). @default 'item' */
  side?: Side;
}

const MAGIC = 0x4d464854; // 'THFM' little-endian
const VERSION = 1;
const HEADER_BYTES = 40;

/** A small, fast, seedable PRNG (mulberry32): uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal from a uniform PRNG (Box–Muller). */
export function gaussian(rand: () => number): number {
  let u = rand();
  while (u <= 1e-12) u = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const ez = Math.exp(z);
  return ez / (1 + ez);
}

export class FactorizationMachine {
  readonly buckets: number;
  readonly k: number;
  w0 = 0;
  readonly w: Float32Array;
  /** Row-major, buckets × k. */
  readonly v: Float32Array;
  /** Vector of an entity never seen (mean of the trained entities' vectors), k floats. */
  readonly entityInit: Float32Array;
  /** Bias of an entity never seen (mean of the trained entities' biases). */
  entityBiasInit = 0;
  /** Which side's entity the per-entity vector is. */
  side: Side;
  /** Release id, recorded with every prediction. */
  release: string;
  // Scratch of `logit` so scoring allocates nothing.
  private readonly s: Float32Array;

  constructor(buckets: number, k: number, side: Side = 'item', release = 'untrained') {
    if (!Number.isInteger(buckets) || buckets < 1 || buckets > 2 ** 28) {
      throw new ThawError('MODEL_ERROR', `FM buckets must be an integer in [1, 2^28], got ${buckets}`);
    }
    if (!Number.isInteger(k) || k < 1 || k > 256) throw new ThawError('MODEL_ERROR', `FM k must be an integer in [1, 256], got ${k}`);
    this.buckets = buckets;
    this.k = k;
    this.w = new Float32Array(buckets);
    this.v = new Float32Array(buckets * k);
    this.entityInit = new Float32Array(k);
    this.s = new Float32Array(k);
    this.side = side;
    this.release = release;
  }

  /** A fresh model with v ~ N(0, initStd²) (seeded) and everything else zero. */
  static create(opts: FmOptions = {}): FactorizationMachine {
    const fm = new FactorizationMachine(opts.buckets ?? 2 ** 18, opts.k ?? 8, opts.side ?? 'item', opts.release ?? 'untrained');
    const rand = mulberry32(opts.seed ?? 1);
    const std = opts.initStd ?? 0.01;
    for (let i = 0; i < fm.v.length; i++) fm.v[i] = std * gaussian(rand);
    return fm;
  }

  /**
   * Σ_i v_i over the first `n` rows of `idx` into `out` (k floats); returns Σ_i ‖v_i‖².
   * ∂z/∂e = Σ_i v_i, which is what adapters need for the entity vector's gradient.
   */
  sumV(idx: Int32Array, out: Float32Array, n = idx.length): number {
    const k = this.k;
    const v = this.v;
    out.fill(0, 0, k);
    let sq = 0;
    for (let j = 0; j < n; j++) {
      const base = idx[j]! * k;
      for (let f = 0; f < k; f++) {
        const x = v[base + f]!;
        out[f]! += x;
        sq += x * x;
      }
    }
    return sq;
  }

  /** Σ_i w_i over the first `n` rows. */
  sumW(idx: Int32Array, n = idx.length): number {
    let s = 0;
    for (let j = 0; j < n; j++) s += this.w[idx[j]!]!;
    return s;
  }

  /**
   * The logit z (see the file comment) for feature rows `idx[0..n)`, with entity vector `e` and bias `b`
   * (omit `e` for no entity feature). If `sOut` is given it receives Σ_i v_i, so a caller computing
   * the gradient does not walk the rows twice.
   */
  logit(idx: Int32Array, e?: Float32Array | null, b = 0, n = idx.length, sOut?: Float32Array): number {
    const s = sOut ?? this.s;
    const sq = this.sumV(idx, s, n);
    let z = this.w0 + this.sumW(idx, n) + b;
    let pair = -sq;
    let ent = 0;
    for (let f = 0; f < this.k; f++) {
      const sf = s[f]!;
      pair += sf * sf;
      if (e) ent += e[f]! * sf;
    }
    z += 0.5 * pair + ent;
    return z;
  }

  /** Size in bytes of `toBuffer()`. */
  byteLength(): number {
    return HEADER_BYTES + Buffer.byteLength(this.release, 'utf8') + 4 * (this.k + this.buckets * (1 + this.k));
  }

  /**
   * Serialises: a 40-byte little-endian header (u32 magic 'THFM', u32 version, u32 buckets, u32 k,
   * u32 side (0 user, 1 item), u32 release-id length, f64 w0, f64 entityBiasInit), the release id
   * (UTF-8), then entityInit (k), w (buckets) and v (buckets × k) as little-endian float32.
   */
  toBuffer(): Buffer {
    const rel = Buffer.from(this.release, 'utf8');
    const buf = Buffer.alloc(this.byteLength());
    buf.writeUInt32LE(MAGIC, 0);
    buf.writeUInt32LE(VERSION, 4);
    buf.writeUInt32LE(this.buckets, 8);
    buf.writeUInt32LE(this.k, 12);
    buf.writeUInt32LE(this.side === 'user' ? 0 : 1, 16);
    buf.writeUInt32LE(rel.length, 20);
    buf.writeDoubleLE(this.w0, 24);
    buf.writeDoubleLE(this.entityBiasInit, 32);
    rel.copy(buf, HEADER_BYTES);
    let off = HEADER_BYTES + rel.length;
    for (const arr of [this.entityInit, this.w, this.v]) {
      Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength).copy(buf, off);
      off += arr.byteLength;
    }
    return buf;
  }

  /** Inverse of `toBuffer`; throws RELEASE_CORRUPT on any inconsistency. */
  static fromBuffer(buf: Buffer): FactorizationMachine {
    const corrupt = (why: string): ThawError => new ThawError('RELEASE_CORRUPT', `FM buffer: ${why}`);
    if (buf.length < HEADER_BYTES) throw corrupt(`too short (${buf.length} bytes)`);
    if (buf.readUInt32LE(0) !== MAGIC) throw corrupt('bad magic');
    const version = buf.readUInt32LE(4);
    if (version !== VERSION) throw new ThawError('RELEASE_INCOMPATIBLE', `FM buffer version ${version}, this build reads ${VERSION}`);
    const buckets = buf.readUInt32LE(8);
    const k = buf.readUInt32LE(12);
    const sideCode = buf.readUInt32LE(16);
    if (sideCode > 1) throw corrupt(`bad side code ${sideCode}`);
    const relLen = buf.readUInt32LE(20);
    if (HEADER_BYTES + relLen > buf.length) throw corrupt('release id overruns buffer');
    const release = buf.toString('utf8', HEADER_BYTES, HEADER_BYTES + relLen);
    let fm: FactorizationMachine;
    try {
      fm = new FactorizationMachine(buckets, k, sideCode === 0 ? 'user' : 'item', release);
    } catch (err) {
      throw new ThawError('RELEASE_CORRUPT', 'FM buffer: bad shape', { cause: err });
    }
    if (buf.length !== fm.byteLength()) throw corrupt(`length ${buf.length}, expected ${fm.byteLength()}`);
    fm.w0 = buf.readDoubleLE(24);
    fm.entityBiasInit = buf.readDoubleLE(32);
    let off = HEADER_BYTES + relLen;
    for (const arr of [fm.entityInit, fm.w, fm.v]) {
      // Copy through a Uint8Array view: `buf` may not be 4-byte aligned.
      new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength).set(buf.subarray(off, off + arr.byteLength));
      off += arr.byteLength;
    }
    return fm;
  }
}
