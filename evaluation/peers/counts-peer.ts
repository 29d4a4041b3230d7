/**
 * The `counts` peer: an online logistic regression on running positive rates. For event j, with the
 * counts of the events before j only:
 *   m   = (P + 1) / (N + 2)                 the global running rate (Laplace-smoothed, so m ∈ (0, 1))
 *   r_u = (pos_u + a·m) / (n_u + a)          the user's rate, shrunk to m with prior strength a
 *   r_i = (pos_i + a·m) / (n_i + a)          the same for the item
 *   p_j = sigmoid(w0 + wu·logit(r_u) + wi·logit(r_i))
 * then the weights take one Adagrad step on the log loss of event j, then the counts add event j.
 * A new entity's rate is m, so the weights start at (0, 1/2, 1/2): the first prediction of a new user
 * and item pair is the global rate. The prior strength and the learning rate are chosen on the
 * history by progressive AUC (select.ts). Pure TypeScript, deterministic, no randomness.
 */
import { sigmoid } from '../../models/fm.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { checkHistory, chooseTrial, positiveGrid, scoreTrial } from './select.js';
import type { PeerRun } from './types.js';

/** Options of `runCountsPeer`. */
export interface CountsPeerOptions {
  /** Prior strengths `a` tried, in pseudo-events of the global rate. @default [1, 2, 5, 10, 20, 50] */
  priorStrengths?: readonly number[];
  /** Adagrad learning rates tried. @default [0.01, 0.03, 0.1, 0.3, 1] */
  learningRates?: readonly number[];
}

/** The grids tried by default (every pair: 30 trials). */
export const COUNTS_DEFAULT_GRID = { priorStrengths: [1, 2, 5, 10, 20, 50], learningRates: [0.01, 0.03, 0.1, 0.3, 1] } as const;

/** One setting of the counts peer (a type, not an interface, so it is a PeerSettings record). */
export type CountsSetting = {
  /** Prior strength a (pseudo-events at the global rate), > 0. */
  priorStrength: number;
  /** Adagrad learning rate, > 0. */
  learningRate: number;
};

/** The counts peer's run: a PeerRun whose choice is a CountsSetting. */
export interface CountsPeerRun extends PeerRun {
  name: 'counts';
  chosen: CountsSetting;
}

/** The stream as the peer reads it: one interned user and item index and the label per event. */
export interface CountsStream {
  /** User index in [0, users). */
  user: Int32Array;
  /** Item index in [users, users + items): users and items share one count table. */
  item: Int32Array;
  label: Uint8Array;
  /** Users plus items. */
  entities: number;
}

/** Interns the stream's user and item ids (in order of first appearance). */
export function indexCountsStream(events: readonly LabelledEvent[]): CountsStream {
  const users = new Map<string, number>();
  const items = new Map<string, number>();
  const user = new Int32Array(events.length);
  const itemLocal = new Int32Array(events.length);
  const label = new Uint8Array(events.length);
  events.forEach((ev, j) => {
    let u = users.get(ev.userId);
    if (u === undefined) users.set(ev.userId, (u = users.size));
    let i = items.get(ev.itemId);
    if (i === undefined) items.set(ev.itemId, (i = items.size));
    user[j] = u;
    itemLocal[j] = i;
    label[j] = ev.label;
  });
  const item = itemLocal.map((i) => i + users.size);
  return { user, item, label, entities: users.size + items.size };
}

/** Positives and events per entity, with the read checked against the table size. */
class RunningCounts {
  private readonly pos: Float64Array;
  private readonly seen: Float64Array;

  constructor(size: number) {
    this.pos = new Float64Array(size);
    this.seen = new Float64Array(size);
  }

  /** (pos + a·m) / (n + a) of entity k. */
  rate(k: number, a: number, m: number): number {
    const pos = this.pos[k];
    const seen = this.seen[k];
    if (pos === undefined || seen === undefined) throw new RangeError(`entity index ${k} outside the count table (${this.pos.length})`);
    return (pos + a * m) / (seen + a);
  }

