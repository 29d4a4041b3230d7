/**
 * Offline training of the shared, two-sided FM (models/fm.ts) from a stream prefix (the history).
 *
 * The shared FM is trained JOINTLY with a vector e and bias b per hot user and per hot item (an
 * entity with at least `minCount` events in the history), exactly the features the `fm-adagrad`
 * adapters learn online on each side. So the shared part learns to work with both entities next to
 * it (what features explain goes into the shared table; what is entity-specific goes into e, b).
 * Entities that are not hot enter as cold (the zero view). The per-entity parameters are thrown
 * away afterwards; the release is the shared part plus each side's prior: the mean trained e and b,
 * and the bias filter's variance and drift, chosen on the history by prequential likelihood
 * (trainers/bias-fit.ts).
 *
 * `entityDropout` trains a share of events with an entity replaced by the cold view (per side), so
 * the shared part also predicts well for brand-new entities, before they adapt.
 */
import type { LabelledEvent, Side } from '../schemas/types.js';
import { ConfigError } from '../lib/errors.js';
import { encodeEventInto, eventFeatureCount, userFeatureCount } from '../models/features.js';
import { FactorizationMachine, mulberry32, sigmoid, viewSize, VIEW_BIAS, VIEW_VECTOR } from '../models/fm.js';
import { auc } from '../lib/metrics.js';
import { applyBiasPrior, fitBiasFilter, type BiasFit, type BiasFitOptions, type BiasPrior } from './bias-fit.js';
import { checkHistory, DEFAULT_MIN_EVENTS } from './history.js';

/** Rows of the cross table when the history chooses one (`crossBuckets: 'fit'`): 1 MiB of float32. */
export const DEFAULT_CROSS_BUCKETS = 2 ** 18;

/** Metrics of one training epoch (progressive: each event scored before its update). */
export interface EpochReport {
  /** 1-based epoch number. */
  epoch: number;
  /** Events trained on in the epoch. */
  events: number;
  /** Mean log loss (nats). */
  logloss: number;
  /** AUC of the progressive predictions. */
  auc: number;
  /** Wall time of the epoch, ms. */
  ms: number;
}

/** Options of `trainFm`. */
export interface FmTrainerOptions {
  /** Hashed feature table rows. @default 262144 */
  buckets?: number;
  /** Latent dimension. @default 8 */
  k?: number;
  /**
   * Rows of the hashed user-feature × item-feature cross table (models/fm.ts); 0 = no cross term;
   * `fit`: DEFAULT_CROSS_BUCKETS or 0, whichever has the lower prequential loss on the history
   * (trainers/bias-fit.ts). @default 'fit'
   */
  crossBuckets?: number | 'fit';
  /** Passes over the training events. @default 3 */
  epochs?: number;
  /** Adagrad learning rate of shared and entity parameters. @default 0.05 */
  learningRate?: number;
  /** L2 on shared rows touched by an event, per event. @default 0.00001 */
  l2?: number;
  /** L2 on entity vectors and biases, per event. @default 0.001 */
  entityL2?: number;
  /** Share of events trained with an entity dropped (its cold view instead), 0..1, per side. @default 0.3 */
  entityDropout?: number;
  /** An entity is hot (gets trained parameters) with at least this many events in the prefix (`--min-events`). @default DEFAULT_MIN_EVENTS.fm (20) */
  minCount?: number;
  /** Events read from the source (the prefix); the rest is left unread. @default Infinity */
  maxEvents?: number;
  /** Seed of init and shuffling. @default 1 */
  seed?: number;
  /** Std of the init of v. @default 0.01 */
  initStd?: number;
  /** Release id of the trained model. @default `fm-<seed>` */
  release?: string;
  /**
   * The bias filter's prior per side: `fit` chooses each side's variance and drift on the history
   * (trainers/bias-fit.ts), or give them. @default 'fit'
   */
  biasFilter?: 'fit' | Record<Side, Partial<BiasPrior> & { variance: number; drift: number }>;
  /** Options of the fit (grids, events used). @default bias-fit.ts's */
  biasFit?: BiasFitOptions;
  /** Called after each epoch. */
  onEpoch?: (report: EpochReport) => void;
  /** Also return each hot entity's trained view (`FmTrainResult.entities`), e.g. for an offline ranker. @default false */
  keepEntities?: boolean;
}

