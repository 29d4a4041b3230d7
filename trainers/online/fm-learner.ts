/**
 * Online learner of an `fm` release (the shared FM that `fm-adagrad` adapts on):
 *
 * - shared part: Adagrad on w0, w, v from EVERY event, with the event's entity vector next to the
 *   shared features (as trainers/fm-trainer.ts trains offline). The trainer keeps a replica of each
 *   recent entity's (e, b), adapted by exactly the fm-adagrad rule the workers run, in a bounded LRU;
 *   an entity it does not hold starts from the current cold init. `entityDropout` trains a share of
 *   events with the cold init in place of the entity, so the shared part alone stays a good cold model.
 * - cold init (entityInit, entityBiasInit): first-order MAML over the entities warming up now. Each
 *   entity's first K events (EntityWindows) form a task: support = the first ones, query = the rest.
 *   θ' = fm-adagrad's updates over the support from θ0 = init; the meta gradient is
 *   a·∇L_support(θ0) + (1−a)·∇L_query(θ') (θ' treated as θ0 + constant, first order), averaged over
 *   `metaBatch` tasks, applied by Adam.
 */
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { ConfigError } from '../../lib/errors.js';
import { encodeEventInto, eventFeatureCount } from '../../models/features.js';
import { mulberry32, sigmoid, type FactorizationMachine } from '../../models/fm.js';
import { bundleFm, type Bundle, type StateLayout } from '../../models/onnx/bundle.js';
import { EntityWindows, type EntityWindowOptions, type WindowTask } from './windows.js';
import { RecentLoss, type LearnerStats, type OnlineLearner } from './learner.js';

/** Options of `FmOnlineLearner`. */
export interface FmLearnerOptions {
  /** Adagrad learning rate of the shared FM. @default 0.05 */
  learningRate?: number;
  /** L2 on shared rows touched by an event, per event. @default 0.00001 */
  l2?: number;
  /** Adagrad accumulator of shared params not restored from a checkpoint (cautious first steps on a trained model). @default 1 */
  initialAccumulator?: number;
  /** Share of events trained with the cold init in place of the entity, 0..1. @default 0.3 */
  entityDropout?: number;
  /** Entity replicas kept (LRU); memory is about (2k+2)·4 bytes each. @default 200_000 */
  maxEntities?: number;
  /** The fm-adagrad rule the workers run (must match their options). @default the adapter's defaults */
  adapter?: { learningRate?: number; biasLearningRate?: number; l2?: number; initialAccumulator?: number };
  /** Warm-up windows (K events per task). @default { size: 10, support: 5, maxEntities: 10_000 } */
  windows?: EntityWindowOptions;
  /** Adam learning rate of the cold init. 0 freezes it. @default 0.01 */
  metaLr?: number;
  /** Tasks averaged per meta step. @default 16 */
  metaBatch?: number;
  /** Weight a of the support (cold) loss in the meta loss. @default 0.1 */
  supportWeight?: number;
  /** Seed of the dropout draws. @default 1 */
  seed?: number;
  /** Entity state layout the releases declare. @default fm-adagrad, 2k+2 */
  stateLayout?: StateLayout;
}

interface Ev {
  idx: Int32Array;
  y: number;
}

function num(key: string, v: number | undefined, dflt: number, ok: (x: number) => boolean, rule: string): number {
  const x = v ?? dflt;
  if (typeof x !== 'number' || Number.isNaN(x) || !ok(x)) throw new ConfigError(`onlineTrainer.${key}`, `${rule}, got ${String(v)}`);
  return x;
}

export class FmOnlineLearner implements OnlineLearner {
  readonly kind = 'fm' as const;
  readonly side: Side;
  readonly fm: FactorizationMachine;
  readonly windows: EntityWindows<Ev>;
  private readonly k: number;
  private readonly lr: number;
  private readonly l2: number;
  private readonly dropout: number;
  private readonly maxEntities: number;
  private readonly aLr: number;
  private readonly aLrB: number;
  private readonly aL2: number;
  private readonly aG0: number;
  private readonly metaLr: number;
  private readonly metaBatch: number;
  private readonly a: number;
  private readonly stateLayout: StateLayout;
  private readonly rand: () => number;
  // Shared Adagrad accumulators.
  private gw0: Float32Array;
  private gw: Float32Array;
  private gv: Float32Array;
  /** Entity replicas in fm-adagrad's state layout; Map order is recency (LRU). */
  private readonly entities = new Map<string, Float32Array>();
  // Meta: accumulated gradient of (init, bias) and Adam moments.
  private readonly metaG: Float32Array;
  private readonly metaM: Float32Array;
  private readonly metaV: Float32Array;
  private metaStep = 0;
  private pendingTasks = 0;
  private nEvents = 0;
  private nTasks = 0;
  private readonly loss = new RecentLoss();
  private idx = new Int32Array(64);
  private readonly s: Float32Array;
  /** Scratch of meta tasks (never `s`: a task runs in the middle of an event's update). */
  private readonly sm: Float32Array;
  private readonly st: Float32Array;

