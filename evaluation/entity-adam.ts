/**
 * Adam on the item params of many entities at once, as the official EmerG warm-up runs it (a fresh
 * torch Adam over the item's ID embedding and graph, kept across warm-a, warm-b and warm-c). Adam
 * is elementwise and each entity's gradient is that of its own mean loss (CtrModel.entityGradients),
 * so one batched state is exactly one optimiser per entity. Entities absent from a batch get a zero
 * gradient; like torch, their moments still decay and they move by the remaining momentum.
 */
import { ConfigError } from '../lib/errors.js';
import type { CtrModel, EntityParams, RowBatch } from '../models/ctr-model.js';

export interface EntityAdamOptions {
  /** Learning rate. */
  lr: number;
  /** Also adapt the item graph (EmerG). @default true when the model has one */
  graph?: boolean;
  /** Learning rate of the graph as a multiple of `lr`. @default 1 */
  graphLrScale?: number;
  /** β1. @default 0.9 */
  beta1?: number;
  /** β2. @default 0.999 */
  beta2?: number;
  /** ε. @default 1e-8 */
  eps?: number;
}

export class EntityAdam {
  private readonly mId: Float32Array;
  private readonly vId: Float32Array;
  private readonly mGraph: Float32Array;
  private readonly vGraph: Float32Array;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private t = 0;

  constructor(
    private readonly model: CtrModel,
    private readonly ent: EntityParams,
    private readonly opts: EntityAdamOptions,
  ) {
    if (!(opts.lr > 0 && Number.isFinite(opts.lr))) throw new ConfigError('lr', `must be a positive number, got ${opts.lr}`);
    const scale = opts.graphLrScale ?? 1;
    if (!(scale >= 0 && Number.isFinite(scale))) throw new ConfigError('graphLrScale', `must be a non-negative number, got ${scale}`);
    this.beta1 = opts.beta1 ?? 0.9;
    this.beta2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.mId = new Float32Array(ent.idEmb.length);
    this.vId = new Float32Array(ent.idEmb.length);
    this.mGraph = new Float32Array(ent.graph.length);
    this.vGraph = new Float32Array(ent.graph.length);
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.t;
  }

  /** One Adam step of every entity on its own mean loss over its rows in `b`; returns the mean loss. */
  step(b: RowBatch): number {
    const withGraph = (this.opts.graph ?? this.model.graphSize > 0) && this.model.graphSize > 0;
    const { loss, gId, gGraph } = this.model.entityGradients(b, this.ent, withGraph);
    this.t++;
    this.update(this.ent.idEmb, gId, this.mId, this.vId, this.opts.lr);
    if (withGraph) this.update(this.ent.graph, gGraph, this.mGraph, this.vGraph, this.opts.lr * (this.opts.graphLrScale ?? 1));
    return loss;
  }

  private update(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number): void {
    const { beta1: b1, beta2: b2, eps } = this;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    for (let i = 0; i < g.length; i++) {
      const gi = g[i] ?? 0;
      const mi = b1 * (m[i] ?? 0) + (1 - b1) * gi;
      const vi = b2 * (v[i] ?? 0) + (1 - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = (p[i] ?? 0) - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
    }
  }
}
