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
 * middle point with the session bias off: each round tries every value of one setting with the
 * others fixed. The session bias (a fading part of the bias, models/bias-filter.ts) is chosen the
 * same way: on a stream where an entity's recent events say nothing beyond its long run, its
 * variance stays 0 (off).
 *
 * The same replay first decides whether the shared FM gets its cross term (models/fm.ts: a weight
 * per hashed user-feature × item-feature pair). Where features interact beyond what k latent
 * dimensions hold, the crosses lower the loss; where a feature nearly names its entity (a zip code
 * shared by a handful of users), its crosses are a second, noisier per-entity model and raise it.
 * Which it is depends on the data, so the history says: each candidate table size is replayed at
 * the starting priors, and the lowest loss wins (ties: the smaller table).
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
  /** Session-bias decays tried (share kept per event). @default [0.8, 0.9, 0.95] */
  sessionDecays?: readonly number[];
  /** Session-bias variances tried (logit² per event; 0 = off). @default [0, 0.01, 0.03, 0.1] */
  sessionVariances?: readonly number[];
  /** Coordinate-search rounds (0: keep the starting priors, only the cross term is chosen). @default 2 */
  rounds?: number;
  /** Each side's starting priors. @default variance 0.5, drift 0.01, session off */
  start?: Record<Side, BiasPrior>;
  /** Share of the history replayed before the loss counts (the shared FM starts untrained). @default 0.25 */
  warmFraction?: number;
  /** At most this many events (the most recent of the history) are replayed per trial. @default 200_000 */
  maxEvents?: number;
  /** Cross-table sizes tried (rows; 0 = no cross term), before the priors. @default [0] */
  crossBuckets?: readonly number[];
}

/** The bias filter's prior of one side. */
export interface BiasPrior {
  variance: number;
  drift: number;
  sessionDecay: number;
  sessionVariance: number;
}

/** What `fitBiasFilter` chose, per side, and at what loss. */
export interface BiasFit {
  user: BiasPrior;
  item: BiasPrior;
  /** Mean log loss of the chosen settings on the scored part of the history (nats). */
  logLoss: number;
  /** The cross-table size chosen (0: none), and the loss of each size tried (at the starting priors). */
  crossBuckets: number;
  crossLoss: Record<string, number>;
  /** Settings tried. */
  trials: number;
}

