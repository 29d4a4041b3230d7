/**
 * The fixed / adaptive parameter split ("meta parameter partition", arXiv 1912.04108) for user
 * cold-start, on the family's DeepFM backbone (models/deepfm.ts) with the user ID as the entity
 * field. The model's parameters are declared in two parts (FIXED_ADAPTIVE_PARTITION):
 * - fixed (user-invariant, shared, meta-learned offline): the feature table, the FM/MLP weights
 *   and the global bias of the backbone;
 * - adaptive (one copy per user, learned online): the user's ID row, i.e. its D-value embedding
 *   (which enters the FM pairwise term and the MLP) and its first-order weight (a per-user bias).
 * The adaptive part has a meta-learned initialisation `fa.init` and per-parameter learning rates
 * `fa.lr` (Meta-SGD): a new user starts at `fa.init` and each SGD step moves parameter k by
 * −fa.lr[k] · gradient[k] of the user's mean loss on its new rows.
 *
 * Batched entry points: `predict` for many rows with per-user adaptive params, and `adaptStep`
 * for many users at once (the backbone's `entityGradients`: gather per-row params into one
 * tensor, one forward/backward, scatter-add the row gradients back per user).
 */
import { ThawError } from '../lib/errors.js';
import type { EntityParams, FieldLayout, RowBatch } from './ctr-model.js';
import { DeepFm } from './deepfm.js';
import type { EmbeddingTable } from './embedding-table.js';
import { ParamSet } from './params.js';

/** The declared partition (the release manifest records it). */
export const FIXED_ADAPTIVE_PARTITION = {
  fixed: ['table', 'fm.*'],
  adaptive: ['user.emb', 'user.w'],
  meta: ['fa.init', 'fa.lr'],
} as const;

export interface FixedAdaptiveOptions {
  layout: FieldLayout;
  /** Feature-table rows. */
  vocab: number;
  /** Embedding size D. @default 16 */
  dim?: number;
  /** Hidden sizes of the backbone MLP. @default [64, 32] */
  hidden?: readonly number[];
  /** Initial per-parameter learning rate of the adaptive part. @default 0.3 */
  initLr?: number;
  /** Seed of the initialisers. @default 7788 */
  seed?: number;
  /** Adam learning rate of the feature table. @default 0.001 */
  tableLr?: number;
  /**
   * Draw the feature table at random (uniform in ±0.01). false leaves it at zero, for a model whose
   * weights are loaded right after (models/onnx/bundle.ts): a release switch would otherwise spend
   * most of its build drawing a million numbers only to overwrite them. @default true
   */
  randomTable?: boolean;
  /** An already trained backbone to wrap (its layout must be the user layout). */
  backbone?: DeepFm;
}

export class FixedAdaptive {
  readonly kind = 'fixed-adaptive' as const;
  readonly backbone: DeepFm;
  /** The meta params `fa.init` and `fa.lr` ([D+1] each). */
  readonly meta = new ParamSet();
  /** Adaptive values per user: D embedding values + 1 first-order weight. */
  readonly adaptiveSize: number;

  constructor(opts: FixedAdaptiveOptions) {
    this.backbone =
      opts.backbone ??
      new DeepFm({
        layout: opts.layout,
        vocab: opts.vocab,
        dim: opts.dim ?? 16,
        hidden: opts.hidden ?? [64, 32],
        seed: opts.seed ?? 7788,
        tableLr: opts.tableLr ?? 0.001,
        randomTable: opts.randomTable ?? true,
      });
    this.adaptiveSize = this.backbone.width;
    this.meta.add('fa.init', [this.adaptiveSize], new Float32Array(this.adaptiveSize));
    this.meta.add('fa.lr', [this.adaptiveSize], new Float32Array(this.adaptiveSize).fill(opts.initLr ?? 0.3));
  }

  get table(): EmbeddingTable {
    return this.backbone.table;
  }

  get slots(): number {
    return this.backbone.slots;
  }

  private ent(users: Float32Array, count: number): EntityParams {
    if (users.length !== count * this.adaptiveSize) throw new ThawError('MODEL_ERROR', `adaptive params: ${users.length} values for ${count} users × ${this.adaptiveSize}`);
    return { count, idEmb: users, graph: new Float32Array(0) };
  }

  /** Adaptive params of `count` new users, each at the meta-learned initialisation (count × P). */
  initUsers(count: number): Float32Array {
    const init = this.meta.get('fa.init').data;
    const out = new Float32Array(count * this.adaptiveSize);
    for (let i = 0; i < count; i++) out.set(init, i * this.adaptiveSize);
    return out;
  }

  /** Click probabilities; row i uses the adaptive params of user b.entity[i] in `users` (count × P). */
  predict(b: RowBatch, users: Float32Array): Float32Array {
    return this.backbone.predict(b, this.ent(users, users.length / this.adaptiveSize));
  }

  /** Gradients of each user's mean loss over its rows w.r.t. its adaptive params (count × P), one forward/backward. */
  userGradients(b: RowBatch, users: Float32Array, count: number): { loss: number; grads: Float32Array } {
    const r = this.backbone.entityGradients(b, this.ent(users, count), false);
    return { loss: r.loss, grads: r.gId };
  }

  /**
   * `steps` Meta-SGD steps on the adaptive params of every user in the batch, in place: user u
   * moves by −fa.lr ⊙ ∇(u's mean loss over its rows), exactly as if stepped alone.
   */
  adaptStep(b: RowBatch, users: Float32Array, count: number, steps = 1): number {
    const lr = this.meta.get('fa.lr').data;
    const ps = this.adaptiveSize;
    let loss = NaN;
    for (let s = 0; s < steps; s++) {
      const r = this.userGradients(b, users, count);
      loss = r.loss;
      for (let i = 0; i < r.grads.length; i++) users[i] = (users[i] ?? 0) - (lr[i % ps] ?? 0) * (r.grads[i] ?? 0);
    }
    return loss;
  }

  /** The declared partition with sizes, as JSON for the release manifest. */
  partitionJson(): { fixed: string[]; adaptive: { name: string; size: number }[]; meta: string[] } {
    return {
      fixed: ['table', ...this.backbone.dense.names()],
      adaptive: [
        { name: 'user.emb', size: this.backbone.dim },
        { name: 'user.w', size: 1 },
      ],
      meta: [...FIXED_ADAPTIVE_PARTITION.meta],
    };
  }
}
