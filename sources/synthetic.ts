/**
 * A seeded synthetic click stream with planted structure, so adapters can be judged at millions
 * of events where the truth is known:
 *
 * - Users and items have latent factors (dim `factorDim`) and biases that are PARTLY predictable
 *   from their categorical features: every feature token has a latent vector and a bias; an entity's
 *   factor = √share·(mean of its tokens' vectors, rescaled) + √(1−share)·(entity-specific residual).
 *   The residual is revealed only by the entity's own interactions: that is what adapters learn.
 * - Item-specific feature interactions: each item weighs user-field × item-field interactions with
 *   its own 4×4 matrix W_item = W_category + item noise (the EmerG setting). The term is
 *   Σ_{f,g} W_item[f,g]·⟨h_user(f), h_item(g)⟩ with small interaction vectors h per token.
 * - New users and items keep arriving: a fraction `newEntityFraction` of each side arrives at
 *   uniformly random points of the stream, the rest exists from the start.
 * - Zipf-like popularity: among arrived entities, one with popularity rank r is picked with weight
 *   (r+1)^−popularityExponent (ranks are a random permutation, independent of quality).
 * - label ~ Bernoulli(sigmoid(ctrBias + b_u + b_i + ⟨u, i⟩ + interactions)).
 * - `drift` > 0: token vectors rotate towards a second random vector as the stream goes on (feature
 *   effects change), and popularity ranks are partly reshuffled 20 times over the stream.
 *
 * Memory is O(users + items), never O(events): events are generated lazily, feature objects are
 * shared (frozen) per entity. Deterministic for a seed; event ids are `syn-<seed>-<n>`.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { EntityProfile, Features, LabelledEvent } from '../schemas/types.js';
import { ConfigError } from '../lib/errors.js';
import { gaussian, mulberry32 } from '../models/fm.js';
import { at } from '../lib/at.js';

/** Options of the synthetic stream. */
export interface SyntheticOptions {
  /** PRNG seed; the same seed and options give the same stream. @default 1 */
  seed?: number;
  /** Number of events. @default 100000 */
  events?: number;
  /** Users over the whole stream (arrived or to arrive). @default 5000 */
  users?: number;
  /** Items over the whole stream. @default 2000 */
  items?: number;
  /** Dimension of the planted latent factors. @default 8 */
  factorDim?: number;
  /** New-entity rate: fraction of users and of items that arrive during the stream (0..1). @default 0.5 */
  newEntityFraction?: number;
  /** Time of the first event, unix ms. @default 1704067200000 (2024-01-01T00:00:00Z) */
  startMs?: number;
  /** Time between consecutive events, ms. @default 100 */
  eventSpacingMs?: number;
  /** Global logit offset; sets the overall CTR (about 0.2 at the default). @default -1.9 */
  ctrBias?: number;
  /** Zipf exponent of popularity. @default 0.9 */
  popularityExponent?: number;
  /** Share of factor/bias variance explained by features (0..1); the rest is entity-specific. @default 0.5 */
  featureShare?: number;
  /** Per-coordinate std of the planted factors (sets how separable clicks are). @default 0.7 */
  factorStd?: number;
  /** Drift in 0..1: how far feature effects rotate and popularity reshuffles over the stream. @default 0 */
  drift?: number;
}

/** Options with every default applied. */
export type ResolvedSyntheticOptions = Required<SyntheticOptions>;

const DEFAULTS: ResolvedSyntheticOptions = {
  seed: 1,
  events: 100_000,
  users: 5_000,
  items: 2_000,
  factorDim: 8,
  newEntityFraction: 0.5,
  startMs: Date.UTC(2024, 0, 1),
  eventSpacingMs: 100,
  ctrBias: -1.9,
  popularityExponent: 0.9,
  featureShare: 0.5,
  factorStd: 0.7,
  drift: 0,
};

/** Option keys accepted (also by `parseSourceSpec`). */
export const SYNTHETIC_OPTION_KEYS = Object.keys(DEFAULTS) as (keyof SyntheticOptions)[];

