/**
 * The dual encoder's two towers, in plain Float32Array math (explicit gradients: small enough to
 * check against finite differences, no tensor runtime to initialise, and per-row sparse updates
 * that a tensor library would make dense).
 *
 * Item tower: v = normalise( Σ_{r ∈ R_i} E[r] / √|R_i| ), R_i = the item's hashed feature rows
 *   (retrieval/features.ts) plus its hashed id row when the id is used. A brand-new item's id row is
 *   never used (`known` false), so its vector comes from its features alone; training drops the id
 *   with probability `idDropout` so the feature-only path is trained for them.
 * User tower: u = normalise( Σ_{r ∈ R_u} U[r] / √|R_u| + H · h ), h = the mean of the item-tower
 *   outputs of the user's last `historyLength` positives (constants: no gradient flows into the
 *   history items, which keeps a step O(batch) rather than O(batch × history)).
 * Score: u · v (cosine). Optimiser: Adagrad, row-sparse for E and U.
 */
import { Rng } from '../models/rng.js';
import { featureRows, idRow } from './features.js';
import type { Features } from '../schemas/types.js';

/** Options of the dual encoder. */
export interface DualEncoderOptions {
  /** Vector width. @default 32 */
  dim?: number;
  /** Rows of the item table (features and ids). @default 16384 */
  itemBuckets?: number;
  /** Rows of the user feature table. @default 4096 */
  userBuckets?: number;
  /** Past positives averaged into the user tower. @default 20 */
  historyLength?: number;
  /** Probability of dropping a known item's id row in a training step. @default 0.5 */
  idDropout?: number;
  /** Adagrad learning rate. @default 0.05 */
  learningRate?: number;
  /** Initial weights: uniform in ±initScale. @default 0.1 */
  initScale?: number;
  seed?: number;
}

type Resolved = Required<DualEncoderOptions>;

const DEFAULTS: Resolved = { dim: 32, itemBuckets: 16384, userBuckets: 4096, historyLength: 20, idDropout: 0.5, learningRate: 0.05, initScale: 0.1, seed: 1 };

/** Encoded inputs of one item. */
export interface ItemInput {
  rows: Int32Array;
  idRow: number;
}

/** Forward state of one tower output, kept for its backward pass. */
interface TowerTrace {
  rows: Int32Array;
  /** 1 / √|rows|. */
  scale: number;
  /** Pre-normalisation norm. */
  norm: number;
  /** The history mean (user tower only). */
  history?: Float32Array;
}

/** Sparse row gradients of a table. */
type RowGrads = Map<number, Float32Array>;

export interface DualEncoderGrads {
  item: RowGrads;
  user: RowGrads;
  h: Float32Array;
}

/** Writes v / |v| into `v`; returns |v| (a zero vector stays zero, norm reported as 1). */
function normalise(v: Float32Array, off: number, dim: number): number {
  let s = 0;
  for (let j = 0; j < dim; j++) s += (v[off + j] ?? 0) ** 2;
  const n = Math.sqrt(s);
  if (n === 0) return 1;
  for (let j = 0; j < dim; j++) v[off + j] = (v[off + j] ?? 0) / n;
  return n;
}

/** Back through y = x/|x|: dx = (dy − y (y·dy)) / |x|, into `out`. */
function normaliseBackward(y: Float32Array, yo: number, dy: Float32Array, dyo: number, norm: number, dim: number, out: Float32Array): void {
  let yd = 0;
  for (let j = 0; j < dim; j++) yd += (y[yo + j] ?? 0) * (dy[dyo + j] ?? 0);
  for (let j = 0; j < dim; j++) out[j] = ((dy[dyo + j] ?? 0) - (y[yo + j] ?? 0) * yd) / norm;
}

function addRowGrad(grads: RowGrads, row: number, scale: number, dx: Float32Array, dim: number): void {
  let g = grads.get(row);
  if (!g) grads.set(row, (g = new Float32Array(dim)));
  for (let j = 0; j < dim; j++) g[j] = (g[j] ?? 0) + scale * (dx[j] ?? 0);
}

export class DualEncoder {
  readonly opts: Resolved;
  readonly itemTable: Float32Array;
  readonly userTable: Float32Array;
  /** dim × dim, row-major; starts as the identity. */
  readonly h: Float32Array;
  private readonly itemAcc: Float32Array;
  private readonly userAcc: Float32Array;
  private readonly hAcc: Float32Array;
  readonly rng: Rng;

