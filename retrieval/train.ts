/**
 * Training the dual encoder (retrieval/towers.ts) on a labelled stream's positives, in micro-batches
 * with the sampled softmax of retrieval/loss.ts: in-batch negatives, plus RocketQA's cross-batch
 * negatives when `crossBatches` > 0 (retrieval/negatives.ts). The history a training example sees is
 * its user's positives strictly before it (at most `historyLength`), so nothing leaks from its future.
 * History vectors come from a cache of every catalogue item's tower output, refreshed every
 * `historyRefreshBatches` steps.
 */
import { contrastiveLoss } from './loss.js';
import { CrossBatchQueue } from './negatives.js';
import { DualEncoder, type DualEncoderGrads, type DualEncoderOptions, type ItemInput } from './towers.js';
import type { CatalogItem, RetrievalQuery, Retriever } from './types.js';
import type { Features } from '../schemas/types.js';
import { ConfigError } from '../lib/errors.js';

/** Options of training, beside the towers'. */
export interface DualEncoderTrainOptions extends DualEncoderOptions {
  /** Passes over the training positives. @default 8 */
  epochs?: number;
  /** Micro-batch size (positives per step; the in-batch negatives are the other B − 1). @default 256 */
  batchSize?: number;
  /** Past micro-batches whose item vectors are extra negatives (0: in-batch only). @default 0 */
  crossBatches?: number;
  /** Softmax temperature. @default 0.1 */
  temperature?: number;
  /** Steps between refreshes of the history-vector cache. @default 10 */
  historyRefreshBatches?: number;
  /** Subtract log q (the item's share of training positives) from every logit (retrieval/loss.ts). @default true */
  logQ?: boolean;
}

/** One training positive. */
export interface TrainExample {
  userRows: Int32Array;
  /** Catalogue index of the positive item. */
  item: number;
  /** Catalogue indices of the user's earlier positives (the last historyLength), oldest first. */
  history: Int32Array;
}

/** Interactions in time order, as the trainer needs them. */
export interface TrainInteraction {
  userId: string;
  item: number;
  label: 0 | 1;
}