function resolve(opts: SyntheticOptions): ResolvedSyntheticOptions {
  const o = { ...DEFAULTS };
  for (const key of SYNTHETIC_OPTION_KEYS) {
    const v = opts[key];
    if (v !== undefined) o[key] = v;
  }
  const check = (key: keyof SyntheticOptions, ok: boolean, rule: string): void => {
    if (!ok) throw new ConfigError(`synthetic.${key}`, `${rule}, got ${String(opts[key])}`);
  };
  for (const key of SYNTHETIC_OPTION_KEYS) check(key, typeof o[key] === 'number' && Number.isFinite(o[key]), 'must be a finite number');
  check('seed', Number.isInteger(o.seed), 'must be an integer');
  check('events', Number.isInteger(o.events) && o.events >= 0, 'must be an integer >= 0');
  check('users', Number.isInteger(o.users) && o.users >= 1, 'must be an integer >= 1');
  check('items', Number.isInteger(o.items) && o.items >= 1, 'must be an integer >= 1');
  check('factorDim', Number.isInteger(o.factorDim) && o.factorDim >= 1 && o.factorDim <= 128, 'must be an integer in [1, 128]');
  check('newEntityFraction', o.newEntityFraction >= 0 && o.newEntityFraction <= 1, 'must be in [0, 1]');
  check('eventSpacingMs', o.eventSpacingMs >= 0, 'must be >= 0');
  check('popularityExponent', o.popularityExponent >= 0, 'must be >= 0');
  check('featureShare', o.featureShare >= 0 && o.featureShare <= 1, 'must be in [0, 1]');
  check('factorStd', o.factorStd >= 0, 'must be >= 0');
  check('drift', o.drift >= 0 && o.drift <= 1, 'must be in [0, 1]');
  return o;
}

// Vocabularies. Field order inside each entry is the sorted key order of the feature objects.
const AGES = ['1', '18', '25', '35', '45', '50', '56'];
const GENDERS = ['F', 'M'];
const N_OCC = 21;
const N_REGION = 50;
const N_CATEGORY = 20;
const BRANDS_PER_CATEGORY = 10;
const N_PRICE = 10;
const N_TAGS = 100;
/** Interaction vector size and the 4 user × 4 item fields of the interaction term. */
const M = 4;
const FU = 4;
const FI = 4;

const pad = (n: number, w: number): string => String(n).padStart(w, '0');

/** Token table of one field: per token a factor vector (and its drift target), a bias, an interaction vector. */
class TokenTable {
  readonly vec: Float32Array;
  readonly vec1: Float32Array;
  readonly bias: Float32Array;
  readonly inter: Float32Array;
  constructor(
    readonly tokens: string[],
    k: number,
    std: number,
    rand: () => number,
  ) {
    const n = tokens.length;
    this.vec = new Float32Array(n * k);
    this.vec1 = new Float32Array(n * k);
    this.bias = new Float32Array(n);
    this.inter = new Float32Array(n * M);
    for (let i = 0; i < n * k; i++) this.vec[i] = std * gaussian(rand);
    for (let i = 0; i < n * k; i++) this.vec1[i] = std * gaussian(rand);
    for (let i = 0; i < n; i++) this.bias[i] = gaussian(rand);
    for (let i = 0; i < n * M; i++) this.inter[i] = gaussian(rand);
  }
}

/** One side's entities: ids, features, planted parameters, arrival and popularity. */
interface Side {
  n: number;
  ids: string[];
  features: Features[];
  /** Feature part of the factor at drift 0 and its drift target, n × k, already scaled by √share. */
  feat0: Float32Array;
  feat1: Float32Array;
  /** Entity residual, n × k, scaled by √(1 − share). */
  resid: Float32Array;
  bias: Float32Array;
  /** Users: their 4 interaction vectors (n × FU × M). Items: Σ_g W_item[f,g]·h_item(g) (n × FU × M). */
  inter: Float32Array;
  /** Event index at which entity i arrives (non-decreasing in i). */
  arrival: Float64Array;
  /** Popularity weight of entity i. */
  weight: Float64Array;
}

/** Fenwick tree of weights: add O(log n), sample proportional to weight O(log n). */
class Fenwick {
  private readonly t: Float64Array;
  private readonly top: number;
  total = 0;
  constructor(readonly n: number) {
    this.t = new Float64Array(n + 1);
    let top = 1;
    while (top * 2 <= n) top *= 2;
    this.top = top;
  }
  add(i: number, delta: number): void {
    this.total += delta;
    for (let x = i + 1; x <= this.n; x += x & -x) this.t[x] = (this.t[x] ?? 0) + delta;
  }
  /** Index i such that prefix(i) <= r < prefix(i+1). */
  find(r: number): number {
    let pos = 0;
    for (let step = this.top; step > 0; step >>= 1) {
      const nx = pos + step;
      if (nx <= this.n && (this.t[nx] ?? 0) <= r) {
        pos = nx;
        r -= this.t[nx] ?? 0;
      }
    }
    return pos < this.n ? pos : this.n - 1;
  }
}

