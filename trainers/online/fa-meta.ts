/**
 * The online meta step of the fixed/adaptive split, on the objective the stream actually scores.
 *
 * The worker's `fixed-adaptive` adapter scores each event of a user with its params as they are,
 * then takes ONE Meta-SGD step on that single event: θ_{j+1} = θ_j − lr ⊙ g_j, g_j = ∇ℓ(x_j; θ_j),
 * θ_0 = fa.init. The offline stage (trainers/fixed-adaptive-trainer.ts) meta-trains a different
 * rule: one step on the MEAN loss of a 20-row support set, then a query loss. Its fa.lr is thus
 * sized for one averaged step, while a streaming user gets one full step per event.
 *
 * The prequential meta loss of a window x_0..x_{K-1} is what the warm-up curve measures there:
 *   L = (1/K) Σ_j ℓ(x_j; θ_j)          (j = 0 is the cold loss at fa.init)
 * First order (each θ_j treated as fa.init − lr ⊙ C_j with C_j = Σ_{i<j} g_i held constant):
 *   ∂L/∂init ≈ (1/K) Σ_j g_j,    ∂L/∂lr ≈ −(1/K) Σ_j C_j ⊙ g_j.
 * `coldWeight` c, when given, reweights the cold term: c·ℓ_0 + (1−c)·mean_{j≥1} ℓ_j (so a larger
 * meta step cannot trade the cold prediction away for faster adaptation).
 * Every term is a by-product of replaying the worker's own steps (K batched forward/backward
 * passes, one per position, all tasks at once), so the step costs no more than the replay.
 */
import { ThawError } from '../../lib/errors.js';
import type { RowBatch } from '../../models/ctr-model.js';
import type { FixedAdaptive } from '../../models/fixed-adaptive.js';
import type { DenseAdam } from '../../models/params.js';
import { at } from '../../lib/at.js';

/** First-order gradients of the prequential meta loss, and the loss itself (mean log loss of the replayed scores). */
export interface PrequentialMetaGrads {
  init: Float32Array;
  lr: Float32Array;
  loss: number;
}

/**
 * `positions[j]` holds the j-th event of every task (row t = task t, entity t); all positions
 * have the same `count` tasks. Runs the worker's per-event Meta-SGD steps from fa.init and returns
 * the first-order gradients of the mean prequential loss over tasks and positions.
 */
export function prequentialMetaGradients(model: FixedAdaptive, positions: readonly RowBatch[], count: number, coldWeight?: number): PrequentialMetaGrads {
  const K = positions.length;
  // Weight of each position's mean loss over tasks (uniform 1/K unless coldWeight is given).
  const pw = (j: number): number => (coldWeight === undefined || K < 2 ? 1 / K : j === 0 ? coldWeight : (1 - coldWeight) / (K - 1));
  const ps = model.adaptiveSize;
  const lrs = model.meta.get('fa.lr').data;
  const users = model.initUsers(count);
  const cum = new Float32Array(count * ps); // C_j per task
  const gInit = new Float64Array(ps);
  const gLr = new Float64Array(ps);
  let loss = 0;
  for (let j = 0; j < K; j++) {
    const b = at(positions, j, 'positions');
    const w = pw(j) / count;
    if (b.n !== count) throw new ThawError('MODEL_ERROR', `prequential meta step: a position has ${b.n} rows for ${count} tasks`);
    const probs = model.predict(b, users);
    for (let i = 0; i < b.n; i++) {
      const p = Math.min(Math.max(probs[i] ?? 0, 1e-7), 1 - 1e-7);
      loss -= w * (b.label[i] === 1 ? Math.log(p) : Math.log(1 - p));
    }
    // One row per task: each task's "mean loss" gradient is its single event's gradient g_j.
    const g = model.userGradients(b, users, count).grads;
    for (let t = 0; t < count; t++) {
      for (let k = 0; k < ps; k++) {
        const i = t * ps + k;
        const gi = g[i] ?? 0;
        gInit[k] = (gInit[k] ?? 0) + w * gi;
        gLr[k] = (gLr[k] ?? 0) - w * (cum[i] ?? 0) * gi;
        cum[i] = (cum[i] ?? 0) + gi;
        users[i] = (users[i] ?? 0) - (lrs[k] ?? 0) * gi;
      }
    }
  }
  return { init: Float32Array.from(gInit), lr: Float32Array.from(gLr), loss };
}

/** Applies one Adam step of the prequential meta gradients to fa.init and fa.lr; returns the loss. */
export function prequentialMetaStep(model: FixedAdaptive, positions: readonly RowBatch[], count: number, metaAdam: DenseAdam, coldWeight?: number): number {
  const g = prequentialMetaGradients(model, positions, count, coldWeight);
  metaAdam.apply(
    model.meta,
    new Map([
      ['fa.init', g.init],
      ['fa.lr', g.lr],
    ]),
  );
  return g.loss;
}
