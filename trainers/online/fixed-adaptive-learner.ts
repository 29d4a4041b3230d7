/**
 * Online learner of a `fixed-adaptive` release (the meta parameter partition's second, ONLINE
 * meta-training stage, on streaming users):
 *
 * - fixed (shared) part: one supervised step per mini-batch of events (trainers/steps.ts
 *   `supervisedStep`: Adam on the DeepFM trunk, the feature table's own sparse optimiser), with each
 *   event's user at its current adaptive params. The trainer keeps a replica of recent users'
 *   adaptive params (bounded LRU), started at `fa.init` and stepped by Meta-SGD (−fa.lr ⊙ ∇) on
 *   their rows, as the worker's adapter does.
 * - meta part (`fa.init`, `fa.lr`): each new user's first K events (EntityWindows) form a task;
 *   every `usersPerStep` tasks, `stepsPerBatch` first-order meta steps (the new tasks, then samples
 *   of a bounded buffer of recent tasks), fixed part left alone. Objective `prequential` (default,
 *   trainers/online/fa-meta.ts): replay the worker's one-step-per-event Meta-SGD from fa.init over
 *   the window and descend the mean predict-before-learn loss, i.e. what the warm-up curve scores;
 *   `split`: the offline stage's rule (trainers/fixed-adaptive-trainer.ts `fixedAdaptiveMetaStep`:
 *   one step on the mean support loss, 0.1·support + 0.9·query).
 * Defaults (prequential, K 20, meta lr 0.05, 16 tasks per step, 4 steps per batch) were chosen on a
 * validation part of the stream (bench/online/meta-stage.ts `--validate`: offline release on the
 * first 30% of ML-100K, online stage scored on 30–50%; never the scored half). There, overall AUC
 * over the offline release: old rule (split, K 10, lr 0.005, 1 step) +0.05 points; prequential
 * K 10 lr 0.005 1 step +0.13; K 20 lr 0.05 4 steps +1.85; 8 steps +1.90 (twice the cost, within
 * noise); lr 0.1 +1.62. Its cost: the cold bucket (0 prior events) loses about 2.5 points there
 * (a cold-loss weight of 0.2 did not recover it), every later bucket gains.
 */
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { ConfigError, ThawError } from '../../lib/errors.js';
import type { RowBatch } from '../../models/ctr-model.js';
import { EmbeddingTable } from '../../models/embedding-table.js';
import { EventEncoder, type EventLayout } from '../../models/event-layout.js';
import type { FixedAdaptive } from '../../models/fixed-adaptive.js';
import { fixedAdaptiveStateSize, type BiasFilterPrior } from '../../models/meta-state.js';
import { bundleUser, type Bundle, type StateLayout } from '../../models/onnx/bundle.js';
import { DenseAdam } from '../../models/params.js';
import { supervisedStep } from '../steps.js';
import { fixedAdaptiveMetaStep } from '../fixed-adaptive-trainer.js';
import { mulberry32 } from '../../models/fm.js';
import { prequentialMetaStep } from './fa-meta.js';
import { MetaWindowLearner, learnerOption } from './meta-window-learner.js';
import { EntityWindows, type EntityWindowOptions, type WindowTask } from './windows.js';
import type { OnlineLearner } from './learner.js';
import { LRUCache } from 'lru-cache';
import { at } from '../../lib/at.js';

/** Options of `FixedAdaptiveOnlineLearner`. */
export interface FixedAdaptiveLearnerOptions {
  /** Events per supervised step of the fixed part. @default 256 */
  batchSize?: number;
  /** Adam learning rate of the fixed dense params; 0 freezes them (the table keeps its own optimiser unless `trainTable` is false). @default 0.0005 */
  fixedLr?: number;
  /** Also update the feature table from the stream. @default true */
  trainTable?: boolean;
  /** Adam learning rate of fa.init and fa.lr. 0 freezes them. @default 0.05 */
  metaLr?: number;
  /** Tasks per meta step. @default 16 */
  usersPerStep?: number;
  /** Weight a of the support (cold) loss (objective `split`). @default 0.1 */
  supportWeight?: number;
  /** Meta objective: `prequential` (the worker's per-event steps, mean predict-before-learn loss) or `split` (support/query as offline). @default 'prequential' */
  objective?: 'prequential' | 'split';
  /** Objective `prequential`: weight of the cold (first-event) loss, the rest shared by the later events; unset = uniform 1/K. */
  coldWeight?: number;
  /** Meta steps per batch of `usersPerStep` new tasks: one on them, the others on samples of the recent-task buffer. @default 4 */
  stepsPerBatch?: number;
  /** Recent completed tasks kept for those extra steps (bounded, oldest dropped). @default 1024 */
  replayTasks?: number;
  /** Seed of the replay samples. @default 1 */
  seed?: number;
  /** Warm-up windows (K events per task; support matters to objective `split` only). @default { size: 20, support: 10, maxEntities: 10_000 } */
  windows?: EntityWindowOptions;
  /** User replicas kept (LRU). @default 100_000 */
  maxEntities?: number;
  /** Entity state layout the releases declare. @default fixed-adaptive, D + 3 (models/meta-state.ts; the factory passes the release's) */
  stateLayout?: StateLayout;
  /** The bias filter's prior the releases record (the release's the learner started from). @default none */
  biasFilter?: BiasFilterPrior;
}