/** Deterministic synthetic stream; iterate `events()` (sync) or the object itself (async). */
export class SyntheticStream implements AsyncIterable<LabelledEvent> {
  readonly options: ResolvedSyntheticOptions;
  private readonly users: Side;
  private readonly items: Side;

  constructor(opts: SyntheticOptions = {}) {
    this.options = resolve(opts);
    const o = this.options;
    const rand = mulberry32(o.seed);
    const k = o.factorDim;
    // Token vectors are scaled so that the mean over 4 fields, times √4, has std factorStd.
    const tok = (names: string[]): TokenTable => new TokenTable(names, k, o.factorStd, rand);
    const age = tok(AGES);
    const gender = tok(GENDERS);
    const occ = tok(Array.from({ length: N_OCC }, (_, i) => `occ${pad(i, 2)}`));
    const region = tok(Array.from({ length: N_REGION }, (_, i) => `r${pad(i, 2)}`));
    const brand = tok(Array.from({ length: N_CATEGORY * BRANDS_PER_CATEGORY }, (_, i) => `b${pad(i, 3)}`));
    const category = tok(Array.from({ length: N_CATEGORY }, (_, i) => `c${pad(i, 2)}`));
    const price = tok(Array.from({ length: N_PRICE }, (_, i) => `p${i}`));
    const tags = tok(Array.from({ length: N_TAGS }, (_, i) => `t${pad(i, 2)}`));
    // Category-level interaction matrices; items add their own noise.
    const wCat = new Float32Array(N_CATEGORY * FU * FI);
    for (let i = 0; i < wCat.length; i++) wCat[i] = 0.07 * gaussian(rand);

    const sf = Math.sqrt(o.featureShare);
    const sr = Math.sqrt(1 - o.featureShare);
    const BIAS_STD = 0.5;

    const makeSide = (n: number): Side => ({
      n,
      ids: new Array<string>(n),
      features: new Array<Features>(n),
      feat0: new Float32Array(n * k),
      feat1: new Float32Array(n * k),
      resid: new Float32Array(n * k),
      bias: new Float32Array(n),
      inter: new Float32Array(n * FU * M),
      arrival: arrivals(n, o.newEntityFraction, o.events, rand),
      weight: zipfWeights(n, o.popularityExponent, rand),
    });

    /** Fills entity i's planted parameters from its tokens (token lists per field, tags averaged). */
    const plant = (s: Side, i: number, fields: [TokenTable, number[]][]): void => {
      const nf = fields.length;
      let fb = 0;
      for (const [table, toks] of fields) {
        const w = 1 / toks.length;
        for (const t of toks) {
          fb += (w * (table.bias[t] ?? 0)) / nf;
          for (let f = 0; f < k; f++) {
            s.feat0[i * k + f] = (s.feat0[i * k + f] ?? 0) + (w * (table.vec[t * k + f] ?? 0)) / nf;
            s.feat1[i * k + f] = (s.feat1[i * k + f] ?? 0) + (w * (table.vec1[t * k + f] ?? 0)) / nf;
          }
        }
      }
      // mean over nf fields has std/√nf: rescale back to std, then weigh by √share.
      const scale = sf * Math.sqrt(nf);
      for (let f = 0; f < k; f++) {
        s.feat0[i * k + f] = (s.feat0[i * k + f] ?? 0) * scale;
        s.feat1[i * k + f] = (s.feat1[i * k + f] ?? 0) * scale;
        s.resid[i * k + f] = sr * o.factorStd * gaussian(rand);
      }
      s.bias[i] = BIAS_STD * (sf * Math.sqrt(nf) * fb + sr * gaussian(rand));
    };

    const pick = (n: number): number => Math.floor(rand() * n);

    this.users = makeSide(o.users);
    for (let i = 0; i < o.users; i++) {
      const a = pick(AGES.length);
      const g = pick(2);
      const oc = pick(N_OCC);
      // Regions are skewed: a few big ones, many small.
      const r = Math.min(N_REGION - 1, Math.floor(N_REGION * rand() * rand()));
      const u = this.users;
      u.ids[i] = `u${i}`;
      u.features[i] = Object.freeze({ age: [at(AGES, a, 'AGES')], gender: [at(GENDERS, g, 'GENDERS')], occ: [at(occ.tokens, oc, 'occ.tokens')], region: [at(region.tokens, r, 'region.tokens')] });
      plant(u, i, [
        [age, [a]],
        [gender, [g]],
        [occ, [oc]],
        [region, [r]],
      ]);
      const fieldToks: [TokenTable, number][] = [
        [age, a],
        [gender, g],
        [occ, oc],
        [region, r],
      ];
      fieldToks.forEach(([table, t], f) => {
        for (let m = 0; m < M; m++) u.inter[(i * FU + f) * M + m] = table.inter[t * M + m] ?? 0;
      });
    }

    this.items = makeSide(o.items);
    const hItem = new Float32Array(FI * M);
    for (let i = 0; i < o.items; i++) {
      const c = pick(N_CATEGORY);
      const b = c * BRANDS_PER_CATEGORY + pick(BRANDS_PER_CATEGORY);
      const p = pick(N_PRICE);
      const nTags = 1 + pick(3);
      const tg: number[] = [];
      while (tg.length < nTags) {
        const t = pick(N_TAGS);
        if (!tg.includes(t)) tg.push(t);
      }
      tg.sort((x, y) => x - y);
      const it = this.items;
      it.ids[i] = `i${i}`;
      it.features[i] = Object.freeze({
        brand: [at(brand.tokens, b, 'brand.tokens')],
        category: [at(category.tokens, c, 'category.tokens')],
        price_bucket: [at(price.tokens, p, 'price.tokens')],
        tags: tg.map((t) => at(tags.tokens, t, 'tags.tokens')),
      });
      plant(it, i, [
        [brand, [b]],
        [category, [c]],
        [price, [p]],
        [tags, tg],
      ]);
      // Item field interaction vectors (tags averaged), then fold this item's own W into them.
      hItem.fill(0);
      const fieldToks: [TokenTable, number[]][] = [
        [brand, [b]],
        [category, [c]],
        [price, [p]],
        [tags, tg],
      ];
      fieldToks.forEach(([table, toks], g) => {
        for (const t of toks) for (let m = 0; m < M; m++) hItem[g * M + m] = (hItem[g * M + m] ?? 0) + (table.inter[t * M + m] ?? 0) / toks.length;
      });
      for (let f = 0; f < FU; f++) {
        for (let g = 0; g < FI; g++) {
          const w = (wCat[(c * FU + f) * FI + g] ?? 0) + 0.06 * gaussian(rand);
          for (let m = 0; m < M; m++) it.inter[(i * FU + f) * M + m] = (it.inter[(i * FU + f) * M + m] ?? 0) + w * (hItem[g * M + m] ?? 0);
        }
      }
    }
  }