export interface FmTrainResult {
  model: FactorizationMachine;
  epochs: EpochReport[];
  /** Events read from the source. */
  prefixEvents: number;
  /** Events trained on (every event of the prefix). */
  trainEvents: number;
  /** Hot users and hot items (entities with trained parameters). */
  hotEntities: { user: number; item: number };
  /** The bias filter's prior per side, and how it was chosen (undefined: given). */
  biasFit: BiasFit | undefined;
  /** The history's loss with each cross-table size tried (undefined or empty: none tried). */
  crossFit: Record<string, number> | undefined;
  /** With `keepEntities`: each side's hot entities' trained views (`[b, 0, e]`, models/fm.ts), by id. */
  entities?: Record<Side, Map<string, Float32Array>>;
}

export { auc };

function num(key: string, v: number | undefined, dflt: number, ok: (x: number) => boolean, rule: string): number {
  const x = v ?? dflt;
  if (typeof x !== 'number' || Number.isNaN(x) || !ok(x)) throw new ConfigError(`fmTrainer.${key}`, `${rule}, got ${String(v)}`);
  return x;
}

/** Growable Int32Array (the encoded prefix). */
class IntBuf {
  a = new Int32Array(1 << 16);
  n = 0;
  reserve(extra: number): void {
    if (this.n + extra <= this.a.length) return;
    let cap = this.a.length * 2;
    while (cap < this.n + extra) cap *= 2;
    const b = new Int32Array(cap);
    b.set(this.a.subarray(0, this.n));
    this.a = b;
  }
  push(x: number): void {
    this.reserve(1);
    this.a[this.n++] = x;
  }
}

/**
 * Trains the shared FM on the prefix, with parameters for its hot users and items (see the file
 * comment). Throws ThawError('HISTORY_TOO_THIN') before training when the prefix has too few
 * events, or too few hot entities on both sides (trainers/history.ts).
 */