export const BIAS_FIT_DEFAULTS = {
  variances: [0, 0.05, 0.1, 0.25, 0.5, 1, 2],
  drifts: [0, 0.001, 0.003, 0.01, 0.03, 0.1],
  sessionDecays: [0.8, 0.9, 0.95],
  sessionVariances: [0, 0.01, 0.03, 0.1],
  rounds: 2,
  warmFraction: 0.25,
  maxEvents: 200_000,
  start: { variance: 0.5, drift: 0.01, sessionDecay: 0.9, sessionVariance: 0 },
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

type Setting = { side: Side; key: keyof BiasPrior };

/**
 * The variance and drift per side with the lowest prequential log loss on `history` (see the file
 * comment). A history too short to score anything returns the starting point, with NaN loss.
 */
export function fitBiasFilter(history: readonly LabelledEvent[], opts: BiasFitModel & BiasFitOptions): BiasFit {
  const d = BIAS_FIT_DEFAULTS;
  const variances = opts.variances ?? d.variances;
  const drifts = opts.drifts ?? d.drifts;
  const grids: Record<keyof BiasPrior, readonly number[]> = {
    variance: variances,
    drift: drifts,
    sessionDecay: opts.sessionDecays ?? d.sessionDecays,
    sessionVariance: opts.sessionVariances ?? d.sessionVariances,
  };
  const rounds = opts.rounds ?? d.rounds;
  const warm = opts.warmFraction ?? d.warmFraction;
  if (!(warm >= 0 && warm < 1)) throw new ConfigError('biasFit.warmFraction', `must be in [0, 1), got ${warm}`);
  for (const [key, xs] of Object.entries(grids)) {
    if (xs.length === 0 || xs.some((x) => !(x >= 0 && Number.isFinite(x)))) throw new ConfigError(`biasFit.${key}`, 'must be a non-empty list of numbers >= 0');
  }
  if (grids.sessionDecay.some((x) => x >= 1)) throw new ConfigError('biasFit.sessionDecays', 'must be numbers in [0, 1)');
  const events = history.slice(Math.max(0, history.length - (opts.maxEvents ?? d.maxEvents)));
  const warmEnd = Math.floor(events.length * warm);
  const current: Record<Side, BiasPrior> = { user: { ...(opts.start?.user ?? d.start) }, item: { ...(opts.start?.item ?? d.start) } };
  const crossSizes = opts.crossBuckets ?? [0];
  if (crossSizes.length === 0 || crossSizes.some((x) => !(Number.isInteger(x) && x >= 0 && x <= 2 ** 28))) {
    throw new ConfigError('biasFit.crossBuckets', 'must be a non-empty list of integers in [0, 2^28]');
  }
  let cross = Math.min(...crossSizes);
  const cache = new Map<string, number>();
  // Every trial starts from the same seeded FM: its random init is drawn once per table size (it
  // dominates a trial on a short history), then copied.
  const inits = new Map<number, FactorizationMachine>();
  const lossOf = (c: Record<Side, BiasPrior>, crossBuckets = cross): number => {
    const key = JSON.stringify([c, crossBuckets]);
    let loss = cache.get(key);
    if (loss === undefined) {
      let init = inits.get(crossBuckets);
      if (init === undefined) inits.set(crossBuckets, (init = FactorizationMachine.create({ buckets: opts.buckets, k: opts.k, crossBuckets, seed: opts.seed })));
      loss = replay(events, warmEnd, c, opts, init);
      cache.set(key, loss);
    }
    return loss;
  };
  if (events.length - warmEnd < 1) return { ...current, logLoss: NaN, trials: 0, crossBuckets: cross, crossLoss: {} };
  const crossLoss: Record<string, number> = {};
  if (crossSizes.length > 1) {
    for (const size of [...new Set(crossSizes)].sort((a, b) => a - b)) crossLoss[String(size)] = lossOf(current, size);
    cross = Number(Object.entries(crossLoss).reduce((a, b) => (b[1] < a[1] - 1e-9 ? b : a))[0]);
  }
  let best = lossOf(current);
  const settings: Setting[] = (['variance', 'drift', 'sessionVariance', 'sessionDecay'] as const).flatMap((key) => (['user', 'item'] as const).map((side) => ({ side, key })));
  for (let round = 0; round < rounds; round++) {
    let moved = false;
    for (const { side, key } of settings) {
      // The decay of a session bias that is off changes nothing: not worth a trial.
      if (key === 'sessionDecay' && current[side].sessionVariance === 0) continue;
      for (const x of grids[key]) {
        const trial: Record<Side, BiasPrior> = { user: { ...current.user }, item: { ...current.item } };
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
  return { ...current, logLoss: best, trials: cache.size, crossBuckets: cross, crossLoss };
}

/** Mean prequential log loss of events [warmEnd, n) of one replay with the given priors, from a copy of `init`. */
function replay(events: readonly LabelledEvent[], warmEnd: number, c: Record<Side, BiasPrior>, m: BiasFitModel, init: FactorizationMachine): number {
  const fm = new FactorizationMachine(init.buckets, init.k, init.release, init.crossBuckets);
  fm.v.set(init.v);
  for (const side of ['user', 'item'] as const) applyBiasPrior(fm.priors[side], c[side]);
  // A fresh model learns as the offline trainer starts (small accumulators, no dropout).
  const learner = new FmOnlineLearner(fm, { learningRate: m.learningRate, initialAccumulator: 1e-2, entityDropout: 0, metaLr: 0, seed: m.seed });
  learner.observe(events.slice(0, warmEnd));
  learner.lossSince();
  learner.observe(events.slice(warmEnd));
  return learner.lossSince().mean;
}

/** Sets a side's prior of the bias filter (the FM's EntityPrior fields) from a BiasPrior. */
export function applyBiasPrior(prior: { biasVariance: number; biasDrift: number; sessionDecay: number; sessionVariance: number }, b: BiasPrior): void {
  prior.biasVariance = b.variance;
  prior.biasDrift = b.drift;
  prior.sessionDecay = b.sessionDecay;
  prior.sessionVariance = b.sessionVariance;
}
