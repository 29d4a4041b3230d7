/**
 * The shared factorization machine over hashed categorical features, held in typed arrays (no
 * tfjs: updates are sparse, a few rows per event, which typed arrays do best), with BOTH sides'
 * entities as features whose parameters live outside the model, in per-entity states:
 *
 *   z = w0 + Σ_i w_i + ½(‖S‖² − Σ_i ‖v_i‖²) + Σ_(a,b) c_ab + b_u + b_i + e_u·(S + e_i) + e_i·S,   S = Σ_i v_i
 *
 * i runs over the event's feature rows (user and item features, see `encodeEventInto`). The user's
 * (e_u, b_u) and the item's (e_i, b_i) are two more FM features: exactly the FM in which the user id
 * and the item id are features, with their rows kept per entity (adapted by each side's worker,
 * stored in Redis) instead of in the shared table. The shared part (w0, w, v, c) is the release.
 *
 * c_ab is the optional cross term: one weight per hashed pair of a user row a and an item row b of
 * the event (`crossBuckets` rows; 0 = none), a pair effect of any rank where v·v holds rank k. The
 * trainer decides on the history whether a release has it (trainers/bias-fit.ts).
 *
 * An entity enters the logit through its VIEW, `[b, variance of b, e(k)]` (`viewSize(k)` floats,
 * the first floats of the `fm-adagrad` state): the worker of one side writes its entities' views,
 * the worker of the other side reads them (adapters/fm-adagrad.ts). Each side has a PRIOR (the view
 * of an entity never seen, and how fast its bias drifts), learned by the trainers.
 */
import { ThawError } from '../lib/errors.js';
import { SIDES, type Side } from '../schemas/types.js';

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
  /** Rows of the hashed table of user-feature × item-feature crosses; 0 = no cross term. @default 0 */
  crossBuckets?: number;
}

/** Where an entity of one side starts, and how the bias filter (models/bias-filter.ts) moves its bias. */
export interface EntityPrior {
  /** Vector e of an entity never seen (k floats). */
  readonly vector: Float32Array;
  /** Bias b of an entity never seen (logit). */
  bias: number;
  /** Variance of b before the entity's first event (logit²): how far entities' biases spread. */
  biasVariance: number;
  /** Variance added to b at each of the entity's events (logit²): how fast a bias drifts. */
  biasDrift: number;
  /** The session part of the bias (models/bias-filter.ts SessionBias): ρ kept per event, in [0, 1). */
  sessionDecay: number;
  /** … and its variance gained per event (logit²); 0 = no session part. */
  sessionVariance: number;
}

/** Positions in an entity view. */
export const VIEW_BIAS = 0;
export const VIEW_VARIANCE = 1;
export const VIEW_VECTOR = 2;

/** Floats of an entity view for latent dimension k. */
export function viewSize(k: number): number {
  return k + VIEW_VECTOR;
}

/** Bias-filter hyper-parameters of files that did not record them (format version 1). */
export const LEGACY_BIAS_VARIANCE = 1;
export const LEGACY_BIAS_DRIFT = 0;

const MAGIC = 0x4d464854; // 'THFM' little-endian
/** 1: one side's entity init (the side in the header); 2: both sides' priors; 3: and a cross table. */
const VERSION = 3;
const HEADER_V1 = 40;
const HEADER_V2 = 32;
/** Per side in a version-2 file: bias, variance, drift, session decay, session variance as f64, then the vector as f32. */
const PRIOR_SCALARS = 5;

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

/**
 * The mulberry32 sequence of `mulberry32(seed)` as an object whose state can be saved and restored
 * (a checkpoint of a trainer that draws from it resumes the same draws).
 */
export class Mulberry32 {
  /** The generator's whole state (a u32). */
  state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
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

function emptyPrior(k: number): EntityPrior {
  return { vector: new Float32Array(k), bias: 0, biasVariance: LEGACY_BIAS_VARIANCE, biasDrift: LEGACY_BIAS_DRIFT, sessionDecay: 0, sessionVariance: 0 };
}

export class FactorizationMachine {
  readonly buckets: number;
  readonly k: number;
  w0 = 0;
  readonly w: Float32Array;
  /** Row-major, buckets × k. */
  readonly v: Float32Array;
  /** Rows of the cross table (0: no cross term). */
  readonly crossBuckets: number;
  /** Weight of each hashed (user feature, item feature) pair: a linear term, no vector. */
  readonly c: Float32Array;
  /** Each side's prior: the view of an entity never seen, and its bias drift. */
  readonly priors: Record<Side, EntityPrior>;
  /** Release id, recorded with every prediction. */
  release: string;
  // Scratch of `logit` so scoring allocates nothing.
  private readonly s: Float32Array;

