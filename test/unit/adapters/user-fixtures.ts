/**
 * Shared pieces of the user-side adapter tests: synthetic events, their user layout, small
 * randomly initialised ColdNAS and fixed/adaptive models, and the reference runs (one event at a
 * time, and waves as the BatchProcessor builds them).
 */
import type { Adapter } from '../../../adapters/types.js';
import { ColdNas } from '../../../models/coldnas.js';
import { fieldLayoutOf, inferEventLayout, type EventLayout } from '../../../models/event-layout.js';
import { FixedAdaptive } from '../../../models/fixed-adaptive.js';
import { Rng } from '../../../models/rng.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { syntheticStream } from '../../../sources/synthetic.js';

export function userEvents(n: number, seed: number, users = 40): LabelledEvent[] {
  return [...syntheticStream({ seed, events: n, users, items: 60 }).events()];
}

export function userLayout(events: readonly LabelledEvent[]): EventLayout {
  return inferEventLayout('user', events, { vocab: 4096 });
}

/**
 * A ColdNAS with weights much larger than its initialisers' (which start every op near its
 * identity), so the user state visibly changes the scores.
 */
export function coldNas(layout: EventLayout, seed = 5): ColdNas {
  const m = new ColdNas({ layout: fieldLayoutOf(layout), vocab: layout.vocab, structure: { ops: ['add', 'multiply', 'add', 'multiply'] }, seed });
  const rng = new Rng(seed);
  for (const n of m.dense.names()) rng.fillUniform(m.dense.get(n).data, 0.3);
  rng.fillUniform(m.table.data, 0.3);
  return m;
}

/** A fixed/adaptive model with a non-zero init and distinct positive per-parameter rates. */
export function fixedAdaptive(layout: EventLayout, seed = 6): FixedAdaptive {
  const m = new FixedAdaptive({ layout: fieldLayoutOf(layout), vocab: layout.vocab, seed });
  const rng = new Rng(seed);
  rng.fillUniform(m.table.data, 0.2);
  rng.fillUniform(m.meta.get('fa.init').data, 0.2);
  const lr = m.meta.get('fa.lr').data;
  for (let i = 0; i < lr.length; i++) lr[i] = 0.05 + rng.next();
  return m;
}

export interface RunResult {
  scores: Float32Array;
  states: Map<string, Float32Array>;
}

/** Each event alone, in order: the sequential reference; `baselines` holds the adapter's baseline of each event (its score if it has none). */
export function sequentialRun(adapter: Adapter, events: readonly LabelledEvent[]): RunResult & { baselines: Float32Array } {
  const states = new Map<string, Float32Array>();
  const scores = new Float32Array(events.length);
  const baselines = new Float32Array(events.length);
  events.forEach((e, i) => {
    let st = states.get(e.userId);
    if (st === undefined) states.set(e.userId, (st = adapter.initialState(e)));
    const baseline = new Float32Array(1);
    const score = adapter.predictThenAdapt({ events: [e], states: [st], ...(adapter.hasBaseline ? { baseline } : {}) })[0] ?? NaN;
    scores[i] = score;
    baselines[i] = adapter.hasBaseline ? (baseline[0] ?? NaN) : score;
  });
  return { scores, states, baselines };
}

/** Micro-batches of `batch` events, each split into waves (k-th event of each user → wave k). */
export function wavedRun(adapter: Adapter, events: readonly LabelledEvent[], batch: number): RunResult {
  const states = new Map<string, Float32Array>();
  const scores = new Float32Array(events.length);
  for (let at = 0; at < events.length; at += batch) {
    const waves: number[][] = [];
    const seen = new Map<string, number>();
    for (let i = at; i < Math.min(events.length, at + batch); i++) {
      const u = events[i]!.userId;
      const k = seen.get(u) ?? 0;
      seen.set(u, k + 1);
      (waves[k] ??= []).push(i);
    }
    for (const wave of waves) {
      const evs = wave.map((i) => events[i]!);
      const sts = evs.map((e) => {
        let st = states.get(e.userId);
        if (st === undefined) states.set(e.userId, (st = adapter.initialState(e)));
        return st;
      });
      const out = adapter.predictThenAdapt({ events: evs, states: sts });
      wave.forEach((i, j) => (scores[i] = out[j]!));
    }
  }
  return { scores, states };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Largest difference between two runs' final states (Infinity if the users differ). */
export function maxStateDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  if (a.size !== b.size) return Infinity;
  let m = 0;
  for (const [u, s] of a) m = Math.max(m, maxAbsDiff(s, b.get(u) ?? new Float32Array(0)));
  return m;
}