  constructor(options: DualEncoderOptions = {}) {
    this.opts = { ...DEFAULTS, ...options };
    const { dim, itemBuckets, userBuckets, initScale, seed } = this.opts;
    this.rng = new Rng(seed);
    this.itemTable = this.rng.fillUniform(new Float32Array(itemBuckets * dim), initScale);
    this.userTable = this.rng.fillUniform(new Float32Array(userBuckets * dim), initScale);
    this.h = new Float32Array(dim * dim);
    for (let j = 0; j < dim; j++) this.h[j * dim + j] = 1;
    this.itemAcc = new Float32Array(itemBuckets * dim);
    this.userAcc = new Float32Array(userBuckets * dim);
    this.hAcc = new Float32Array(dim * dim);
  }

  /** The item tower's inputs of an item's features and id. */
  itemInput(itemId: string, features: Features): ItemInput {
    return { rows: featureRows(features, this.opts.itemBuckets), idRow: idRow(itemId, this.opts.itemBuckets) };
  }

  /** The user tower's feature rows. */
  userRows(features: Features): Int32Array {
    return featureRows(features, this.opts.userBuckets);
  }

  /** Item tower into out[off..off+dim); `useId` adds the id row. Returns its trace. */
  itemForward(input: ItemInput, useId: boolean, out: Float32Array, off: number): TowerTrace {
    const { dim } = this.opts;
    const rows = useId ? Int32Array.from([...input.rows, input.idRow]) : input.rows;
    const scale = rows.length > 0 ? 1 / Math.sqrt(rows.length) : 0;
    for (let j = 0; j < dim; j++) out[off + j] = 0;
    for (const r of rows) for (let j = 0; j < dim; j++) out[off + j] = (out[off + j] ?? 0) + scale * (this.itemTable[r * dim + j] ?? 0);
    const norm = normalise(out, off, dim);
    return { rows, scale, norm };
  }

  /** User tower into out[off..off+dim), with `history` (dim floats, the history mean; zeros when none). */
  userForward(rows: Int32Array, history: Float32Array, out: Float32Array, off: number): TowerTrace {
    const { dim } = this.opts;
    const scale = rows.length > 0 ? 1 / Math.sqrt(rows.length) : 0;
    for (let i = 0; i < dim; i++) {
      let s = 0;
      for (const r of rows) s += scale * (this.userTable[r * dim + i] ?? 0);
      for (let j = 0; j < dim; j++) s += (this.h[i * dim + j] ?? 0) * (history[j] ?? 0);
      out[off + i] = s;
    }
    const norm = normalise(out, off, dim);
    return { rows, scale, norm, history };
  }

  /** Accumulates the item tower's parameter gradients for ∂loss/∂v (`dv` at `dvo`), given its output `v` at `vo`. */
  itemBackward(trace: TowerTrace, v: Float32Array, vo: number, dv: Float32Array, dvo: number, grads: DualEncoderGrads): void {
    const { dim } = this.opts;
    const dx = new Float32Array(dim);
    normaliseBackward(v, vo, dv, dvo, trace.norm, dim, dx);
    for (const r of trace.rows) addRowGrad(grads.item, r, trace.scale, dx, dim);
  }

  /** Accumulates the user tower's parameter gradients for ∂loss/∂u. */
  userBackward(trace: TowerTrace, u: Float32Array, uo: number, du: Float32Array, duo: number, grads: DualEncoderGrads): void {
    const { dim } = this.opts;
    const dz = new Float32Array(dim);
    normaliseBackward(u, uo, du, duo, trace.norm, dim, dz);
    for (const r of trace.rows) addRowGrad(grads.user, r, trace.scale, dz, dim);
    const hist = trace.history;
    if (hist) for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) grads.h[i * dim + j] = (grads.h[i * dim + j] ?? 0) + (dz[i] ?? 0) * (hist[j] ?? 0);
  }

  newGrads(): DualEncoderGrads {
    return { item: new Map(), user: new Map(), h: new Float32Array(this.opts.dim * this.opts.dim) };
  }

  /** One Adagrad step (row-sparse for the tables). */
  apply(grads: DualEncoderGrads): void {
    const { dim, learningRate: lr } = this.opts;
    const step = (w: Float32Array, acc: Float32Array, at: number, g: number): void => {
      const a = (acc[at] ?? 0) + g * g;
      acc[at] = a;
      w[at] = (w[at] ?? 0) - (lr * g) / (Math.sqrt(a) + 1e-8);
    };
    for (const [r, g] of grads.item) for (let j = 0; j < dim; j++) step(this.itemTable, this.itemAcc, r * dim + j, g[j] ?? 0);
    for (const [r, g] of grads.user) for (let j = 0; j < dim; j++) step(this.userTable, this.userAcc, r * dim + j, g[j] ?? 0);
    for (let k = 0; k < dim * dim; k++) step(this.h, this.hAcc, k, grads.h[k] ?? 0);
  }
}