  constructor(buckets: number, k: number, release = 'untrained', crossBuckets = 0) {
    if (!Number.isInteger(buckets) || buckets < 1 || buckets > 2 ** 28) {
      throw new ThawError('MODEL_ERROR', `FM buckets must be an integer in [1, 2^28], got ${buckets}`);
    }
    if (!Number.isInteger(k) || k < 1 || k > 256) throw new ThawError('MODEL_ERROR', `FM k must be an integer in [1, 256], got ${k}`);
    this.buckets = buckets;
    this.k = k;
    if (!Number.isInteger(crossBuckets) || crossBuckets < 0 || crossBuckets > 2 ** 28) {
      throw new ThawError('MODEL_ERROR', `FM crossBuckets must be an integer in [0, 2^28], got ${crossBuckets}`);
    }
    this.w = new Float32Array(buckets);
    this.v = new Float32Array(buckets * k);
    this.crossBuckets = crossBuckets;
    this.c = new Float32Array(crossBuckets);
    this.priors = { user: emptyPrior(k), item: emptyPrior(k) };
    this.s = new Float32Array(k);
    this.release = release;
  }

  /** A fresh model with v ~ N(0, initStd²) (seeded) and everything else zero. */
  static create(opts: FmOptions = {}): FactorizationMachine {
    const fm = new FactorizationMachine(opts.buckets ?? 2 ** 18, opts.k ?? 8, opts.release ?? 'untrained', opts.crossBuckets ?? 0);
    const rand = mulberry32(opts.seed ?? 1);
    const std = opts.initStd ?? 0.01;
    for (let i = 0; i < fm.v.length; i++) fm.v[i] = std * gaussian(rand);
    return fm;
  }

  /**
   * The view of an entity of `side` never seen: `[bias, variance, vector]` of its prior (a new array);
   * the variance is the lasting bias's plus the session bias's (models/bias-filter.ts).
   */
  coldView(side: Side): Float32Array {
    const p = this.priors[side];
    const view = new Float32Array(viewSize(this.k));
    view[VIEW_BIAS] = p.bias;
    view[VIEW_VARIANCE] = p.biasVariance + (p.sessionVariance > 0 ? p.sessionVariance / (1 - p.sessionDecay * p.sessionDecay) : 0);
    view.set(p.vector, VIEW_VECTOR);
    return view;
  }

  /** Row of the cross table of user-feature row `u` and item-feature row `i`. */
  crossRow(u: number, i: number): number {
    return crossHash(u, i) % this.crossBuckets;
  }

  /** Σ c over the crosses of user rows `idx[0..nUser)` with item rows `idx[nUser..n)` (0 without a cross table). */
  crossLogit(idx: Int32Array, nUser: number, n: number): number {
    if (this.crossBuckets === 0) return 0;
    let z = 0;
    for (let a = 0; a < nUser; a++) {
      const u = idx[a] ?? 0;
      for (let b = nUser; b < n; b++) z += this.c[this.crossRow(u, idx[b] ?? 0)] ?? 0;
    }
    return z;
  }

  /**
   * The feature part of the logit, w0 + Σ w_i + ½(‖S‖² − Σ‖v_i‖²) + Σ c_ui, for rows `idx[0..n)` of
   * which the first `nUser` are the user's (`encodeEventInto`); S = Σ v_i is written to `sOut` (k
   * floats): the entities' terms and their gradients need it.
   */
  featureLogit(idx: Int32Array, n: number, nUser: number, sOut: Float32Array): number {
    const k = this.k;
    const v = this.v;
    const w = this.w;
    sOut.fill(0, 0, k);
    let sq = 0;
    let lin = this.w0;
    for (let j = 0; j < n; j++) {
      const row = idx[j] ?? 0;
      lin += w[row] ?? 0;
      const base = row * k;
      for (let f = 0; f < k; f++) {
        const x = v[base + f] ?? 0;
        sOut[f] = (sOut[f] ?? 0) + x;
        sq += x * x;
      }
    }
    let pair = -sq;
    for (let f = 0; f < k; f++) {
      const sf = sOut[f] ?? 0;
      pair += sf * sf;
    }
    return lin + 0.5 * pair + this.crossLogit(idx, nUser, n);
  }