export async function trainFm(source: Iterable<LabelledEvent> | AsyncIterable<LabelledEvent>, opts: FmTrainerOptions = {}): Promise<FmTrainResult> {
  const buckets = num('buckets', opts.buckets, 2 ** 18, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
  const k = num('k', opts.k, 8, (x) => Number.isInteger(x) && x >= 1 && x <= 256, 'must be an integer in [1, 256]');
  const crossOpt = opts.crossBuckets ?? 'fit';
  if (crossOpt !== 'fit') num('crossBuckets', crossOpt, 0, (x) => Number.isInteger(x) && x >= 0 && x <= 2 ** 28, "must be an integer in [0, 2^28] or 'fit'");
  const epochs = num('epochs', opts.epochs, 3, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
  const lr = num('learningRate', opts.learningRate, 0.05, (x) => x > 0 && Number.isFinite(x), 'must be > 0');
  const l2 = num('l2', opts.l2, 1e-5, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
  const el2 = num('entityL2', opts.entityL2, 1e-3, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
  const dropout = num('entityDropout', opts.entityDropout, 0.3, (x) => x >= 0 && x <= 1, 'must be in [0, 1]');
  const minCount = num('minCount', opts.minCount, DEFAULT_MIN_EVENTS.fm, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
  const maxEvents = num('maxEvents', opts.maxEvents, Infinity, (x) => x >= 0, 'must be >= 0');
  const seed = num('seed', opts.seed, 1, Number.isInteger, 'must be an integer');

  // 1. Read and encode the prefix: per event its feature rows, label, user and item.
  const rows = new IntBuf();
  const starts = new IntBuf();
  const userRows = new IntBuf();
  const ents = { user: new EntityIndex(), item: new EntityIndex() };
  const userOf = new IntBuf();
  const itemOf = new IntBuf();
  const labels = new IntBuf();
  const history: LabelledEvent[] = [];
  const fitBias = opts.biasFilter === undefined || opts.biasFilter === 'fit';
  const fitting = fitBias || crossOpt === 'fit';
  // Crosses need events with features on both sides.
  let crossable = false;
  let scratch = new Int32Array(64);
  let prefixEvents = 0;
  // Stop right after the prefix's last event, so nothing past it is pulled from a live source.
  for await (const ev of maxEvents > 0 ? source : []) {
    prefixEvents++;
    userOf.push(ents.user.add(ev.userId));
    itemOf.push(ents.item.add(ev.itemId));
    const c = eventFeatureCount(ev);
    if (c > scratch.length) scratch = new Int32Array(c * 2);
    const n = encodeEventInto(ev, buckets, scratch);
    starts.push(rows.n);
    userRows.push(userFeatureCount(ev));
    rows.reserve(n);
    rows.a.set(scratch.subarray(0, n), rows.n);
    rows.n += n;
    labels.push(ev.label);
    if (fitting) history.push(ev);
    if (!crossable && userFeatureCount(ev) > 0 && c > userFeatureCount(ev)) crossable = true;
    if (prefixEvents >= maxEvents) break;
  }
  starts.push(rows.n);

  // 2. Hot entities of each side: their parameters are trained (every event trains the shared part).
  const hot = { user: ents.user.hot(minCount), item: ents.item.hot(minCount) };
  // The shared part trains on every event; hot entities give each side's prior. One side with enough
  // of them is enough (a catalogue of a few items beside many users is a fine history).
  const richer = hot.user.count >= hot.item.count ? 'user' : 'item';
  checkHistory({ side: richer, minEvents: minCount, historyEvents: prefixEvents, entities: hot[richer].count, rows: prefixEvents });

  // 3. On the history, by prequential replay (trainers/bias-fit.ts): the cross term, and each side's bias filter.
  const crossSizes = crossOpt !== 'fit' ? [crossOpt] : crossable ? [0, DEFAULT_CROSS_BUCKETS] : [0];
  const given = fitBias ? undefined : (opts.biasFilter as Exclude<FmTrainerOptions['biasFilter'], 'fit' | undefined>);
  const fixed = (side: Side): BiasPrior => ({ sessionDecay: 0, sessionVariance: 0, ...(given?.[side] ?? { variance: 0, drift: 0 }) });
  const fit: BiasFit | undefined =
    fitBias || crossSizes.length > 1
      ? fitBiasFilter(history, {
          buckets,
          k,
          learningRate: lr,
          seed,
          ...opts.biasFit,
          crossBuckets: crossSizes,
          // Given priors: only the cross term is chosen, at those priors.
          ...(given === undefined ? {} : { start: { user: fixed('user'), item: fixed('item') }, rounds: 0 }),
        })
      : undefined;
  const crossBuckets = fit?.crossBuckets ?? crossSizes[0] ?? 0;
  const bias: Record<Side, BiasPrior> = given === undefined && fit !== undefined ? { user: fit.user, item: fit.item } : { user: fixed('user'), item: fixed('item') };

  // 4. Joint Adagrad on shared and per-entity parameters.
  const model = FactorizationMachine.create({ buckets, k, seed, initStd: opts.initStd ?? 0.01, release: opts.release ?? `fm-${seed}`, crossBuckets });
  const G0 = 1e-2; // Initial Adagrad accumulator: keeps the first steps finite and moderate.
  const gw = new Float32Array(buckets).fill(G0);
  const gv = new Float32Array(buckets * k).fill(G0);
  const gc = new Float32Array(crossBuckets).fill(G0);
  let gw0 = G0;
  const rand = mulberry32((seed ^ 0x2545f491) >>> 0);
  const sides = { user: new HotParams(hot.user.count, k, G0, opts.initStd ?? 0.01, rand), item: new HotParams(hot.item.count, k, G0, opts.initStd ?? 0.01, rand) };
  const s = new Float32Array(k);
  const uView = new Float32Array(viewSize(k));
  const iView = new Float32Array(viewSize(k));
  const order = new Int32Array(prefixEvents);
  for (let j = 0; j < prefixEvents; j++) order[j] = j;
  const preds = new Float32Array(order.length);
  const predLabels = new Uint8Array(order.length);
  const reports: EpochReport[] = [];
  const { w, v } = model;

  for (let epoch = 1; epoch <= epochs; epoch++) {
    const t0 = performance.now();
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      const t = order[i] ?? 0;
      order[i] = order[j] ?? 0;
      order[j] = t;
    }
    let loss = 0;
    for (let q = 0; q < order.length; q++) {
      const j = order[q] ?? 0;
      const from = starts.a[j] ?? 0;
      const n = (starts.a[j + 1] ?? from) - from;
      const idx = rows.a.subarray(from, from + n);
      const y = labels.a[j] ?? 0;
      const nUser = userRows.a[j] ?? 0;
      // Each side: its hot entity's parameters, or the zero view (not hot, or dropped).
      const uSlot = dropout > 0 && rand() < dropout ? -1 : (hot.user.slot[userOf.a[j] ?? 0] ?? -1);
      const iSlot = dropout > 0 && rand() < dropout ? -1 : (hot.item.slot[itemOf.a[j] ?? 0] ?? -1);
      sides.user.viewInto(uSlot, uView);
      sides.item.viewInto(iSlot, iView);
      const z = model.logit(idx, n, nUser, uView, iView, s);
      const p = sigmoid(z);
      preds[q] = p;
      predLabels[q] = y;
      loss -= y === 1 ? Math.log(Math.max(p, 1e-12)) : Math.log(Math.max(1 - p, 1e-12));
      const g = p - y;
      gw0 += g * g;
      model.w0 -= (lr * g) / Math.sqrt(gw0);
      for (let r = 0; r < n; r++) {
        const row = idx[r] ?? 0;
        const wr = w[row] ?? 0;
        const gwr = g + l2 * wr;
        gw[row] = (gw[row] ?? 0) + gwr * gwr;
        w[row] = wr - (lr * gwr) / Math.sqrt(gw[row] ?? 1);
        const base = row * k;
        for (let f = 0; f < k; f++) {
          const vf = v[base + f] ?? 0;
          const ent = (uView[VIEW_VECTOR + f] ?? 0) + (iView[VIEW_VECTOR + f] ?? 0);
          const gvf = g * ((s[f] ?? 0) - vf + ent) + l2 * vf;
          gv[base + f] = (gv[base + f] ?? 0) + gvf * gvf;
          v[base + f] = vf - (lr * gvf) / Math.sqrt(gv[base + f] ?? 1);
        }
      }
      model.crossStep(idx, nUser, n, g, lr, l2, gc);
      // ∂z/∂e_u = S + e_i, ∂z/∂e_i = S + e_u, ∂z/∂b = 1.
      sides.user.step(uSlot, g, s, iView, lr, el2);
      sides.item.step(iSlot, g, s, uView, lr, el2);
    }
    const report: EpochReport = {
      epoch,
      events: order.length,
      logloss: order.length > 0 ? loss / order.length : NaN,
      auc: auc(preds, predLabels),
      ms: performance.now() - t0,
    };
    reports.push(report);
    opts.onEpoch?.(report);
  }

  // 4. Each side's prior: the mean trained entity, and the bias filter's variance and drift (chosen above).
  sides.user.meanInto(model.priors.user);
  sides.item.meanInto(model.priors.item);
  for (const side of ['user', 'item'] as const) applyBiasPrior(model.priors[side], bias[side]);
  const entities = opts.keepEntities === true ? { user: ents.user.views(hot.user.slot, sides.user, k), item: ents.item.views(hot.item.slot, sides.item, k) } : undefined;
  return {
    model,
    epochs: reports,
    prefixEvents,
    trainEvents: order.length,
    hotEntities: { user: hot.user.count, item: hot.item.count },
    biasFit: given === undefined ? fit : undefined,
    crossFit: fit?.crossLoss,
    ...(entities ? { entities } : {}),
  };
}

/** Entity ids of one side in order of first appearance, with their event counts. */
class EntityIndex {
  private readonly index = new Map<string, number>();
  readonly counts: number[] = [];
  add(id: string): number {
    let e = this.index.get(id);
    if (e === undefined) {
      e = this.counts.length;
      this.index.set(id, e);
      this.counts.push(0);
    }
    this.counts[e] = (this.counts[e] ?? 0) + 1;
    return e;
  }
  /** The trained view of each hot entity, by id. */
  views(slot: Int32Array, params: HotParams, k: number): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [id, e] of this.index) {
      const s = slot[e] ?? -1;
      if (s < 0) continue;
      const view = new Float32Array(viewSize(k));
      params.viewInto(s, view);
      out.set(id, view);
    }
    return out;
  }
  /** Slot of each entity among the hot ones (-1: not hot), and how many are hot. */
  hot(minCount: number): { slot: Int32Array; count: number } {
    const slot = new Int32Array(this.counts.length).fill(-1);
    let count = 0;
    this.counts.forEach((c, e) => {
      if (c >= minCount) slot[e] = count++;
    });
    return { slot, count };
  }
}

/** Trained e and b of one side's hot entities, with their Adagrad accumulators. */
class HotParams {
  private readonly e: Float32Array;
  private readonly b: Float32Array;
  private readonly ge: Float32Array;
  private readonly gb: Float32Array;
  constructor(
    private readonly count: number,
    private readonly k: number,
    g0: number,
    initStd: number,
    rand: () => number,
  ) {
    this.e = new Float32Array(count * k);
    for (let i = 0; i < this.e.length; i++) this.e[i] = initStd * (rand() * 2 - 1);
    this.b = new Float32Array(count);
    this.ge = new Float32Array(count * k).fill(g0);
    this.gb = new Float32Array(count).fill(g0);
  }
  /** The view of hot slot `slot` (zeros for -1). */
  viewInto(slot: number, view: Float32Array): void {
    view.fill(0);
    if (slot < 0) return;
    view[VIEW_BIAS] = this.b[slot] ?? 0;
    view.set(this.e.subarray(slot * this.k, slot * this.k + this.k), VIEW_VECTOR);
  }
  /** One Adagrad step of slot `slot` given ∂loss/∂z = g, S and the other side's view. */
  step(slot: number, g: number, s: Float32Array, other: Float32Array, lr: number, l2: number): void {
    if (slot < 0) return;
    const k = this.k;
    for (let f = 0; f < k; f++) {
      const at = slot * k + f;
      const e = this.e[at] ?? 0;
      const ge = g * ((s[f] ?? 0) + (other[VIEW_VECTOR + f] ?? 0)) + l2 * e;
      this.ge[at] = (this.ge[at] ?? 0) + ge * ge;
      this.e[at] = e - (lr * ge) / Math.sqrt(this.ge[at] ?? 1);
    }
    const b = this.b[slot] ?? 0;
    const gb = g + l2 * b;
    this.gb[slot] = (this.gb[slot] ?? 0) + gb * gb;
    this.b[slot] = b - (lr * gb) / Math.sqrt(this.gb[slot] ?? 1);
  }
  /** The mean trained entity into a prior (unchanged when no entity is hot). */
  meanInto(prior: { vector: Float32Array; bias: number }): void {
    if (this.count === 0) return;
    prior.vector.fill(0);
    let bias = 0;
    for (let slot = 0; slot < this.count; slot++) {
      for (let f = 0; f < this.k; f++) prior.vector[f] = (prior.vector[f] ?? 0) + (this.e[slot * this.k + f] ?? 0) / this.count;
      bias += (this.b[slot] ?? 0) / this.count;
    }
    prior.bias = bias;
  }
}
