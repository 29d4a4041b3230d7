/**
 * The adapters the spine bench runs, built over randomly initialised shared models of the library's
 * default sizes (throughput does not depend on how well a model is trained), and the "adaptation
 * alone" measurement: `adapter.predictThenAdapt` on in-memory batches of distinct entities.
 *
 *   none, fm-adagrad          item side, over the bench's shared FM (fixtures.ts benchModel)
 *   emerg                     item side, EmerG (models/emerg.ts) over an event layout inferred from the events
 *   coldnas, fixed-adaptive   user side, ColdNAS (fixed structure add/multiply/add/multiply) and the
 *                             fixed/adaptive DeepFM, over a user-side event layout
 */
import { ColdNasAdapter } from '../../adapters/coldnas.js';
import { EmergAdapter } from '../../adapters/emerg.js';
import { FixedAdaptiveAdapter } from '../../adapters/fixed-adaptive.js';
import { createAdapter } from '../../adapters/registry.js';
import type { Adapter } from '../../adapters/types.js';
import { ConfigError } from '../../lib/errors.js';
import { initBackend } from '../../models/backend.js';
import { ColdNas } from '../../models/coldnas.js';
import { Emerg } from '../../models/emerg.js';
import { fieldLayoutOf, inferEventLayout, type EventLayout } from '../../models/event-layout.js';
import { FixedAdaptive } from '../../models/fixed-adaptive.js';
import type { FactorizationMachine } from '../../models/fm.js';
import { entityIdOf, type LabelledEvent, type Side } from '../../schemas/types.js';

/** Adapters in the order the bench runs them. */
export const BENCH_ADAPTERS = ['none', 'fm-adagrad', 'emerg', 'coldnas', 'fixed-adaptive'] as const;
export type BenchAdapterName = (typeof BENCH_ADAPTERS)[number];

export function parseAdapterList(s: string): BenchAdapterName[] {
  const names = s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  for (const n of names) {
    if (!(BENCH_ADAPTERS as readonly string[]).includes(n)) throw new ConfigError('adapters', `unknown adapter "${n}"; known: ${BENCH_ADAPTERS.join(', ')}`);
  }
  if (names.length === 0) throw new ConfigError('adapters', 'at least one adapter');
  return names as BenchAdapterName[];
}

export function sideOf(name: BenchAdapterName): Side {
  return name === 'coldnas' || name === 'fixed-adaptive' ? 'user' : 'item';
}

/** Events the event layouts are inferred from (a prefix of the bench stream is enough). */
const LAYOUT_EVENTS = 20_000;

/** A neural bench model (the library's default sizes) with the event layout of its side, inferred from `sample`. */
export type BenchNeuralModel =
  { name: 'emerg'; model: Emerg; layout: EventLayout } | { name: 'coldnas'; model: ColdNas; layout: EventLayout } | { name: 'fixed-adaptive'; model: FixedAdaptive; layout: EventLayout };

/** The randomly initialised model of a neural bench adapter (ColdNAS: fixed structure add/multiply/add/multiply). */
export async function benchNeuralModel(name: BenchNeuralModel['name'], sample: readonly LabelledEvent[]): Promise<BenchNeuralModel> {
  await initBackend('auto');
  const evs = sample.slice(0, LAYOUT_EVENTS);
  if (name === 'emerg') {
    const layout = inferEventLayout('item', evs);
    return { name, model: new Emerg({ layout: fieldLayoutOf(layout), vocab: layout.vocab }), layout };
  }
  const layout = inferEventLayout('user', evs);
  if (name === 'coldnas') return { name, model: new ColdNas({ layout: fieldLayoutOf(layout), vocab: layout.vocab, structure: { ops: ['add', 'multiply', 'add', 'multiply'] } }), layout };
  return { name, model: new FixedAdaptive({ layout: fieldLayoutOf(layout), vocab: layout.vocab }), layout };
}

/**
 * Builds `name` for the bench. `fm` is the shared FM of the item-side FM adapters; `sample` are
 * events of the bench stream (for the event layout of the neural adapters).
 */
export async function buildBenchAdapter(name: BenchAdapterName, fm: FactorizationMachine, sample: readonly LabelledEvent[]): Promise<Adapter> {
  if (name === 'none' || name === 'fm-adagrad') return createAdapter(name, 'item', fm);
  const m = await benchNeuralModel(name, sample);
  if (m.name === 'emerg') return new EmergAdapter(m.model, m.layout, 'bench-emerg');
  if (m.name === 'coldnas') return new ColdNasAdapter(m.model, m.layout, 'bench-coldnas');
  return new FixedAdaptiveAdapter(m.model, m.layout, 'bench-fixed-adaptive');
}

export interface AdaptAloneResult {
  events: number;
  batches: number;
  batchSize: number;
  ms: number;
  perSec: number;
}

/**
 * `predictThenAdapt` alone on in-memory batches of `batchSize` events of distinct entities (each
 * batch one wave, states already in memory): no store, no sink, no decoding. Untimed warm-up
 * batches first, then batches until `maxBatches` or `maxMs`, whichever comes first.
 */
export function adaptAlone(adapter: Adapter, events: readonly LabelledEvent[], opts: { batchSize?: number; maxBatches?: number; maxMs?: number; warmup?: number } = {}): AdaptAloneResult {
  const batchSize = opts.batchSize ?? 1024;
  const maxBatches = opts.maxBatches ?? 200;
  const maxMs = opts.maxMs ?? 2000;
  const warmup = opts.warmup ?? 2;
  // Batches of distinct entities, taken in stream order (an entity's next event goes to a later batch).
  const batches: LabelledEvent[][] = [];
  let cur: LabelledEvent[] = [];
  let seen = new Set<string>();
  for (const e of events) {
    const id = entityIdOf(e, adapter.side);
    if (seen.has(id)) continue;
    seen.add(id);
    cur.push(e);
    if (cur.length === batchSize) {
      batches.push(cur);
      cur = [];
      seen = new Set<string>();
      if (batches.length >= maxBatches + warmup) break;
    }
  }
  if (batches.length <= warmup) throw new ConfigError('events', `too few events for ${warmup + 1} batches of ${batchSize} distinct entities`);
  const states = new Map<string, Float32Array>();
  const stateOf = (e: LabelledEvent): Float32Array => {
    const id = entityIdOf(e, adapter.side);
    let s = states.get(id);
    if (s === undefined) {
      s = adapter.initialState(e);
      states.set(id, s);
    }
    return s;
  };
  const run = (b: LabelledEvent[]): void => {
    adapter.predictThenAdapt({ events: b, states: b.map(stateOf) });
  };
  for (let i = 0; i < warmup; i++) run(batches[i] as LabelledEvent[]);
  // States are looked up (and created) outside the timed region.
  let ms = 0;
  let n = 0;
  let count = 0;
  for (let i = warmup; i < batches.length && count < maxBatches && ms < maxMs; i++) {
    const b = batches[i] as LabelledEvent[];
    const st = b.map(stateOf);
    const t0 = performance.now();
    adapter.predictThenAdapt({ events: b, states: st });
    ms += performance.now() - t0;
    n += b.length;
    count++;
  }
  return { events: n, batches: count, batchSize, ms, perSec: n / (ms / 1000) };
}
