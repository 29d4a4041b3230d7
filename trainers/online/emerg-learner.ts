/**
 * Online learner of an `emerg` release (items):
 *
 * - shared part: one supervised step per mini-batch of item events (trainers/steps.ts
 *   `supervisedStep`: Adam on every dense param, the graph hypernetwork included since each row's
 *   graph is generated inside the step; the feature table by its own sparse optimiser). Each row's
 *   item-ID embedding comes from a bounded per-item table (LRU, like fm-learner's entity vectors):
 *   an item enters it with the ID generator's output at first sight and its row then trains by SGD
 *   in those steps, as hot items' rows train offline.
 * - meta part (graph hypernetwork, ID generator and the shared parts): each new item's first K
 *   events (EntityWindows) form a task, support = the first ones, query = the rest; every
 *   `itemsPerStep` tasks one first-order meta step (trainers/steps.ts `metaStep`, as offline:
 *   params generated from the item's features, one inner SGD step on the support, outer Adam on
 *   0.1·support + 0.9·query through the generators).
 * Releases keep the event layout and state layout of the release the learner started from, with
 * entityStatePolicy 'keep': items already warm keep their states, new items start from the newest
 * generators.
 */
import * as tf from '@tensorflow/tfjs';
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { ThawError } from '../../lib/errors.js';
import type { RowBatch } from '../../models/ctr-model.js';
import { EmbeddingTable } from '../../models/embedding-table.js';
import type { Emerg } from '../../models/emerg.js';
import { EventEncoder, type EventLayout } from '../../models/event-layout.js';
import { emergStateSize, type BiasFilterPrior } from '../../models/meta-state.js';
import { bundleCtr, type Bundle, type StateLayout } from '../../models/onnx/bundle.js';
import { idGeneratorParams } from '../../models/meta-embedding.js';
import { DenseAdam } from '../../models/params.js';
import { metaStep, supervisedStep } from '../steps.js';
import { MetaWindowLearner, learnerOption } from './meta-window-learner.js';
import { EntityWindows, type EntityWindowOptions, type WindowTask } from './windows.js';
import type { OnlineLearner } from './learner.js';
import { LRUCache } from 'lru-cache';
import { at } from '../../lib/at.js';

/** Options of `EmergOnlineLearner`. */
export interface EmergLearnerOptions {
  /** Events per supervised step of the shared part. @default 256 */
  batchSize?: number;
  /** Adam learning rate of the dense params in the supervised steps; 0 freezes them there. @default 0.0005 */
  sharedLr?: number;
  /** Also update the feature table from the stream (supervised and meta steps). @default true */
  trainTable?: boolean;
  /** SGD learning rate of the items' ID embeddings in the supervised steps. @default 0.05 */
  idLr?: number;
  /** Items whose ID embedding the learner holds (LRU); about W·4 bytes each. @default 100_000 */
  maxEntities?: number;
  /** Adam learning rate of the meta step (generators, hypernetwork and shared dense params). 0 skips meta steps. @default 0.0005 */
  metaLr?: number;
  /** Tasks per meta step. @default 16 */
  itemsPerStep?: number;
  /** Inner SGD learning rate on the item params in the meta step (the offline trainer's). @default 0.1 */
  innerLr?: number;
  /** Inner learning rate of the item graph as a multiple of innerLr. @default 1 */
  graphLrScale?: number;
  /** Weight a of the support (cold) loss. @default 0.1 */
  supportWeight?: number;
  /** Warm-up windows (K events per task). @default { size: 10, support: 5, maxEntities: 10_000 } */
  windows?: EntityWindowOptions;
  /** Entity state layout the releases declare. @default emerg, 2 + 2W + 2F² + 2 (models/meta-state.ts; the factory passes the release's) */
  stateLayout?: StateLayout;
  /** The bias filter's prior the releases record (the release's the learner started from). @default none */
  biasFilter?: BiasFilterPrior;
}

export class EmergOnlineLearner extends MetaWindowLearner implements OnlineLearner {
  readonly kind = 'emerg' as const;
  readonly side: Side = 'item';
  readonly model: Emerg;
  readonly layout: EventLayout;
  readonly windows: EntityWindows<LabelledEvent>;
  private readonly encoder: EventEncoder;
  protected readonly batchSize: number;
  private readonly sharedLr: number;
  private readonly trainTable: boolean;
  private readonly idLr: number;
  private readonly maxEntities: number;
  private readonly metaLr: number;
  private readonly perStep: number;
  private readonly innerLr: number;
  private readonly graphLrScale: number;
  private readonly a: number;
  private readonly stateLayout: StateLayout;
  private readonly biasFilter: BiasFilterPrior | undefined;
  private readonly adam: DenseAdam;
  private readonly metaAdam: DenseAdam;
  /** Item-ID embeddings of recent items (W each); Map order is recency (LRU). */
  private readonly items: LRUCache<string, Float32Array>;

