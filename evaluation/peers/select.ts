/**
 * Choosing a peer's settings on the history: each setting's prequential scores over [0, historyN)
 * are scored by AUC (log loss breaks ties), and the best is kept. Nothing here sees an event at or
 * after historyN: callers pass the history's scores and labels only.
 */
import { ConfigError } from '../../lib/errors.js';
import { auc } from '../../lib/metrics.js';
import type { PeerSettings, PeerTrial } from './types.js';

const EPS = 1e-7;

/** Mean log loss in nats, probabilities clipped to [1e-7, 1 - 1e-7]; NaN for no events. */
export function meanLogLoss(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  let loss = 0;
  for (let j = 0; j < scores.length; j++) {
    const p = Math.min(1 - EPS, Math.max(EPS, scores[j] ?? NaN));
    loss -= labels[j] === 1 ? Math.log(p) : Math.log(1 - p);
  }
  return scores.length > 0 ? loss / scores.length : NaN;
}

/** The criterion of one setting from its prequential scores on the history (same length as `labels`). */
export function scoreTrial<S extends PeerSettings>(settings: S, scores: ArrayLike<number>, labels: ArrayLike<number>): PeerTrial & { settings: S } {
  if (scores.length !== labels.length) throw new RangeError(`${scores.length} scores for ${labels.length} labels`);
  return { settings, auc: auc(scores, labels), logLoss: meanLogLoss(scores, labels) };
}

/**
 * The best trial: highest AUC (NaN counts as lowest), then lowest log loss, then the earliest.
 * Throws on an empty list.
 */
export function chooseTrial<T extends PeerTrial>(trials: readonly T[]): T {
  const [first, ...rest] = trials;
  if (first === undefined) throw new RangeError('no trials to choose from');
  // NaN (one class only, no events) ranks below every number on both criteria.
  const aucOf = (t: T): number => (Number.isNaN(t.auc) ? -Infinity : t.auc);
  const lossOf = (t: T): number => (Number.isNaN(t.logLoss) ? Infinity : t.logLoss);
  let best = first;
  for (const t of rest) {
    if (aucOf(t) > aucOf(best) || (aucOf(t) === aucOf(best) && lossOf(t) < lossOf(best))) best = t;
  }
  return best;
}

/** Checks the history length: at least one event, at most the stream. */
export function checkHistory(historyN: number, events: number): void {
  if (!Number.isInteger(historyN) || historyN < 1 || historyN > events) throw new ConfigError('historyN', `must be an integer in [1, ${events}] (events in the stream), got ${historyN}`);
}

/** A non-empty list of finite numbers > 0, or a ConfigError naming `key`. */
export function positiveGrid(key: string, values: readonly number[]): readonly number[] {
  if (values.length === 0 || values.some((v) => !Number.isFinite(v) || v <= 0)) throw new ConfigError(key, `must be a non-empty list of finite numbers > 0, got [${values.join(', ')}]`);
  return values;
}
