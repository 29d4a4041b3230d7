/**
 * The model stage's kernel for FM releases: the score the `fm-adagrad` workers log, for one user and
 * many candidates, in Float32Array loops that allocate nothing per request.
 *
 * What a worker's logged prediction of an event is (adapters/fm-adagrad.ts, consumers/processor.ts):
 *   adapted  = σ(zF + b_u + b_i + e_u·(S + e_i) + e_i·S)   (zF, S: the event's features, models/fm.ts)
 *   baseline = the same with both entities' cold views (the release's priors)
 *   logged   = the safeguard's mixture of the two by the worker's entity's warm-up bucket and its
 *              partition's safeguard state (consumers/safeguard.ts `mix`), when the safeguard is on.
 * This kernel computes the same numbers in the same order of float operations: the user's rows are
 * summed once per request and the sums continued with each candidate's rows, which is exactly the
 * loop of `FactorizationMachine.featureLogit` over the event's user rows then item rows.
 */
import { encodeFeaturesInto, featureCount, ITEM_PREFIX, USER_PREFIX } from '../models/features.js';
import { sigmoid, VIEW_BIAS, VIEW_VECTOR, viewSize, type FactorizationMachine } from '../models/fm.js';
import type { Features } from '../schemas/types.js';

/** Where an entity's view is: an array and the offset of its first float. */
export interface ViewRef {
  views: Float32Array;
  at: number;
}

export class FmKernel {
  readonly k: number;
  readonly width: number;
  readonly coldUser: Float32Array;
  readonly coldItem: Float32Array;
  private readonly fm: FactorizationMachine;
  private idx = new Int32Array(256);
  private readonly su: Float32Array;
  private readonly s: Float32Array;
  private nUser = 0;
  private linUser = 0;
  private sqUser = 0;

  constructor(fm: FactorizationMachine) {
    this.fm = fm;
    this.k = fm.k;
    this.width = viewSize(fm.k);
    this.coldUser = fm.coldView('user');
    this.coldItem = fm.coldView('item');
    this.su = new Float32Array(fm.k);
    this.s = new Float32Array(fm.k);
  }

  /** Starts a request: hashes the user's features and sums their rows (kept for `score`). */
  beginUser(features: Features): void {
    const n = featureCount(features);
    if (n > this.idx.length / 2) this.idx = new Int32Array(4 * n);
    this.nUser = encodeFeaturesInto(features, this.fm.buckets, this.idx, 0, USER_PREFIX);
    const { k, v, w } = this.fm;
    const su = this.su;
    su.fill(0);
    let lin = this.fm.w0;
    let sq = 0;
    for (let j = 0; j < this.nUser; j++) {
      const row = this.idx[j] ?? 0;
      lin += w[row] ?? 0;
      const base = row * k;
      for (let f = 0; f < k; f++) {
        const x = v[base + f] ?? 0;
        su[f] = (su[f] ?? 0) + x;
        sq += x * x;
      }
    }
    this.linUser = lin;
    this.sqUser = sq;
  }

  /**
   * Scores one candidate of the request begun by `beginUser`: writes the adapted score to
   * `out[0]` and the baseline (both entities cold) to `out[1]`.
   */
  score(itemFeatures: Features, user: Float32Array, userAt: number, item: Float32Array, itemAt: number, out: Float64Array): void {
    const n0 = this.nUser;
    const need = n0 + featureCount(itemFeatures);
    if (need > this.idx.length) {
      const grown = new Int32Array(2 * need);
      grown.set(this.idx.subarray(0, n0));
      this.idx = grown;
    }
    const n = encodeFeaturesInto(itemFeatures, this.fm.buckets, this.idx, n0, ITEM_PREFIX);
    const { k, v, w } = this.fm;
    const s = this.s;
    s.set(this.su);
    let lin = this.linUser;
    let sq = this.sqUser;
    for (let j = n0; j < n; j++) {
      const row = this.idx[j] ?? 0;
      lin += w[row] ?? 0;
      const base = row * k;
      for (let f = 0; f < k; f++) {
        const x = v[base + f] ?? 0;
        s[f] = (s[f] ?? 0) + x;
        sq += x * x;
      }
    }
    let pair = -sq;
    for (let f = 0; f < k; f++) {
      const sf = s[f] ?? 0;
      pair += sf * sf;
    }
    const zF = lin + 0.5 * pair + this.fm.crossLogit(this.idx, n0, n);
    out[0] = sigmoid(zF + this.entityLogit(user, userAt, item, itemAt));
    out[1] = sigmoid(zF + this.entityLogit(this.coldUser, 0, this.coldItem, 0));
  }

  /** b_u + b_i + e_u·(S + e_i) + e_i·S, as FactorizationMachine.entityLogit, on views at offsets. */
  private entityLogit(user: Float32Array, ua: number, item: Float32Array, ia: number): number {
    const s = this.s;
    let z = (user[ua + VIEW_BIAS] ?? 0) + (item[ia + VIEW_BIAS] ?? 0);
    for (let f = 0; f < this.k; f++) {
      const eu = user[ua + VIEW_VECTOR + f] ?? 0;
      const ei = item[ia + VIEW_VECTOR + f] ?? 0;
      const sf = s[f] ?? 0;
      z += eu * (sf + ei) + ei * sf;
    }
    return z;
  }
}