  constructor(model: Emerg, layout: EventLayout, opts: EmergLearnerOptions = {}) {
    super();
    if (layout.side !== 'item') throw new ThawError('RELEASE_INCOMPATIBLE', `emerg adapts items; the event layout is for ${layout.side}`);
    this.model = model;
    this.layout = layout;
    this.encoder = new EventEncoder(layout);
    if (this.encoder.slots !== model.slots) throw new ThawError('RELEASE_INCOMPATIBLE', `event layout has ${this.encoder.slots} slots, the model ${model.slots}`);
    if (layout.vocab !== model.table.rows) throw new ThawError('RELEASE_INCOMPATIBLE', `event layout has ${layout.vocab} rows, the model's table ${model.table.rows}`);
    this.batchSize = learnerOption('batchSize', opts.batchSize, 256, (x) => Number.isInteger(x) && x >= 1 && x <= 65_536, 'must be an integer in [1, 65536]');
    this.sharedLr = learnerOption('sharedLr', opts.sharedLr, 0.0005, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
    this.idLr = learnerOption('idLr', opts.idLr, 0.05, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
    this.maxEntities = learnerOption('maxEntities', opts.maxEntities, 100_000, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
    this.items = new LRUCache<string, Float32Array>({ max: this.maxEntities });
    this.metaLr = learnerOption('metaLr', opts.metaLr, 0.0005, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
    this.perStep = learnerOption('itemsPerStep', opts.itemsPerStep, 16, (x) => Number.isInteger(x) && x >= 1, 'must be an integer >= 1');
    this.innerLr = learnerOption('innerLr', opts.innerLr, 0.1, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
    this.graphLrScale = learnerOption('graphLrScale', opts.graphLrScale, 1, (x) => x >= 0 && Number.isFinite(x), 'must be >= 0');
    this.a = learnerOption('supportWeight', opts.supportWeight, 0.1, (x) => x >= 0 && x < 1, 'must be in [0, 1)');
    this.trainTable = opts.trainTable ?? true;
    this.windows = new EntityWindows<LabelledEvent>(opts.windows ?? {});
    this.stateLayout = opts.stateLayout ?? { adapter: 'emerg', stateSize: emergStateSize(model.width, model.graphSize) };
    this.biasFilter = opts.biasFilter;
    this.adam = new DenseAdam(Math.max(this.sharedLr, 1e-12));
    this.metaAdam = new DenseAdam(Math.max(this.metaLr, 1e-12));
  }

  bundle(_releaseId: string): Bundle {
    return bundleCtr(this.model, { eventLayout: this.layout, stateLayout: this.stateLayout, entityStatePolicy: 'keep', ...(this.biasFilter === undefined ? {} : { biasFilter: this.biasFilter }) });
  }

  protected trackedEntities(): number {
    return this.items.size;
  }

  /** ID embeddings of `ids` (LRU refreshed); items not held get the generator's output from `first[i]`. */
  private idRows(ids: readonly string[], first: readonly LabelledEvent[]): Float32Array[] {
    const out: (Float32Array | undefined)[] = ids.map((id) => {
      return this.items.get(id); // now the most recently used
    });
    const missing = out.flatMap((r, i) => (r === undefined ? [i] : []));
    if (missing.length > 0) {
      // First sight: one generator call for every new item of the batch (what the adapter does).
      const w = this.model.width;
      const b = this.encoder.encode(missing.map((i) => at(first, i, 'first')));
      const gen = tf.tidy(() => this.model.generateIdEmb(this.model.dense.tensors(), this.model.pooledOf(b)));
      const vals = gen.dataSync() as Float32Array;
      gen.dispose();
      missing.forEach((i, j) => {
        const row = vals.slice(j * w, j * w + w);
        out[i] = row;
        this.items.set(at(ids, i, 'ids'), row);
        this.windows.openFor(at(ids, i, 'ids'));
      });
    }
    return out as Float32Array[];
  }

  protected trainBuffered(): void {
    const events = this.buffer;
    this.buffer = [];
    const w = this.model.width;
    const local = new Map<string, number>();
    const ids: string[] = [];
    const first: LabelledEvent[] = [];
    const entity = new Int32Array(events.length);
    events.forEach((ev, i) => {
      let e = local.get(ev.itemId);
      if (e === undefined) {
        e = ids.length;
        local.set(ev.itemId, e);
        ids.push(ev.itemId);
        first.push(ev);
      }
      entity[i] = e;
    });
    const rows = this.idRows(ids, first);
    for (const ev of events) {
      if (!this.windows.isOpen(ev.itemId)) continue;
      const task = this.windows.add(ev.itemId, ev);
      if (task !== undefined) this.tasks.push(task);
    }
    const b = this.encoder.encode(events, entity);
    // The batch's items as a small ID table: its sparse SGD moves their rows in the step.
    const idTable = new EmbeddingTable({ rows: ids.length, dim: w, optimizer: 'sgd', lr: Math.max(this.idLr, 1e-12) });
    rows.forEach((r, i) => idTable.data.set(r, i * w));
    // The ID generator is not on this path (rows come from the ID table): the meta step trains it.
    const idGen = new Set(idGeneratorParams());
    const trainable = this.sharedLr > 0 ? this.model.dense.names().filter((n) => !idGen.has(n)) : [];
    // The step's loss is taken before its update: the trainer's own predict-then-learn view.
    const loss = supervisedStep(this.model, b, idTable, this.adam, { trainable, trainTable: this.trainTable });
    this.loss.addMean(loss, b.n);
    if (this.idLr > 0) rows.forEach((r, i) => r.set(idTable.data.subarray(i * w, i * w + w)));
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
    metaStep(
      this.model,
      enc((t) => t.support),
      enc((t) => t.query),
      tasks.length,
      this.metaAdam,
      {
        trainable: this.model.dense.names(),
        trainTable: this.trainTable,
        innerLr: this.innerLr,
        graphLrScale: this.graphLrScale,
        supportWeight: this.a,
      },
    );
    this.metaSteps++;
  }
}