  /** The stream, synchronously (fastest; for offline code and tests). */
  *events(): Generator<LabelledEvent, void, undefined> {
    const o = this.options;
    const k = o.factorDim;
    const rand = mulberry32((o.seed ^ 0x5bd1e995) >>> 0);
    const U = this.users;
    const I = this.items;
    const uw = Float64Array.from(U.weight);
    const iw = Float64Array.from(I.weight);
    const ut = new Fenwick(U.n);
    const it = new Fenwick(I.n);
    let nextU = 0;
    let nextI = 0;
    const checkpoints = 20;
    const every = Math.max(1, Math.ceil(o.events / checkpoints));
    const eventsDen = Math.max(1, o.events);
    let cos = 1;
    let sin = 0;
    for (let n = 0; n < o.events; n++) {
      for (; nextU < U.n && (U.arrival[nextU] ?? 0) <= n; nextU++) ut.add(nextU, uw[nextU] ?? 0);
      for (; nextI < I.n && (I.arrival[nextI] ?? 0) <= n; nextI++) it.add(nextI, iw[nextI] ?? 0);
      if (o.drift > 0 && n > 0 && n % every === 0) {
        reshuffle(U.n, uw, ut, nextU, o.drift, rand);
        reshuffle(I.n, iw, it, nextI, o.drift, rand);
      }
      if (o.drift > 0) {
        const theta = (o.drift * Math.PI * n) / (2 * eventsDen);
        cos = Math.cos(theta);
        sin = Math.sin(theta);
      }
      const u = ut.find(rand() * ut.total);
      const i = it.find(rand() * it.total);
      let z = o.ctrBias + (U.bias[u] ?? 0) + (I.bias[i] ?? 0);
      const ub = u * k;
      const ib = i * k;
      for (let f = 0; f < k; f++) {
        const uf = cos * (U.feat0[ub + f] ?? 0) + sin * (U.feat1[ub + f] ?? 0) + (U.resid[ub + f] ?? 0);
        const itf = cos * (I.feat0[ib + f] ?? 0) + sin * (I.feat1[ib + f] ?? 0) + (I.resid[ib + f] ?? 0);
        z += uf * itf;
      }
      const um = u * FU * M;
      const im = i * FU * M;
      for (let x = 0; x < FU * M; x++) z += (U.inter[um + x] ?? 0) * (I.inter[im + x] ?? 0);
      const label: 0 | 1 = rand() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
      yield {
        eventId: `syn-${o.seed}-${n}`,
        timeMs: o.startMs + n * o.eventSpacingMs,
        userId: at(U.ids, u, 'U.ids'),
        itemId: at(I.ids, i, 'I.ids'),
        label,
        userFeatures: at(U.features, u, 'U.features'),
        itemFeatures: at(I.features, i, 'I.features'),
      };
    }
  }