export class FixedAdaptiveOnlineLearner extends MetaWindowLearner implements OnlineLearner {
  readonly kind = 'fixed-adaptive' as const;
  readonly side: Side = 'user';
  readonly model: FixedAdaptive;
  readonly layout: EventLayout;
  readonly windows: EntityWindows<LabelledEvent>;
  private readonly encoder: EventEncoder;
  protected readonly batchSize: number;
  private readonly trainTable: boolean;
  private readonly fixedLr: number;
  private readonly metaLr: number;
  private readonly perStep: number;
  private readonly a: number;
  private readonly objective: 'prequential' | 'split';
  private readonly stepsPerBatch: number;
  private readonly coldWeight: number | undefined;
  private readonly replayMax: number;
  private readonly replay: WindowTask<LabelledEvent>[] = [];
  private replayNext = 0;
  private readonly rand: () => number;
  private readonly maxEntities: number;
  private readonly stateLayout: StateLayout;
  private readonly biasFilter: BiasFilterPrior | undefined;
  private readonly adam: DenseAdam;
  private readonly metaAdam: DenseAdam;
  private readonly users: LRUCache<string, Float32Array>;

  constructor(model: FixedAdaptive, layout: EventLayout, opts: FixedAdaptiveLearnerOptions = {}) {
    super();
    if (layout.side !== 'user') throw new ThawError('RELEASE_INCOMPATIBLE', `fixed-adaptive adapts users; the event layout is for ${layout.side}`);
    this.model = model;
    this.layout = layout;
    this.encoder = new EventEncoder(layout);
    if (this.encoder.slots !== model.slots) throw new ThawError('RELEASE_INCOMPATIBLE', `event layout has ${this.encoder.slots} slots, the model ${model.slots}`);
    this.batchSize = learnerOption('batchSize', opts.batchSize, 256, (x) => Number.isInteger(x) && x >= 1 && x <= 65_536, 'must be an integer in [1, 65536]');
    this.fixedLr = learnerOption('fixedLr', opts.fixedLr, 0.0005, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
    this.metaLr = learnerOption('metaLr', opts.metaLr, 0.05, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
    this.perStep = learnerOption('usersPerStep', opts.usersPerStep, 16, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
    this.a = learnerOption('supportWeight', opts.supportWeight, 0.1, (x) => x >= 0 && x < 1, 'must be in [0, 1)');
    const objective = opts.objective ?? 'prequential';
    if (objective !== 'prequential' && objective !== 'split') throw new ConfigError('onlineTrainer.objective', `must be prequential or split, got ${String(opts.objective)}`);
    this.objective = objective;
    this.coldWeight = opts.coldWeight === undefined ? undefined : learnerOption('coldWeight', opts.coldWeight, 0, (x) => x >= 0 && x <= 1, 'must be in [0, 1]');
    this.stepsPerBatch = learnerOption('stepsPerBatch', opts.stepsPerBatch, 4, (x) => Number.isInteger(x) && x >= 1 && x <= 100, 'must be an integer in [1, 100]');
    this.replayMax = learnerOption('replayTasks', opts.replayTasks, 1024, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
    this.rand = mulberry32(((opts.seed ?? 1) ^ 0x2545f491) >>> 0);
    this.maxEntities = learnerOption('maxEntities', opts.maxEntities, 100_000, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
    this.users = new LRUCache<string, Float32Array>({ max: this.maxEntities });
    this.trainTable = opts.trainTable ?? true;
    this.windows = new EntityWindows<LabelledEvent>({ size: 20, ...opts.windows });
    this.stateLayout = opts.stateLayout ?? { adapter: 'fixed-adaptive', stateSize: fixedAdaptiveStateSize(model.adaptiveSize) };
    this.biasFilter = opts.biasFilter;
    this.adam = new DenseAdam(Math.max(this.fixedLr, 1e-12));
    this.metaAdam = new DenseAdam(Math.max(this.metaLr, 1e-12));
  }

  bundle(_releaseId: string): Bundle {
    return bundleUser(this.model, { eventLayout: this.layout, stateLayout: this.stateLayout, entityStatePolicy: 'keep', ...(this.biasFilter === undefined ? {} : { biasFilter: this.biasFilter }) });
  }

  protected trackedEntities(): number {
    return this.users.size;
  }

  private user(id: string): Float32Array {
    let u = this.users.get(id); // now the most recently used
    if (u !== undefined) return u;
    u = Float32Array.from(this.model.meta.get('fa.init').data);
    this.users.set(id, u);
    this.windows.openFor(id);
    return u;
  }

  protected trainBuffered(): void {
    const events = this.buffer;
    this.buffer = [];
    const ps = this.model.adaptiveSize;
    const local = new Map<string, number>();
    const ids: string[] = [];
    const entity = new Int32Array(events.length);
    events.forEach((ev, i) => {
      let e = local.get(ev.userId);
      if (e === undefined) {
        e = ids.length;
        local.set(ev.userId, e);
        ids.push(ev.userId);
      }
      entity[i] = e;
    });
    const params = ids.map((id) => this.user(id));
    for (const ev of events) {
      if (!this.windows.isOpen(ev.userId)) continue;
      const task = this.windows.add(ev.userId, ev);
      if (task !== undefined) this.tasks.push(task);
    }
    const b = this.encoder.encode(events, entity);
    const count = ids.length;
    const flat = new Float32Array(count * ps);
    params.forEach((p, i) => flat.set(p, i * ps));
    // Scores before any update, for the running loss (the honest prequential view of the trainer).
    const pre = this.model.predict(b, flat);
    for (let i = 0; i < b.n; i++) this.loss.add(pre[i] ?? 0, b.label[i] ?? 0);
    // The ID table of the step holds this batch's users; lr 0: users move by Meta-SGD below, not by it.
    const idTable = new EmbeddingTable({ rows: count, dim: ps, optimizer: 'sgd', lr: 0 });
    idTable.data.set(flat);
    if (this.fixedLr > 0 || this.trainTable) {
      const trainable = this.fixedLr > 0 ? this.model.backbone.dense.names() : [];
      supervisedStep(this.model.backbone, b, idTable, this.adam, { trainable, trainTable: this.trainTable });
    }
    this.model.adaptStep(b, flat, count, 1);
    params.forEach((p, i) => p.set(flat.subarray(i * ps, i * ps + ps)));
    this.nEvents += events.length;
    if (this.tasks.length >= this.perStep) this.metaStep(false);
  }

  /** Meta steps on the pending tasks, `perStep` at a time (a partial chunk only when `all`, at a flush). */
  protected metaStep(all = true): void {
    while (this.tasks.length >= this.perStep || (all && this.tasks.length > 0)) this.metaStepChunk(this.tasks.splice(0, this.perStep));
  }

  private metaStepChunk(tasks: WindowTask<LabelledEvent>[]): void {
    this.nTasks += tasks.length;
    if (this.metaLr === 0 || tasks.length === 0) return;
    this.metaStepOn(tasks);
    for (const t of tasks) {
      if (this.replay.length < this.replayMax) this.replay.push(t);
      else this.replay[this.replayNext] = t;
      this.replayNext = (this.replayNext + 1) % this.replayMax;
    }
    // Extra steps on recent tasks: a stream brings few new users per interval, one pass is little.
    for (let s = 1; s < this.stepsPerBatch && this.replay.length > 0; s++) {
      const pick: WindowTask<LabelledEvent>[] = [];
      for (let i = 0; i < this.perStep; i++) pick.push(at(this.replay, Math.floor(this.rand() * this.replay.length), 'this.replay'));
      this.metaStepOn(pick);
    }
  }

  private metaStepOn(tasks: readonly WindowTask<LabelledEvent>[]): void {
    if (this.objective === 'prequential') {
      // Position j = the j-th event of every task (all windows hold K events).
      const positions: RowBatch[] = [];
      const ent = Int32Array.from({ length: tasks.length }, (_, i) => i);
      for (let j = 0; j < this.windows.size; j++)
        positions.push(
          this.encoder.encode(
            tasks.map((t) => (j < t.support.length ? at(t.support, j, 't.support') : at(t.query, j - t.support.length, 't.query'))),
            ent,
          ),
        );
      prequentialMetaStep(this.model, positions, tasks.length, this.metaAdam, this.coldWeight);
    } else {
      const enc = (pick: (t: WindowTask<LabelledEvent>) => LabelledEvent[]): RowBatch => {
        const evs: LabelledEvent[] = [];
        const ent: number[] = [];
        tasks.forEach((t, i) => {
          for (const ev of pick(t)) {
            evs.push(ev);
            ent.push(i);
          }
        });
        return this.encoder.encode(evs, Int32Array.from(ent));
      };
      const ep = { support: enc((t) => t.support), query: enc((t) => t.query), count: tasks.length };
      fixedAdaptiveMetaStep(this.model, ep, this.adam, this.metaAdam, { supportWeight: this.a, trainFixed: false });
    }
    // Meta-SGD rates must stay positive: a negative rate would step users uphill.
    const lr = this.model.meta.get('fa.lr').data;
    for (let i = 0; i < lr.length; i++) if ((lr[i] ?? 0) < 1e-4) lr[i] = 1e-4;
    this.metaSteps++;
  }
}
