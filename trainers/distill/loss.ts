/**
 * The distillation loss of EDL-Dist's student, per event, in closed form on the student's logit:
 *
 *   L(s) = α·BCE(y, σ(s)) + (1 − α)·T²·KL( Bernoulli(σ(t/T)) ‖ Bernoulli(σ(s/T)) )
 *
 * with s the student's logit, t the teacher's, y ∈ {0, 1} the hard label, α ∈ [0, 1] the weight of
 * the hard label and T > 0 the temperature (Hinton et al.: T² keeps the soft term's gradient scale
 * independent of T). Its derivative is
 *
 *   dL/ds = α·(σ(s) − y) + (1 − α)·T·(σ(s/T) − σ(t/T)),
 *
 * which is what the student's optimiser steps on (trainers/online/fm-learner.ts `gradientOf`). An
 * event with no soft label trains on the hard label alone (α = 1).
 */
import { ConfigError } from '../../lib/errors.js';

/** Weight and temperature of the distillation loss. */
export interface DistillLossOptions {
  /** Weight of the hard label's BCE, 0..1 (1: no distillation). */
  alpha: number;
  /** Temperature T > 0 of the soft term. */
  temperature: number;
}

/** Throws ConfigError naming the option when `o` is out of range. */
export function checkDistillLoss(o: DistillLossOptions, prefix = 'distill'): DistillLossOptions {
  if (typeof o.alpha !== 'number' || !(o.alpha >= 0 && o.alpha <= 1)) throw new ConfigError(`${prefix}.alpha`, `must be in [0, 1], got ${String(o.alpha)}`);
  if (typeof o.temperature !== 'number' || !Number.isFinite(o.temperature) || o.temperature <= 0)
    throw new ConfigError(`${prefix}.temperature`, `must be a finite number > 0, got ${String(o.temperature)}`);
  return o;
}

function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/** log(1 + e^z) without overflow. */
function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

/** BCE of logit z against target probability q (q = y for a hard label): softplus(z) − q·z. */
function bceLogit(z: number, q: number): number {
  return softplus(z) - q * z;
}

/**
 * The loss of one event. `teacherLogit` undefined: the hard label alone. KL(p‖r) of Bernoullis is
 * BCE(r; p) − H(p), both computed on logits so that extreme logits stay finite.
 */
export function distillLoss(studentLogit: number, label: number, teacherLogit: number | undefined, o: DistillLossOptions): number {
  const hard = bceLogit(studentLogit, label);
  if (teacherLogit === undefined) return hard;
  const T = o.temperature;
  const p = sigmoid(teacherLogit / T);
  const kl = bceLogit(studentLogit / T, p) - bceLogit(teacherLogit / T, p);
  return o.alpha * hard + (1 - o.alpha) * T * T * kl;
}

/** dL/ds of `distillLoss` (see the file comment). */
export function distillGradient(studentLogit: number, label: number, teacherLogit: number | undefined, o: DistillLossOptions): number {
  const hard = sigmoid(studentLogit) - label;
  if (teacherLogit === undefined) return hard;
  const T = o.temperature;
  return o.alpha * hard + (1 - o.alpha) * T * (sigmoid(studentLogit / T) - sigmoid(teacherLogit / T));
}
