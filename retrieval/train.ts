/**
 * Training the dual encoder (retrieval/towers.ts) on a labelled stream's positives, in micro-batches
 * with the sampled softmax of retrieval/loss.ts: in-batch negatives, plus RocketQA's cross-batch
 * negatives when `crossBatches` > 0 (retrieval/negatives.ts). The history a training example sees is
 * its user's positives strictly before it (at most `historyLength`), so nothing leaks from its future.
 * History vectors come from a cache of every catalogue item's tower output, refreshed every
 * `historyRefreshBatches` steps.
 *
 * With `rocketqa` (RocketQA's denoised hard negatives and ranker pseudo-labels,
 * retrieval/hard-negatives.ts): from epoch `mineFromEpoch` on, each epoch starts by mining every
 * training user's pool with the current towers; each training example then gets `hardPerExample`
 * negatives drawn from its user's pool, and the epoch's examples include the pseudo positives.
 */
import { contrastiveLoss } from './loss.js';
import { mineUser, type MiningUser } from './hard-negatives.js';
import { CrossBatchQueue } from './negatives.js';
import { DualEncoder, type DualEncoderGrads, type DualEncoderOptions, type ItemInput } from './towers.js';
import type { CatalogItem, Ranker, RetrievalQuery, Retriever } from './types.js';
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
  /** RocketQA's denoised hard negatives and pseudo-labels (see the file comment); absent: neither. */
  rocketqa?: RocketQaOptions;
  /** Sees the catalogue indices each step feeds the loss (for tests). */
  tap?: (input: LossInput) => void;
}

/** Options of RocketQA's hard negatives and pseudo-labels (retrieval/hard-negatives.ts). */
export interface RocketQaOptions {
  /** The stronger model that denoises and pseudo-labels. */
  ranker: Ranker;
  /** Retrieved candidates per user mined as hard negatives. @default 50 */
  mineTopK?: number;
  /** Ranker score (0..1) at or above which a mined candidate is dropped. @default 0.1 (RocketQA's) */
  threshold?: number;
  /** Retrieved unlabelled items per user given pseudo-labels (0: no augmentation). @default 0 */
  pseudoTopK?: number;
  /** Hard negatives per training example, drawn from its user's pool. @default 1 */
  hardPerExample?: number;
  /** First epoch (0-based) that mines; every later epoch mines again. @default 1 */
  mineFromEpoch?: number;
}

/** The catalogue indices of one step's loss. */
export interface LossInput {
  /** Positives (row b is example b's). */
  itemIds: Int32Array;
  /** Cross-batch negatives. */
  extraIds: Int32Array;
  /** Hard negatives; example b's are hardIds[hardStart[b]..hardStart[b+1]). */
  hardIds: Int32Array;
  hardStart: Int32Array;
}

/** Totals of the last mining round. */
export interface MiningStats {
  users: number;
  /** Hard negatives kept (denoised) plus pseudo negatives. */
  negatives: number;
  /** Mined candidates dropped by the ranker. */
  dropped: number;
  pseudoPositives: number;
}

/** One training positive. */
export interface TrainExample {
  userRows: Int32Array;
  /** Catalogue index of the positive item. */
  item: number;
  /** Catalogue indices of the user's earlier positives (the last historyLength), oldest first. */
  history: Int32Array;
  /** The user (hard negatives are drawn from their pool); absent: none drawn. */
  userId?: string;
}