  /**
   * The entities' part of the logit given S (from `featureLogit`): b_u + b_i + e_u·(S + e_i) + e_i·S.
   * `user` and `item` are entity views (`[b, variance, e]`, at offset 0).
   */
  entityLogit(s: Float32Array, user: Float32Array, item: Float32Array): number {
    let z = (user[VIEW_BIAS] ?? 0) + (item[VIEW_BIAS] ?? 0);
    for (let f = 0; f < this.k; f++) {
      const eu = user[VIEW_VECTOR + f] ?? 0;
      const ei = item[VIEW_VECTOR + f] ?? 0;
      const sf = s[f] ?? 0;
      z += eu * (sf + ei) + ei * sf;
    }
    return z;
  }

  /** The whole logit (see the file comment) of rows `idx[0..n)` (the first `nUser` the user's) with the two entity views. */
  logit(idx: Int32Array, n: number, nUser: number, user: Float32Array, item: Float32Array, sOut?: Float32Array): number {
    const s = sOut ?? this.s;
    return this.featureLogit(idx, n, nUser, s) + this.entityLogit(s, user, item);
  }

  /** The cross-table rows of an event's user rows `idx[0..nUser)` × item rows `idx[nUser..n)` (empty without a cross table). */
  crossRowsOf(idx: Int32Array, nUser: number, n: number): Int32Array {
    if (this.crossBuckets === 0) return new Int32Array(0);
    const out = new Int32Array(nUser * (n - nUser));
    let at = 0;
    for (let a = 0; a < nUser; a++) for (let b = nUser; b < n; b++) out[at++] = this.crossRow(idx[a] ?? 0, idx[b] ?? 0);
    return out;
  }

  /** One Adagrad step of the cross rows of an event (accumulators `acc`, one per cross row). */
  crossStep(idx: Int32Array, nUser: number, n: number, g: number, lr: number, l2: number, acc: Float32Array): void {
    if (this.crossBuckets === 0) return;
    const c = this.c;
    for (let a = 0; a < nUser; a++) {
      const u = idx[a] ?? 0;
      for (let b = nUser; b < n; b++) {
        const row = this.crossRow(u, idx[b] ?? 0);
        const cr = c[row] ?? 0;
        const gr = g + l2 * cr;
        const sum = (acc[row] ?? 0) + gr * gr;
        acc[row] = sum;
        c[row] = cr - (lr * gr) / Math.sqrt(sum);
      }
    }
  }

  /** Size in bytes of `toBuffer()`. */
  byteLength(): number {
    return HEADER_V2 + Buffer.byteLength(this.release, 'utf8') + SIDES.length * (8 * PRIOR_SCALARS + 4 * this.k) + 4 * this.buckets * (1 + this.k) + 4 * this.crossBuckets;
  }

  /**
   * Serialises: a 32-byte little-endian header (u32 magic 'THFM', u32 version, u32 buckets, u32 k,
   * u32 release-id length, u32 cross buckets, f64 w0), the release id (UTF-8),
   * then per side (user, item) its prior: f64 bias, biasVariance, biasDrift, sessionDecay,
   * sessionVariance, then f32 vector (k);
   * then w (buckets), v (buckets × k) and c (cross buckets) as little-endian float32.
   * A model without a cross table is written as version 2 (whose cross-bucket field is 0), which
   * builds before the cross term read.
   */
  toBuffer(): Buffer {
    const rel = Buffer.from(this.release, 'utf8');
    const buf = Buffer.alloc(this.byteLength());
    buf.writeUInt32LE(MAGIC, 0);
    buf.writeUInt32LE(this.crossBuckets > 0 ? VERSION : 2, 4);
    buf.writeUInt32LE(this.buckets, 8);
    buf.writeUInt32LE(this.k, 12);
    buf.writeUInt32LE(rel.length, 16);
    buf.writeUInt32LE(this.crossBuckets, 20);
    buf.writeDoubleLE(this.w0, 24);
    let off = HEADER_V2;
    rel.copy(buf, off);
    off += rel.length;
    for (const side of SIDES) {
      const p = this.priors[side];
      [p.bias, p.biasVariance, p.biasDrift, p.sessionDecay, p.sessionVariance].forEach((x, i) => buf.writeDoubleLE(x, off + 8 * i));
      off += 8 * PRIOR_SCALARS;
      off = copyFloats(p.vector, buf, off);
    }
    off = copyFloats(this.w, buf, off);
    off = copyFloats(this.v, buf, off);
    copyFloats(this.c, buf, off);
    return buf;
  }

