/**
 * Online learner of an `fm` release (the shared, two-sided FM that `fm-adagrad` adapts on):
 *
 * - shared part: Adagrad on w0, w, v from EVERY event, with the event's user and item next to the
 *   shared features (as trainers/fm-trainer.ts trains offline). The learner keeps a replica of each
 *   recent user and item, learned by exactly the rule the workers run (models/fm-entity.ts), both
 *   from the views before the event, as two workers without lag would; an entity it does not hold
 *   starts from its side's prior. `entityDropout` trains a share of events with a side's prior view
 *   in place of its replica, so the shared part with cold entities stays a good cold model.
 * - each side's prior view (where new entities start): online, from the events whose entity of that
 *   side is new (its first event): plain Adagrad at `metaLr` on the prior's bias and vector, so the
 *   cold start follows the entities arriving now (the first-order limit of MAML with no support set).
 *   The bias filter's variance and drift stay as the offline fit chose them (trainers/bias-fit.ts).
 *
 * The same class replays a history for that fit: `observe` with the shared rate, and `lossSince`.
 */
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { fmEntityRule, type FmAdagradOptions } from '../../adapters/fm-adagrad.js';
import { encodeEventInto, eventFeatureCount, userFeatureCount } from '../../models/features.js';
import { Mulberry32, sigmoid, viewSize, VIEW_VECTOR, type FactorizationMachine } from '../../models/fm.js';
import { initialFmState, learnFmEntity, type FmEntityRule } from '../../models/fm-entity.js';
import { bundleFm, type Bundle, type StateLayout } from '../../models/onnx/bundle.js';
import { checkDistillLoss, distillGradient, type DistillLossOptions } from '../distill/loss.js';
import { replicasArrays, restoreReplicas, restoreArray, f64Array, f64Values } from './fm-state.js';
import { RecentLoss, type LearnerStats, type OnlineLearner } from './learner.js';
import { LRUCache } from 'lru-cache';
import { learnerOption } from './meta-window-learner.js';

/** Options of `FmOnlineLearner`. */
export interface FmLearnerOptions {
  /** Adagrad learning rate of the shared FM. @default 0.05 */
  learningRate?: number;
  /** L2 on shared rows touched by an event, per event. @default 0.00001 */
  l2?: number;
  /** Adagrad accumulator of shared params not restored from a checkpoint (cautious first steps on a trained model). @default 1 */
  initialAccumulator?: number;
  /** Share of events trained with a side's prior view in place of its replica, 0..1 (per side). @default 0.3 */
  entityDropout?: number;
  /** Replicas kept per side (LRU); memory is about (2k+2)·4 bytes each. @default 200_000 */
  maxEntities?: number;
  /** The fm-adagrad rule the workers run (must match their options). @default the adapter's defaults over the release's prior */
  adapter?: FmAdagradOptions;
  /** Adagrad learning rate of each side's prior view, from the events of new entities. 0 freezes the priors. @default 0.01 */
  metaLr?: number;
  /** Seed of the dropout draws. @default 1 */
  seed?: number;
  /** Entity state layout the releases declare. @default fm-adagrad, 2k+2 */
  stateLayout?: StateLayout;
  /**
   * Distillation (thaw distill learn): the shared part steps on the gradient of
   * α·BCE + (1−α)·T²·KL(teacher‖student) (trainers/distill/loss.ts) where `logitOf` knows the
   * event's teacher logit, on the hard label alone where it returns undefined. Replicas and priors
   * keep learning from hard labels, as the workers do. @default none (hard labels only)
   */
  teacher?: { logitOf: (ev: LabelledEvent) => number | undefined; loss: DistillLossOptions };
  /** Sees each event's prediction before it is learned (prequential evaluation, bench/distill). @default none */
  onPrediction?: (ev: LabelledEvent, p: number) => void;
}

/** Replicas of one side, least recently used evicted (lru-cache: npm run bench -- --only lru). */
export class Replicas {
  readonly states: LRUCache<string, Float32Array>;
  constructor(max: number) {
    this.states = new LRUCache<string, Float32Array>({ max });
  }
  /** The replica of `id` (now the most recently used), or undefined. */
  get(id: string): Float32Array | undefined {
    return this.states.get(id);
  }
  add(id: string, st: Float32Array): void {
    this.states.set(id, st);
  }
}