  add(k: number, y: number): void {
    const pos = this.pos[k];
    const seen = this.seen[k];
    if (pos === undefined || seen === undefined) throw new RangeError(`entity index ${k} outside the count table (${this.pos.length})`);
    this.pos[k] = pos + y;
    this.seen[k] = seen + 1;
  }
}

const logit = (r: number): number => Math.log(r / (1 - r));
/** Adagrad's denominator floor (the first step of a coordinate is then ±learningRate). */
const ADAGRAD_EPS = 1e-8;

/** One weight learned by Adagrad: its step is lr·g / √(Σ g²). */
class AdagradWeight {
  private sumSq = 0;
  constructor(public value: number) {}

  step(gradient: number, lr: number): void {
    this.sumSq += gradient * gradient;
    this.value -= (lr * gradient) / (Math.sqrt(this.sumSq) + ADAGRAD_EPS);
  }
}

/** One prequential pass over events [0, end) with one setting: score j is computed before event j is learned. */
export function countsPass(stream: CountsStream, end: number, setting: CountsSetting): Float64Array {
  if (!Number.isInteger(end) || end < 0 || end > stream.label.length) throw new RangeError(`end ${end} outside [0, ${stream.label.length}]`);
  const a = setting.priorStrength;
  const lr = setting.learningRate;
  const counts = new RunningCounts(stream.entities);
  const out = new Float64Array(end);
  // A new entity's logit is logit(m): weights ½, ½ make a new pair's first score the global rate.
  const bias = new AdagradWeight(0);
  const userWeight = new AdagradWeight(0.5);
  const itemWeight = new AdagradWeight(0.5);
  let positives = 0;
  for (let j = 0; j < end; j++) {
    const u = stream.user[j];
    const i = stream.item[j];
    const y = stream.label[j];
    if (u === undefined || i === undefined || y === undefined) throw new RangeError(`stream position ${j} missing`);
    const m = (positives + 1) / (j + 2);
    const xu = logit(counts.rate(u, a, m));
    const xi = logit(counts.rate(i, a, m));
    const p = sigmoid(bias.value + userWeight.value * xu + itemWeight.value * xi);
    out[j] = p;
    // Learn event j: one Adagrad step on its log loss (gradient (p - y)·x), then count it.
    const d = p - y;
    bias.step(d, lr);
    userWeight.step(d * xu, lr);
    itemWeight.step(d * xi, lr);
    counts.add(u, y);
    counts.add(i, y);
    positives += y;
  }
  return out;
}

/**
 * Chooses the prior strength and learning rate on events [0, historyN) (every pair of the grids,
 * progressive AUC), then one prequential pass over the whole stream with the choice.
 */
export function runCountsPeer(events: readonly LabelledEvent[], historyN: number, opts: CountsPeerOptions = {}): CountsPeerRun {
  const t0 = performance.now();
  checkHistory(historyN, events.length);
  const strengths = positiveGrid('counts.priorStrengths', opts.priorStrengths ?? COUNTS_DEFAULT_GRID.priorStrengths);
  const rates = positiveGrid('counts.learningRates', opts.learningRates ?? COUNTS_DEFAULT_GRID.learningRates);
  const stream = indexCountsStream(events);
  const historyLabels = stream.label.subarray(0, historyN);
  const trials = strengths.flatMap((priorStrength) =>
    rates.map((learningRate) => {
      const setting: CountsSetting = { priorStrength, learningRate };
      return scoreTrial(setting, countsPass(stream, historyN, setting), historyLabels);
    }),
  );
  const chosen = chooseTrial(trials).settings;
  const scores = countsPass(stream, events.length, chosen);
  return { name: 'counts', scores, chosen, trials, ms: performance.now() - t0 };
}