/** A training user, as mining sees it. */
export interface TrainUser extends MiningUser {
  userRows: Int32Array;
  /** Catalogue indices of the user's last historyLength training positives, oldest first. */
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
  private readonly rocketqa: Required<RocketQaOptions> | undefined;
  private readonly tap: ((input: LossInput) => void) | undefined;
  /** Each user's hard-negative pool (from the last mining round). */
  private pools = new Map<string, Int32Array>();
  /** The pseudo positives of the last mining round, as examples. */
  private pseudo: TrainExample[] = [];
  /** Totals of the last mining round (undefined: none yet). */
  miningStats: MiningStats | undefined;

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
    this.tap = opts.tap;
    const rq = opts.rocketqa;
    if (rq) {
      const count = (key: string, v: number, min: number): number => {
        if (!(Number.isInteger(v) && v >= min)) throw new ConfigError(`rocketqa.${key}`, `must be an integer >= ${min}, got ${v}`);
        return v;
      };
      const threshold = rq.threshold ?? 0.1;
      if (!(threshold > 0 && threshold <= 1)) throw new ConfigError('rocketqa.threshold', `must be in (0, 1], got ${threshold}`);
      this.rocketqa = {
        ranker: rq.ranker,
        threshold,
        mineTopK: count('mineTopK', rq.mineTopK ?? 50, 0),
        pseudoTopK: count('pseudoTopK', rq.pseudoTopK ?? 0, 0),
        hardPerExample: count('hardPerExample', rq.hardPerExample ?? 1, 0),
        mineFromEpoch: count('mineFromEpoch', rq.mineFromEpoch ?? 1, 0),
      };
    }
  }

  /** The training users of interactions in time order (their positives, seen items and last history). */
  users(interactions: Iterable<TrainInteraction>, userFeatures: ReadonlyMap<string, Features>): TrainUser[] {
    const byId = new Map<string, { positives: number[]; seen: Set<number> }>();
    for (const t of interactions) {
      let u = byId.get(t.userId);
      if (!u) byId.set(t.userId, (u = { positives: [], seen: new Set() }));
      u.seen.add(t.item);
      if (t.label === 1) u.positives.push(t.item);
    }
    const n = this.model.opts.historyLength;
    return [...byId].map(([userId, u]) => {
      const features = userFeatures.get(userId) ?? {};
      return { userId, features, positives: new Set(u.positives), seen: u.seen, userRows: this.model.userRows(features), history: Int32Array.from(u.positives.slice(-n)) };
    });
  }

  /** One mining round over `users` with the current towers (see the file comment). */
  mine(users: readonly TrainUser[]): MiningStats {
    const rq = this.rocketqa;
    if (!rq) throw new ConfigError('rocketqa', 'mining needs the rocketqa options');
    const { dim } = this.model.opts;
    const vectors = this.itemVectors();
    const query = new Float32Array(dim);
    const scores = new Float32Array(this.inputs.length);
    const stats: MiningStats = { users: users.length, negatives: 0, dropped: 0, pseudoPositives: 0 };
    this.pools = new Map();
    this.pseudo = [];
    for (const u of users) {
      this.model.userForward(u.userRows, this.historyMean(u.history, vectors), query, 0);
      for (let i = 0; i < scores.length; i++) {
        let s = 0;
        for (let j = 0; j < dim; j++) s += (vectors[i * dim + j] ?? 0) * (query[j] ?? 0);
        scores[i] = s;
      }
      const mined = mineUser(u, scores, rq.ranker, rq);
      this.pools.set(u.userId, Int32Array.from(mined.negatives));
      for (const item of mined.pseudoPositives) this.pseudo.push({ userRows: u.userRows, item, history: u.history, userId: u.userId });
      stats.negatives += mined.negatives.length;
      stats.dropped += mined.dropped.length;
      stats.pseudoPositives += mined.pseudoPositives.length;
    }
    this.miningStats = stats;
    return stats;
  }

  /** Each example's hard negatives, drawn from its user's pool (empty without rocketqa). */
  private drawHard(batch: readonly TrainExample[]): { ids: Int32Array; start: Int32Array } {
    const start = new Int32Array(batch.length + 1);
    const ids: number[] = [];
    const per = this.rocketqa?.hardPerExample ?? 0;
    batch.forEach((ex, k) => {
      const pool = ex.userId === undefined ? undefined : this.pools.get(ex.userId);
      if (pool && pool.length > 0) for (let d = 0; d < per; d++) ids.push(pool[Math.floor(this.model.rng.next() * pool.length)] ?? 0);
      start[k + 1] = ids.length;
    });
    return { ids: Int32Array.from(ids), start };
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
      out.push({ userRows: r, item: t.item, history: Int32Array.from(h.slice(-n)), userId: t.userId });
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
  lossAndGrads(
    batch: readonly TrainExample[],
    useId: readonly boolean[],
    extra: { vectors: Float32Array; ids: Int32Array },
    hard: { ids: Int32Array; start: Int32Array; useId: readonly boolean[] } = { ids: new Int32Array(0), start: new Int32Array(batch.length + 1), useId: [] },
  ): { loss: number; grads: DualEncoderGrads; items: Float32Array; itemIds: Int32Array } {
    const { dim } = this.model.opts;
    const b = batch.length;
    const hardVectors = new Float32Array(hard.ids.length * dim);
    const hardTraces = Array.from(hard.ids, (id, k) => {
      const input = this.inputs[id];
      if (!input) throw new ConfigError('item', `catalogue index ${id} out of range`);
      return this.model.itemForward(input, hard.useId[k] === true, hardVectors, k * dim);
    });
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
    this.tap?.({ itemIds, extraIds: extra.ids, hardIds: hard.ids, hardStart: hard.start });
    const res = contrastiveLoss({
      users,
      items,
      itemIds,
      extra: extra.vectors,
      extraIds: extra.ids,
      dim,
      temperature: this.temperature,
      ...(this.logQ ? { logQ: this.logQ } : {}),
      ...(hard.ids.length > 0 ? { hard: hardVectors, hardIds: hard.ids, hardStart: hard.start } : {}),
    });
    const grads = this.model.newGrads();
    hardTraces.forEach((tr, k) => this.model.itemBackward(tr, hardVectors, k * dim, res.dHard, k * dim, grads));
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
    const hard = this.drawHard(batch);
    const hardUseId = Array.from(hard.ids, (i) => this.known[i] === true && this.model.rng.next() >= p);
    const out = this.lossAndGrads(batch, useId, this.queue.snapshot(), { ...hard, useId: hardUseId });
    this.model.apply(out.grads);
    this.queue.push(out.items, out.itemIds);
    return out.loss;
  }

  /**
   * Trains for `epochs` shuffled passes; `onEpoch` gets each epoch's mean loss. With `rocketqa`,
   * `users` (from `users()`) are the ones mined.
   */
  train(examples: readonly TrainExample[], onEpoch?: (epoch: number, loss: number) => void, users: readonly TrainUser[] = []): void {
    if (this.rocketqa && users.length === 0) throw new ConfigError('rocketqa', 'training with hard negatives needs the training users');
    if (this.useLogQ) {
      const counts = new Float32Array(this.inputs.length);
      for (const ex of examples) counts[ex.item] = (counts[ex.item] ?? 0) + 1;
      this.logQ = Float32Array.from(counts, (c) => Math.log(Math.max(c, 1) / Math.max(1, examples.length)));
    }
    let all: readonly TrainExample[] = examples;
    let order = Int32Array.from(all.keys());
    for (let e = 0; e < this.epochs; e++) {
      if (this.rocketqa && e >= this.rocketqa.mineFromEpoch) {
        this.mine(users);
        all = this.pseudo.length > 0 ? [...examples, ...this.pseudo] : examples;
        if (order.length !== all.length) order = Int32Array.from(all.keys());
      }
      this.model.rng.shuffle(order);
      let sum = 0;
      let batches = 0;
      for (let s = 0; s + 1 < order.length; s += this.batchSize) {
        const batch: TrainExample[] = [];
        for (let k = s; k < Math.min(order.length, s + this.batchSize); k++) {
          const ex = all[order[k] ?? 0];
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
