/**
 * Choosing the bias filter's prior (models/bias-filter.ts) on the history, by prequential likelihood.
 *
 * How far entities' biases spread (variance) and how fast they drift are properties of the data:
 * on a stream whose labels are balanced per user, a user's bias carries nothing and its variance
 * should be near 0, so the filter does not move it (the failure of a fixed learning rate there);
 * where users differ a lot, a wide prior lets the first events count. So each side's variance and
 * drift are chosen the way the stream will use them: replay the history through the online learner
 * (trainers/online/fm-learner.ts, a fresh shared FM learning online and replicas of every user and
 * item learning by the workers' rule), predict-then-learn, and keep the values with the lowest mean
 * log loss after a warm-up share of the history. A coordinate search over small grids, from a
 * middle point: each round tries every value of one setting with the others fixed.
 */
import { ConfigError } from '../lib/errors.js';
import { FactorizationMachine } from '../models/fm.js';
import type { LabelledEvent, Side } from '../schemas/types.js';
import { FmOnlineLearner } from './online/fm-learner.js';

/** Options of `fitBiasFilter`. */
export interface BiasFitOptions {
  /** Variances tried (logit²). @default [0, 0.05, 0.1, 0.25, 0.5, 1, 2] */
  variances?: readonly number[];
  /** Drifts tried (logit² per event). @default [0, 0.001, 0.003, 0.01, 0.03, 0.1] */
  drifts?: readonly number[];
  /** Coordinate-search rounds. @default 2 */
  rounds?: number;
  /** Share of the history replayed before the loss counts (the shared FM starts untrained). @default 0.25 */
  warmFraction?: number;
  /** At most this many events (the most recent of the history) are replayed per trial. @default 200_000 */
  maxEvents?: number;
}

/** What `fitBiasFilter` chose, per side, and at what loss. */
export interface BiasFit {
  user: { variance: number; drift: number };
  item: { variance: number; drift: number };
  /** Mean log loss of the chosen settings on the scored part of the history (nats). */
  logLoss: number;
  /** Settings tried. */
  trials: number;
}

export const BIAS_FIT_DEFAULTS = {
  variances: [0, 0.05, 0.1, 0.25, 0.5, 1, 2],
  drifts: [0, 0.001, 0.003, 0.01, 0.03, 0.1],
  rounds: 2,
  warmFraction: 0.25,
  maxEvents: 200_000,
  start: { variance: 0.5, drift: 0.01 },
} as const;

/**
 * The FM the meta trainers' fit replays with (trainers/event-trainer.ts): the shared FM trainer's
 * defaults (trainers/fm-trainer.ts), so a meta release's prior is the one an FM release trained on
 * the same history with the same seed records.
 */
export const FM_BIAS_FIT_MODEL = { buckets: 2 ** 18, k: 8, learningRate: 0.05 } as const;

/** The FM the replay learns with: the trainer's table size, dimension, rate and seed. */
export interface BiasFitModel {
  buckets: number;
  k: number;
  learningRate: number;
  seed: number;
}

type Setting = { side: Side; key: 'variance' | 'drift' };

/**
 * The variance and drift per side with the lowest prequential log loss on `history` (see the file
 * comment). A history too short to score anything returns the starting point, with NaN loss.
 */
export function fitBiasFilter(history: readonly LabelledEvent[], opts: BiasFitModel & BiasFitOptions): BiasFit {
  const d = BIAS_FIT_DEFAULTS;
  const variances = opts.variances ?? d.variances;
  const drifts = opts.drifts ?? d.drifts;
  const rounds = opts.rounds ?? d.rounds;
  const warm = opts.warmFraction ?? d.warmFraction;
  if (!(warm >= 0 && warm < 1)) throw new ConfigError('biasFit.warmFraction', `must be in [0, 1), got ${warm}`);
  for (const [key, xs] of [['variances', variances], ['drifts', drifts]] as const) {
    if (xs.length === 0 || xs.some((x) => !(x >= 0 && Number.isFinite(x)))) throw new ConfigError(`biasFit.${key}`, 'must be a non-empty list of numbers >= 0');
  }
  const events = history.slice(Math.max(0, history.length - (opts.maxEvents ?? d.maxEvents)));
  const warmEnd = Math.floor(events.length * warm);
  const start = { variance: d.start.variance as number, drift: d.start.drift as number };
  const current: Record<Side, { variance: number; drift: number }> = { user: { ...start }, item: { ...start } };
  const cache = new Map<string, number>();
  // Every trial starts from the same seeded FM: its random init is drawn once (it dominates a
  // trial on a short history), then copied.
  let init: FactorizationMachine | undefined;
  const lossOf = (c: Record<Side, { variance: number; drift: number }>): number => {
    const key = JSON.stringify(c);
    let loss = cache.get(key);
    if (loss === undefined) {
      init ??= FactorizationMachine.create({ buckets: opts.buckets, k: opts.k, seed: opts.seed });
      loss = replay(events, warmEnd, c, opts, init);
      cache.set(key, loss);
    }
    return loss;
  };
  if (events.length - warmEnd < 1) return { ...current, logLoss: NaN, trials: 0 };
  let best = lossOf(current);
  const settings: Setting[] = [
    { side: 'user', key: 'variance' },
    { side: 'item', key: 'variance' },
    { side: 'user', key: 'drift' },
    { side: 'item', key: 'drift' },
  ];
  for (let round = 0; round < rounds; round++) {
    let moved = false;
    for (const { side, key } of settings) {
      for (const x of key === 'variance' ? variances : drifts) {
        const trial: Record<Side, { variance: number; drift: number }> = { user: { ...current.user }, item: { ...current.item } };
        trial[side][key] = x;
        const loss = lossOf(trial);
        if (loss < best - 1e-9) {
          best = loss;
          current[side][key] = x;
          moved = true;
        }
      }
    }
    if (!moved) break;
  }
  return { ...current, logLoss: best, trials: cache.size };
}

/** Mean prequential log loss of events [warmEnd, n) of one replay with the given priors, from a copy of `init`. */
function replay(events: readonly LabelledEvent[], warmEnd: number, c: Record<Side, { variance: number; drift: number }>, m: BiasFitModel, init: FactorizationMachine): number {
  const fm = new FactorizationMachine(init.buckets, init.k, init.release);
  fm.v.set(init.v);
  for (const side of ['user', 'item'] as const) {
    fm.priors[side].biasVariance = c[side].variance;
    fm.priors[side].biasDrift = c[side].drift;
  }
  // A fresh model learns as the offline trainer starts (small accumulators, no dropout).
  const learner = new FmOnlineLearner(fm, { learningRate: m.learningRate, initialAccumulator: 1e-2, entityDropout: 0, metaLr: 0, seed: m.seed });
  learner.observe(events.slice(0, warmEnd));
  learner.lossSince();
  learner.observe(events.slice(warmEnd));
  return learner.lossSince().mean;
}