export class FmOnlineLearner implements OnlineLearner {
  readonly kind = 'fm' as const;
  /** The side of the topic the trainer reads (both sides learn from every event). */
  readonly side: Side;
  readonly fm: FactorizationMachine;
  private readonly k: number;
  private readonly lr: number;
  private readonly l2: number;
  private readonly dropout: number;
  private readonly metaLr: number;
  private readonly rules: Record<Side, FmEntityRule>;
  private readonly stateLayout: StateLayout;
  private readonly rng: Mulberry32;
  private readonly teacher: FmLearnerOptions['teacher'];
  private readonly onPrediction: FmLearnerOptions['onPrediction'];
  private readonly replicas: Record<Side, Replicas>;
  // Shared Adagrad accumulators, and the priors' (per side: bias, then vector).
  private readonly gw0: Float32Array;
  private readonly gw: Float32Array;
  private readonly gv: Float32Array;
  private readonly gc: Float32Array;
  private readonly gPrior: Record<Side, Float32Array>;
  private nEvents = 0;
  private nCold = 0;
  private readonly loss = new RecentLoss();
  private lossSum = 0;
  private lossN = 0;
  private idx = new Int32Array(64);
  private readonly s: Float32Array;
  /** Views before the event (the replicas change during it), and the dropout's views. */
  private readonly userView: Float32Array;
  private readonly itemView: Float32Array;
  /** Each side's prior view, refreshed when a prior moves. */
  private readonly cold: Record<Side, Float32Array>;