  /**
   * Inverse of `toBuffer`; throws RELEASE_CORRUPT on any inconsistency. Also reads format version 1
   * (one side's entity init, the side in its header): that side's prior takes it, with the legacy
   * bias-filter settings; the other side's prior is zero.
   */
  static fromBuffer(buf: Buffer): FactorizationMachine {
    const corrupt = (why: string): ThawError => new ThawError('RELEASE_CORRUPT', `FM buffer: ${why}`);
    if (buf.length < HEADER_V2) throw corrupt(`too short (${buf.length} bytes)`);
    if (buf.readUInt32LE(0) !== MAGIC) throw corrupt('bad magic');
    const version = buf.readUInt32LE(4);
    if (version === 1) return fromBufferV1(buf, corrupt);
    if (version !== 2 && version !== VERSION) throw new ThawError('RELEASE_INCOMPATIBLE', `FM buffer version ${version}, this build reads 1 to ${VERSION}`);
    const relLen = buf.readUInt32LE(16);
    if (HEADER_V2 + relLen > buf.length) throw corrupt('release id overruns buffer');
    const crossBuckets = buf.readUInt32LE(20);
    if (version === 2 && crossBuckets !== 0) throw corrupt('version 2 with a cross table');
    const fm = shaped(buf.readUInt32LE(8), buf.readUInt32LE(12), buf.toString('utf8', HEADER_V2, HEADER_V2 + relLen), crossBuckets);
    if (buf.length !== fm.byteLength()) throw corrupt(`length ${buf.length}, expected ${fm.byteLength()}`);
    fm.w0 = buf.readDoubleLE(24);
    let off = HEADER_V2 + relLen;
    for (const side of SIDES) {
      const p = fm.priors[side];
      p.bias = buf.readDoubleLE(off);
      p.biasVariance = buf.readDoubleLE(off + 8);
      p.biasDrift = buf.readDoubleLE(off + 16);
      p.sessionDecay = buf.readDoubleLE(off + 24);
      p.sessionVariance = buf.readDoubleLE(off + 32);
      if (!(p.sessionDecay >= 0 && p.sessionDecay < 1) || !(p.sessionVariance >= 0) || !(p.biasVariance >= 0) || !(p.biasDrift >= 0)) throw corrupt(`bad ${side} prior`);
      off += 8 * PRIOR_SCALARS;
      off = readFloats(buf, off, p.vector);
    }
    off = readFloats(buf, off, fm.w);
    off = readFloats(buf, off, fm.v);
    readFloats(buf, off, fm.c);
    return fm;
  }
}

/** A 32-bit mix of two rows (murmur3's finaliser over an odd-multiplier combination). */
function crossHash(u: number, i: number): number {
  let h = (Math.imul(u, 0x9e3779b1) ^ Math.imul(i, 0x85ebca77)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function shaped(buckets: number, k: number, release: string, crossBuckets = 0): FactorizationMachine {
  try {
    return new FactorizationMachine(buckets, k, release, crossBuckets);
  } catch (err) {
    throw new ThawError('RELEASE_CORRUPT', 'FM buffer: bad shape', { cause: err });
  }
}

/** Format version 1: 40-byte header (…, u32 side, u32 release length, f64 w0, f64 entityBiasInit), release, entityInit, w, v. */
function fromBufferV1(buf: Buffer, corrupt: (why: string) => ThawError): FactorizationMachine {
  if (buf.length < HEADER_V1) throw corrupt(`too short (${buf.length} bytes)`);
  const sideCode = buf.readUInt32LE(16);
  if (sideCode > 1) throw corrupt(`bad side code ${sideCode}`);
  const relLen = buf.readUInt32LE(20);
  if (HEADER_V1 + relLen > buf.length) throw corrupt('release id overruns buffer');
  const k = buf.readUInt32LE(12);
  const fm = shaped(buf.readUInt32LE(8), k, buf.toString('utf8', HEADER_V1, HEADER_V1 + relLen));
  const expected = HEADER_V1 + relLen + 4 * (k + fm.buckets * (1 + k));
  if (buf.length !== expected) throw corrupt(`length ${buf.length}, expected ${expected}`);
  fm.w0 = buf.readDoubleLE(24);
  const prior = fm.priors[sideCode === 0 ? 'user' : 'item'];
  prior.bias = buf.readDoubleLE(32);
  let off = readFloats(buf, HEADER_V1 + relLen, prior.vector);
  off = readFloats(buf, off, fm.w);
  readFloats(buf, off, fm.v);
  return fm;
}

function copyFloats(arr: Float32Array, buf: Buffer, off: number): number {
  Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength).copy(buf, off);
  return off + arr.byteLength;
}

/** Copies through a Uint8Array view: `buf` may not be 4-byte aligned. */
function readFloats(buf: Buffer, off: number, into: Float32Array): number {
  new Uint8Array(into.buffer, into.byteOffset, into.byteLength).set(buf.subarray(off, off + into.byteLength));
  return off + into.byteLength;
}