  /**
   * The stream as an async iterable. Yields to the event loop every 4096 events so a consumer that
   * never awaits I/O (a tight loop over a 10M-event stream) does not starve timers and sockets.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<LabelledEvent, void, undefined> {
    let n = 0;
    for (const ev of this.events()) {
      yield ev;
      if (++n % 4096 === 0) await yieldToLoop();
    }
  }

  /** Profiles of every user then every item, stamped with its arrival time. */
  *profiles(): Generator<EntityProfile, void, undefined> {
    const o = this.options;
    for (const [side, s] of [
      ['user', this.users],
      ['item', this.items],
    ] as const) {
      for (let i = 0; i < s.n; i++) {
        yield { side, entityId: at(s.ids, i, 's.ids'), timeMs: o.startMs + Math.ceil(s.arrival[i] ?? 0) * o.eventSpacingMs, features: at(s.features, i, 's.features') };
      }
    }
  }

  /** Event index at which an entity arrives (for tests and analysis); undefined for unknown ids. */
  arrivalOf(side: 'user' | 'item', entityId: string): number | undefined {
    const s = side === 'user' ? this.users : this.items;
    const i = Number(entityId.slice(1));
    return Number.isInteger(i) && i >= 0 && i < s.n && s.ids[i] === entityId ? Math.ceil(s.arrival[i] ?? 0) : undefined;
  }
}

/** Arrival event index per entity, sorted: the first (1 − newFraction)·n at 0, the rest uniform over the stream. */
function arrivals(n: number, newFraction: number, events: number, rand: () => number): Float64Array {
  const out = new Float64Array(n);
  // At least one entity exists from the start, so the first event has someone to pick.
  const initial = Math.max(1, Math.round(n * (1 - newFraction)));
  for (let i = initial; i < n; i++) out[i] = rand() * events;
  out.subarray(initial).sort();
  return out;
}

/** Zipf weights (r+1)^−s over a random permutation of ranks. */
function zipfWeights(n: number, s: number, rand: () => number): Float64Array {
  const rank = new Int32Array(n);
  for (let i = 0; i < n; i++) rank[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = rank[i] ?? 0;
    rank[i] = rank[j] ?? 0;
    rank[j] = t;
  }
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) w[i] = Math.pow((rank[i] ?? 0) + 1, -s);
  return w;
}

/** Popularity drift: swaps the weights of drift·n/10 random entity pairs (arrived ones update the tree). */
function reshuffle(n: number, w: Float64Array, tree: Fenwick, arrived: number, drift: number, rand: () => number): void {
  const swaps = Math.round((drift * n) / 10);
  for (let s = 0; s < swaps; s++) {
    const a = Math.floor(rand() * n);
    const b = Math.floor(rand() * n);
    const wa = w[a] ?? 0;
    const wb = w[b] ?? 0;
    w[a] = wb;
    w[b] = wa;
    if (a < arrived) tree.add(a, wb - wa);
    if (b < arrived) tree.add(b, wa - wb);
  }
}

/** Convenience: a synthetic stream for `opts`. */
export function syntheticStream(opts: SyntheticOptions = {}): SyntheticStream {
  return new SyntheticStream(opts);
}