  constructor(fm: FactorizationMachine, opts: FmLearnerOptions & { side?: Side } = {}) {
    this.fm = fm;
    this.side = opts.side ?? 'item';
    const k = fm.k;
    this.k = k;
    this.lr = learnerOption('learningRate', opts.learningRate, 0.05, (x) => x > 0 && Number.isFinite(x), 'must be > 0');
    this.l2 = learnerOption('l2', opts.l2, 1e-5, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
    const g0 = learnerOption('initialAccumulator', opts.initialAccumulator, 1, (x) => x > 0 && Number.isFinite(x), 'must be > 0');
    this.dropout = learnerOption('entityDropout', opts.entityDropout, 0.3, (x) => x >= 0 && x <= 1, 'must be in [0, 1]');
    const maxEntities = learnerOption('maxEntities', opts.maxEntities, 200_000, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
    this.metaLr = learnerOption('metaLr', opts.metaLr, 0.01, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
    this.rules = { user: fmEntityRule('user', fm, opts.adapter), item: fmEntityRule('item', fm, opts.adapter) };
    this.stateLayout = opts.stateLayout ?? { adapter: 'fm-adagrad', stateSize: 2 * k + 2 };
    this.rng = new Mulberry32(((opts.seed ?? 1) ^ 0x5bd1e995) >>> 0);
    if (opts.teacher !== undefined) checkDistillLoss(opts.teacher.loss, 'onlineTrainer.distill');
    this.teacher = opts.teacher;
    this.onPrediction = opts.onPrediction;
    this.replicas = { user: new Replicas(maxEntities), item: new Replicas(maxEntities) };
    this.gw0 = Float32Array.of(g0);
    this.gw = new Float32Array(fm.buckets).fill(g0);
    this.gv = new Float32Array(fm.buckets * k).fill(g0);
    this.gc = new Float32Array(fm.crossBuckets).fill(g0);
    this.gPrior = { user: new Float32Array(1 + k).fill(g0), item: new Float32Array(1 + k).fill(g0) };
    this.s = new Float32Array(k);
    this.userView = new Float32Array(viewSize(k));
    this.itemView = new Float32Array(viewSize(k));
    this.cold = { user: fm.coldView('user'), item: fm.coldView('item') };
  }

  observe(events: readonly LabelledEvent[]): void {
    for (const ev of events) this.observeOne(ev, true);
  }

  /** Adapts the replicas on `events` without touching the shared part (warms them on a history). */
  warm(events: readonly LabelledEvent[]): void {
    for (const ev of events) this.observeOne(ev, false);
  }

  /** Nothing is batched: every event's update is applied at once. */
  flush(): void {}

  bundle(releaseId: string): Bundle {
    this.fm.release = releaseId;
    return bundleFm(this.fm, { stateLayout: this.stateLayout, entityStatePolicy: 'keep' });
  }

  stats(): LearnerStats {
    return {
      events: this.nEvents,
      metaTasks: this.nCold,
      metaSteps: this.metaLr > 0 ? this.nCold : 0,
      openWindows: 0,
      trackedEntities: this.replicas.user.states.size + this.replicas.item.states.size,
      recentLogloss: this.loss.value(),
    };
  }

  /** Mean prequential log loss of the events observed since the last call (then resets it). */
  lossSince(): { mean: number; n: number } {
    const out = { mean: this.lossN > 0 ? this.lossSum / this.lossN : NaN, n: this.lossN };
    this.lossSum = 0;
    this.lossN = 0;
    return out;
  }

  optimizerState(): Map<string, Float32Array> {
    return new Map([
      ['fm.gw0', this.gw0],
      ['fm.gw', this.gw],
      ['fm.gv', this.gv],
      ['fm.gc', this.gc],
      ['prior.user', this.gPrior.user],
      ['prior.item', this.gPrior.item],
    ]);
  }

  restoreOptimizerState(state: Map<string, Float32Array>): void {
    const take = (name: string, into: Float32Array): void => {
      const a = state.get(name);
      if (a !== undefined && a.length === into.length) into.set(a);
    };
    take('fm.gw0', this.gw0);
    take('fm.gw', this.gw);
    take('fm.gv', this.gv);
    take('fm.gc', this.gc);
    take('prior.user', this.gPrior.user);
    take('prior.item', this.gPrior.item);
  }

  trainingState(): Map<string, Float32Array> {
    const fm = this.fm;
    const out = new Map<string, Float32Array>([['fm.w', fm.w], ['fm.v', fm.v], ['fm.c', fm.c], ['fm.w0', f64Array([fm.w0])], ...this.optimizerState()]);
    for (const side of ['user', 'item'] as const) {
      const p = fm.priors[side];
      out.set(`prior.${side}.vector`, p.vector);
      out.set(`prior.${side}.scalars`, f64Array([p.bias, p.biasVariance, p.biasDrift, p.sessionDecay, p.sessionVariance]));
      replicasArrays(`replicas.${side}`, this.replicas[side].states, out);
    }
    out.set('counters', f64Array([this.rng.state, this.nEvents, this.nCold, this.lossSum, this.lossN, ...this.loss.state()]));
    return out;
  }

  restoreTrainingState(state: Map<string, Float32Array>): void {
    const fm = this.fm;
    restoreArray(state, 'fm.w', fm.w);
    restoreArray(state, 'fm.v', fm.v);
    restoreArray(state, 'fm.c', fm.c);
    for (const [name, into] of this.optimizerState()) restoreArray(state, name, into);
    const [w0 = 0] = f64Values(state, 'fm.w0', 1);
    fm.w0 = w0;
    for (const side of ['user', 'item'] as const) {
      const p = fm.priors[side];
      restoreArray(state, `prior.${side}.vector`, p.vector);
      const [bias = 0, biasVariance = 0, biasDrift = 0, sessionDecay = 0, sessionVariance = 0] = f64Values(state, `prior.${side}.scalars`, 5);
      Object.assign(p, { bias, biasVariance, biasDrift, sessionDecay, sessionVariance });
      this.cold[side] = fm.coldView(side);
      restoreReplicas(`replicas.${side}`, this.replicas[side].states, state);
    }
    const [rng = 0, nEvents = 0, nCold = 0, lossSum = 0, lossN = 0, ...recent] = f64Values(state, 'counters', 8);
    this.rng.state = rng;
    this.nEvents = nEvents;
    this.nCold = nCold;
    this.lossSum = lossSum;
    this.lossN = lossN;
    this.loss.restore(recent);
  }

  /** The replica of `id` on `side` (created from the side's prior if absent); `cold`: it was just created. */
  private replica(side: Side, id: string): { state: Float32Array; cold: boolean } {
    const have = this.replicas[side].get(id);
    if (have !== undefined) return { state: have, cold: false };
    const state = initialFmState(this.k, this.cold[side], this.rules[side]);
    this.replicas[side].add(id, state);
    return { state, cold: true };
  }

  private observeOne(ev: LabelledEvent, learnShared: boolean): void {
    const fm = this.fm;
    const k = this.k;
    const count = eventFeatureCount(ev);
    if (count > this.idx.length) this.idx = new Int32Array(count * 2);
    const n = encodeEventInto(ev, fm.buckets, this.idx);
    const idx = this.idx;
    const nUser = userFeatureCount(ev);
    const user = this.replica('user', ev.userId);
    const item = this.replica('item', ev.itemId);
    const vs = viewSize(k);
    this.userView.set(user.state.subarray(0, vs));
    this.itemView.set(item.state.subarray(0, vs));
    const s = this.s;
    const y = ev.label;
    const zf = fm.featureLogit(idx, n, nUser, s);
    const p = sigmoid(zf + fm.entityLogit(s, this.userView, this.itemView));
    this.loss.add(p, y);
    this.onPrediction?.(ev, p);
    const q = Math.min(1 - 1e-7, Math.max(1e-7, p));
    this.lossSum -= y === 1 ? Math.log(q) : Math.log(1 - q);
    this.lossN++;

    const coldUser = this.cold.user;
    const coldItem = this.cold.item;
    if (learnShared) {
      // The shared gradient: with the replicas, or (dropout) with a side's prior view in its place.
      const dropUser = this.dropout > 0 && this.rng.next() < this.dropout;
      const dropItem = this.dropout > 0 && this.rng.next() < this.dropout;
      const uUsed = dropUser ? coldUser : this.userView;
      const iUsed = dropItem ? coldItem : this.itemView;
      const teacher = this.teacher;
      const g =
        teacher === undefined
          ? (dropUser || dropItem ? sigmoid(zf + fm.entityLogit(s, uUsed, iUsed)) : p) - y
          : distillGradient(zf + fm.entityLogit(s, uUsed, iUsed), y, teacher.logitOf(ev), teacher.loss);
      this.sharedStep(idx, n, g, uUsed, iUsed);
      fm.crossStep(idx, nUser, n, g, this.lr, this.l2, this.gc);
      // New entities teach their side's prior what the first event of an entity looks like.
      if (this.metaLr > 0) {
        const gc = sigmoid(zf + fm.entityLogit(s, user.cold ? coldUser : this.userView, item.cold ? coldItem : this.itemView)) - y;
        if (user.cold) this.priorStep('user', gc, s, item.cold ? coldItem : this.itemView);
        if (item.cold) this.priorStep('item', gc, s, user.cold ? coldUser : this.userView);
      }
      this.nEvents++;
    }
    if (user.cold || item.cold) this.nCold++;
    // Both replicas learn from the views before the event.
    learnFmEntity(k, user.state, this.itemView, this.cold.user, s, p, y, this.rules.user);
    learnFmEntity(k, item.state, this.userView, this.cold.item, s, p, y, this.rules.item);
  }

  /** Adagrad on w0, the event's w rows and v rows; ∂z/∂v_r = S − v_r + e_u + e_i. */
  private sharedStep(idx: Int32Array, n: number, g: number, user: Float32Array, item: Float32Array): void {
    const { w, v } = this.fm;
    const k = this.k;
    const s = this.s;
    const gw = this.gw;
    const gv = this.gv;
    this.gw0[0] = (this.gw0[0] ?? 0) + g * g;
    this.fm.w0 -= (this.lr * g) / Math.sqrt(this.gw0[0] ?? 1);
    for (let r = 0; r < n; r++) {
      const row = idx[r] ?? 0;
      const wr = w[row] ?? 0;
      const gwr = g + this.l2 * wr;
      const accW = (gw[row] ?? 0) + gwr * gwr;
      gw[row] = accW;
      w[row] = wr - (this.lr * gwr) / Math.sqrt(accW);
      const base = row * k;
      for (let f = 0; f < k; f++) {
        const vf = v[base + f] ?? 0;
        const ent = (user[VIEW_VECTOR + f] ?? 0) + (item[VIEW_VECTOR + f] ?? 0);
        const gvf = g * ((s[f] ?? 0) - vf + ent) + this.l2 * vf;
        const accV = (gv[base + f] ?? 0) + gvf * gvf;
        gv[base + f] = accV;
        v[base + f] = vf - (this.lr * gvf) / Math.sqrt(accV);
      }
    }
  }

  /** Adagrad on `side`'s prior from one of its new entities' first event (gradient at the prior view). */
  private priorStep(side: Side, g: number, s: Float32Array, other: Float32Array): void {
    const prior = this.fm.priors[side];
    const acc = this.gPrior[side];
    const gb = g;
    acc[0] = (acc[0] ?? 0) + gb * gb;
    prior.bias -= (this.metaLr * gb) / Math.sqrt(acc[0] ?? 1);
    for (let f = 0; f < this.k; f++) {
      const ge = g * ((s[f] ?? 0) + (other[VIEW_VECTOR + f] ?? 0));
      acc[1 + f] = (acc[1 + f] ?? 0) + ge * ge;
      prior.vector[f] = (prior.vector[f] ?? 0) - (this.metaLr * ge) / Math.sqrt(acc[1 + f] ?? 1);
    }
    this.cold[side] = this.fm.coldView(side);
  }
}