function positive(key: string, v: number, integer: boolean): number {
  if (!(v > 0) || (integer && !Number.isInteger(v))) throw new ConfigError(key, `must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
  return v;
}

export class DualEncoderTrainer {
  readonly model: DualEncoder;
  readonly inputs: ItemInput[];
  private readonly known: boolean[];
  private itemCache: Float32Array;
  private readonly queue: CrossBatchQueue;
  readonly epochs: number;
  readonly batchSize: number;
  readonly temperature: number;
  private readonly refreshEvery: number;
  private steps = 0;
  private readonly useLogQ: boolean;
  private logQ: Float32Array | undefined;

  constructor(
    private readonly catalog: readonly CatalogItem[],
    opts: DualEncoderTrainOptions = {},
  ) {
    this.model = new DualEncoder(opts);
    this.epochs = positive('epochs', opts.epochs ?? 8, true);
    this.batchSize = positive('batchSize', opts.batchSize ?? 256, true);
    this.temperature = positive('temperature', opts.temperature ?? 0.1, false);
    this.refreshEvery = positive('historyRefreshBatches', opts.historyRefreshBatches ?? 10, true);
    const crossBatches = opts.crossBatches ?? 0;
    if (!(Number.isInteger(crossBatches) && crossBatches >= 0)) throw new ConfigError('crossBatches', `must be an integer >= 0, got ${crossBatches}`);
    this.queue = new CrossBatchQueue(crossBatches, this.model.opts.dim);
    this.inputs = catalog.map((it) => this.model.itemInput(it.id, it.features));
    this.known = catalog.map((it) => it.known);
    this.itemCache = this.itemVectors();
    this.useLogQ = opts.logQ ?? true;
  }

  /** Training examples from interactions in time order: each positive with its user's earlier positives. */
  examples(interactions: Iterable<TrainInteraction>, userFeatures: ReadonlyMap<string, Features>): TrainExample[] {
    const out: TrainExample[] = [];
    const past = new Map<string, number[]>();
    const rows = new Map<string, Int32Array>();
    const n = this.model.opts.historyLength;
    for (const t of interactions) {
      if (t.label !== 1) continue;
      let h = past.get(t.userId);
      if (!h) past.set(t.userId, (h = []));
      let r = rows.get(t.userId);
      if (!r) rows.set(t.userId, (r = this.model.userRows(userFeatures.get(t.userId) ?? {})));
      out.push({ userRows: r, item: t.item, history: Int32Array.from(h.slice(-n)) });
      h.push(t.item);
    }
    return out;
  }

  /** Every catalogue item's tower output (id used for known items), row-major. */
  itemVectors(): Float32Array {
    const { dim } = this.model.opts;
    const out = new Float32Array(this.inputs.length * dim);
    this.inputs.forEach((input, i) => this.model.itemForward(input, this.known[i] === true, out, i * dim));
    return out;
  }

  /** Mean of the cached vectors of `history` (zeros when empty). */
  historyMean(history: ArrayLike<number>, cache: Float32Array = this.itemCache): Float32Array {
    const { dim } = this.model.opts;
    const m = new Float32Array(dim);
    const n = Math.min(history.length, this.model.opts.historyLength);
    for (let k = history.length - n; k < history.length; k++) {
      const i = history[k] ?? 0;
      for (let j = 0; j < dim; j++) m[j] = (m[j] ?? 0) + (cache[i * dim + j] ?? 0) / n;
    }
    return m;
  }

  /**
   * Loss and parameter gradients of one micro-batch, for given id-dropout decisions and extra
   * negatives; changes nothing (the finite-difference test calls it).
   */
  lossAndGrads(batch: readonly TrainExample[], useId: readonly boolean[], extra: { vectors: Float32Array; ids: Int32Array }): { loss: number; grads: DualEncoderGrads; items: Float32Array; itemIds: Int32Array } {
    const { dim } = this.model.opts;
    const b = batch.length;
    const users = new Float32Array(b * dim);
    const items = new Float32Array(b * dim);
    const itemIds = new Int32Array(b);
    const itemTraces = batch.map((ex, k) => {
      itemIds[k] = ex.item;
      const input = this.inputs[ex.item];
      if (!input) throw new ConfigError('item', `catalogue index ${ex.item} out of range`);
      return this.model.itemForward(input, useId[k] === true, items, k * dim);
    });
    const userTraces = batch.map((ex, k) => this.model.userForward(ex.userRows, this.historyMean(ex.history), users, k * dim));
    const res = contrastiveLoss({ users, items, itemIds, extra: extra.vectors, extraIds: extra.ids, dim, temperature: this.temperature, ...(this.logQ ? { logQ: this.logQ } : {}) });
    const grads = this.model.newGrads();
    itemTraces.forEach((tr, k) => this.model.itemBackward(tr, items, k * dim, res.dItems, k * dim, grads));
    userTraces.forEach((tr, k) => this.model.userBackward(tr, users, k * dim, res.dUsers, k * dim, grads));
    return { loss: res.loss, grads, items, itemIds };
  }

  /** One optimiser step on a micro-batch; returns its loss. */
  step(batch: readonly TrainExample[]): number {
    if (this.steps % this.refreshEvery === 0) this.itemCache = this.itemVectors();
    this.steps++;
    const p = this.model.opts.idDropout;
    const useId = batch.map((ex) => this.known[ex.item] === true && this.model.rng.next() >= p);
    const out = this.lossAndGrads(batch, useId, this.queue.snapshot());
    this.model.apply(out.grads);
    this.queue.push(out.items, out.itemIds);
    return out.loss;
  }

  /** Trains for `epochs` shuffled passes; `onEpoch` gets each epoch's mean loss. */
  train(examples: readonly TrainExample[], onEpoch?: (epoch: number, loss: number) => void): void {
    if (this.useLogQ) {
      const counts = new Float32Array(this.inputs.length);
      for (const ex of examples) counts[ex.item] = (counts[ex.item] ?? 0) + 1;
      this.logQ = Float32Array.from(counts, (c) => Math.log(Math.max(c, 1) / Math.max(1, examples.length)));
    }
    const order = Int32Array.from(examples.keys());
    for (let e = 0; e < this.epochs; e++) {
      this.model.rng.shuffle(order);
      let sum = 0;
      let batches = 0;
      for (let s = 0; s + 1 < order.length; s += this.batchSize) {
        const batch: TrainExample[] = [];
        for (let k = s; k < Math.min(order.length, s + this.batchSize); k++) {
          const ex = examples[order[k] ?? 0];
          if (ex) batch.push(ex);
        }
        sum += this.step(batch);
        batches++;
      }
      onEpoch?.(e, sum / Math.max(1, batches));
    }
    this.itemCache = this.itemVectors();
  }

  /** A retriever over the trained towers (a snapshot of the item vectors; brand-new items without their id). */
  retriever(name: string): Retriever {
    const { dim } = this.model.opts;
    const vectors = this.itemVectors();
    const model = this.model;
    const historyMean = (h: readonly number[]): Float32Array => this.historyMean(h, vectors);
    const query = new Float32Array(dim);
    return {
      name,
      score(q: RetrievalQuery, out: Float32Array): void {
        model.userForward(model.userRows(q.features), historyMean(q.history), query, 0);
        for (let i = 0; i < out.length; i++) {
          let s = 0;
          for (let j = 0; j < dim; j++) s += (vectors[i * dim + j] ?? 0) * (query[j] ?? 0);
          out[i] = s;
        }
      },
    };
  }
}