  constructor(fm: FactorizationMachine, opts: FmLearnerOptions = {}) {
    this.fm = fm;
    this.side = fm.side;
    const k = fm.k;
    this.k = k;
    this.lr = num('learningRate', opts.learningRate, 0.05, (x) => x > 0 && Number.isFinite(x), 'must be > 0');
    this.l2 = num('l2', opts.l2, 1e-5, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
    const g0 = num('initialAccumulator', opts.initialAccumulator, 1, (x) => x > 0 && Number.isFinite(x), 'must be > 0');
    this.dropout = num('entityDropout', opts.entityDropout, 0.3, (x) => x >= 0 && x <= 1, 'must be in [0, 1]');
    this.maxEntities = num('maxEntities', opts.maxEntities, 200_000, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
    const ad = opts.adapter ?? {};
    this.aLr = num('adapter.learningRate', ad.learningRate, 0.1, (x) => x > 0, 'must be > 0');
    this.aLrB = num('adapter.biasLearningRate', ad.biasLearningRate, 0.2, (x) => x >= 0, 'must be >= 0');
    this.aL2 = num('adapter.l2', ad.l2, 0.001, (x) => x >= 0, 'must be >= 0');
    this.aG0 = num('adapter.initialAccumulator', ad.initialAccumulator, 0.1, (x) => x > 0, 'must be > 0');
    this.metaLr = num('metaLr', opts.metaLr, 0.01, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
    this.metaBatch = num('metaBatch', opts.metaBatch, 16, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
    this.a = num('supportWeight', opts.supportWeight, 0.1, (x) => x >= 0 && x < 1, 'must be in [0, 1)');
    this.windows = new EntityWindows<Ev>(opts.windows ?? {});
    this.stateLayout = opts.stateLayout ?? { adapter: 'fm-adagrad', stateSize: 2 * k + 2 };
    this.rand = mulberry32(((opts.seed ?? 1) ^ 0x5bd1e995) >>> 0);
    this.gw0 = Float32Array.of(g0);
    this.gw = new Float32Array(fm.buckets).fill(g0);
    this.gv = new Float32Array(fm.buckets * k).fill(g0);
    this.metaG = new Float32Array(k + 1);
    this.metaM = new Float32Array(k + 1);
    this.metaV = new Float32Array(k + 1);
    this.s = new Float32Array(k);
    this.sm = new Float32Array(k);
    this.st = new Float32Array(2 * k + 2);
  }

  observe(events: readonly LabelledEvent[]): void {
    for (const ev of events) this.observeOne(ev);
  }

  flush(): void {
    if (this.pendingTasks > 0) this.applyMeta();
  }

  bundle(releaseId: string): Bundle {
    this.fm.release = releaseId;
    return bundleFm(this.fm, { stateLayout: this.stateLayout, entityStatePolicy: 'keep' });
  }

  stats(): LearnerStats {
    return {
      events: this.nEvents,
      metaTasks: this.nTasks,
      metaSteps: this.metaStep,
      openWindows: this.windows.openCount,
      trackedEntities: this.entities.size,
      recentLogloss: this.loss.value(),
    };
  }

  optimizerState(): Map<string, Float32Array> {
    return new Map([
      ['fm.gw0', this.gw0],
      ['fm.gw', this.gw],
      ['fm.gv', this.gv],
      ['meta.m', this.metaM],
      ['meta.v', this.metaV],
      ['meta.step', Float32Array.of(this.metaStep)],
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
    take('meta.m', this.metaM);
    take('meta.v', this.metaV);
    const step = state.get('meta.step');
    if (step?.length === 1) this.metaStep = step[0]!;
  }

  private encode(ev: LabelledEvent): number {
    const c = eventFeatureCount(ev);
    if (c > this.idx.length) this.idx = new Int32Array(c * 2);
    return encodeEventInto(ev, this.fm.buckets, this.idx);
  }

  /** The replica of an entity (moved to the recent end), created at the cold init if absent. */
  private entity(id: string): Float32Array {
    let st = this.entities.get(id);
    if (st !== undefined) {
      this.entities.delete(id);
      this.entities.set(id, st);
      return st;
    }
    st = this.freshState();
    this.entities.set(id, st);
    this.windows.openFor(id);
    if (this.entities.size > this.maxEntities) this.entities.delete(this.entities.keys().next().value as string);
    return st;
  }

  private freshState(into: Float32Array = new Float32Array(2 * this.k + 2)): Float32Array {
    const k = this.k;
    into.set(this.fm.entityInit, 0);
    into[k] = this.fm.entityBiasInit;
    into.fill(this.aG0, k + 1);
    return into;
  }

  private observeOne(ev: LabelledEvent): void {
    const fm = this.fm;
    const k = this.k;
    const n = this.encode(ev);
    const idx = this.idx;
    const id = this.side === 'user' ? ev.userId : ev.itemId;
    const st = this.entity(id);
    const s = this.s;
    const y = ev.label;
    const z = fm.logit(idx, st, st[k]!, n, s);
    const p = sigmoid(z);
    this.loss.add(p, y);
    const err = p - y;
    // Shared gradient: with the entity, or (dropout) with the cold init in its place.
    const drop = this.dropout > 0 && this.rand() < this.dropout;
    const eUsed = drop ? fm.entityInit : st;
    let g = err;
    if (drop) {
      let zd = z - st[k]! + fm.entityBiasInit;
      for (let f = 0; f < k; f++) zd += (fm.entityInit[f]! - st[f]!) * s[f]!;
      g = sigmoid(zd) - y;
    }
    // Entity replica first (it reads v before the shared step, as the worker's adapter would).
    if (this.windows.isOpen(id)) {
      const task = this.windows.add(id, { idx: idx.slice(0, n), y });
      if (task !== undefined) this.metaTask(task);
    }
    this.adaptEntity(st, err, s);
    // Shared Adagrad step (as trainers/fm-trainer.ts).
    const { w, v, gw, gv } = { w: fm.w, v: fm.v, gw: this.gw, gv: this.gv };
    this.gw0[0] = this.gw0[0]! + g * g;
    fm.w0 -= (this.lr * g) / Math.sqrt(this.gw0[0]!);
    for (let r = 0; r < n; r++) {
      const row = idx[r]!;
      const gwr = g + this.l2 * w[row]!;
      gw[row] = gw[row]! + gwr * gwr;
      w[row] = w[row]! - (this.lr * gwr) / Math.sqrt(gw[row]!);
      const base = row * k;
      for (let f = 0; f < k; f++) {
        const vf = v[base + f]!;
        const gvf = g * (s[f]! - vf + eUsed[f]!) + this.l2 * vf;
        gv[base + f] = gv[base + f]! + gvf * gvf;
        v[base + f] = vf - (this.lr * gvf) / Math.sqrt(gv[base + f]!);
      }
    }
    this.nEvents++;
  }

  /** One fm-adagrad step on state `st` given ∂loss/∂z = err and Σv = s (adapters/fm-adagrad.ts). */
  private adaptEntity(st: Float32Array, err: number, s: Float32Array): void {
    const k = this.k;
    const init = this.fm.entityInit;
    for (let f = 0; f < k; f++) {
      const e = st[f]!;
      const g = err * s[f]! + this.aL2 * (e - init[f]!);
      const G = st[k + 1 + f]! + g * g;
      st[k + 1 + f] = G;
      st[f] = e - (this.aLr * g) / Math.sqrt(G);
    }
    if (this.aLrB > 0) {
      const b = st[k]!;
      const gb = err + this.aL2 * (b - this.fm.entityBiasInit);
      const Gb = st[2 * k + 1]! + gb * gb;
      st[2 * k + 1] = Gb;
      st[k] = b - (this.aLrB * gb) / Math.sqrt(Gb);
    }
  }

  /** Adds one task's first-order meta gradient; steps every `metaBatch` tasks. */
  private metaTask(task: WindowTask<Ev>): void {
    this.nTasks++;
    if (this.metaLr === 0) return;
    const k = this.k;
    const fm = this.fm;
    const st = this.freshState(this.st);
    const s = this.sm;
    const a = this.a;
    const ns = task.support.length;
    const nq = task.query.length;
    // Support at θ0 (the cold loss), then the inner updates the worker would make.
    for (const e of task.support) {
      const err = sigmoid(fm.logit(e.idx, fm.entityInit, fm.entityBiasInit, e.idx.length, s)) - e.y;
      for (let f = 0; f < k; f++) this.metaG[f] = this.metaG[f]! + (a * err * s[f]!) / ns;
      this.metaG[k] = this.metaG[k]! + (a * err) / ns;
    }
    for (const e of task.support) {
      const err = sigmoid(fm.logit(e.idx, st, st[k]!, e.idx.length, s)) - e.y;
      this.adaptEntity(st, err, s);
    }
    for (const e of task.query) {
      const err = sigmoid(fm.logit(e.idx, st, st[k]!, e.idx.length, s)) - e.y;
      for (let f = 0; f < k; f++) this.metaG[f] = this.metaG[f]! + ((1 - a) * err * s[f]!) / nq;
      this.metaG[k] = this.metaG[k]! + ((1 - a) * err) / nq;
    }
    if (++this.pendingTasks >= this.metaBatch) this.applyMeta();
  }

  private applyMeta(): void {
    const k = this.k;
    const b1 = 0.9;
    const b2 = 0.999;
    this.metaStep++;
    const bc1 = 1 - b1 ** this.metaStep;
    const bc2 = 1 - b2 ** this.metaStep;
    for (let i = 0; i <= k; i++) {
      const g = this.metaG[i]! / this.pendingTasks;
      this.metaM[i] = b1 * this.metaM[i]! + (1 - b1) * g;
      this.metaV[i] = b2 * this.metaV[i]! + (1 - b2) * g * g;
      const step = (this.metaLr * (this.metaM[i]! / bc1)) / (Math.sqrt(this.metaV[i]! / bc2) + 1e-8);
      if (i < k) this.fm.entityInit[i] = this.fm.entityInit[i]! - step;
      else this.fm.entityBiasInit -= step;
    }
    this.metaG.fill(0);
    this.pendingTasks = 0;
  }
}
