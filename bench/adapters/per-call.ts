/**
 * Per-call cost of `predictThenAdapt` of the meta-learned adapters (`emerg`, `coldnas`,
 * `fixed-adaptive`) by wave size. The worker calls the adapter once per wave (the k-th event of
 * each entity goes to wave k, consumers/processor.ts), and with power-law popularity most waves of
 * a 5000-event micro-batch hold a handful of events: the fixed cost of a call, not the per-event
 * cost, decides the end-to-end rate. Models and event layouts are the spine bench's
 * (bench/spine/adapters.ts: randomly initialised, the library's default sizes, layouts inferred
 * from the synthetic stream). No Kafka, Redis or ClickHouse. Prints a Markdown table.
 *
 * Three variants per adapter, interleaved: `unfrozen tf` (weights re-created per call, as before
 * ParamSet.freeze), `frozen tf`, and `default` (as shipped: frozen + the hand path for small waves).
 *
 *   node --import tsx bench/adapters/per-call.ts [--backend wasm|cpu] [--waves 1,4,32,1024]
 *        [--adapters emerg,coldnas,fixed-adaptive] [--rounds 4] [--slice-ms 250] [--hand]
 *
 * --hand adds a 4th variant: the hand path for every wave (how DEFAULT_FAST_MAX_ROWS of
 * adapters/user-common.ts and EMERG_FAST_MAX_ROWS of adapters/emerg.ts were chosen).
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { ColdNasAdapter } from '../../adapters/coldnas.js';
import { EmergAdapter } from '../../adapters/emerg.js';
import { FixedAdaptiveAdapter } from '../../adapters/fixed-adaptive.js';
import type { Adapter } from '../../adapters/types.js';
import { initBackend, type BackendPreference } from '../../models/backend.js';
import { ColdNas } from '../../models/coldnas.js';
import { Emerg } from '../../models/emerg.js';
import { fieldLayoutOf, inferEventLayout } from '../../models/event-layout.js';
import { FixedAdaptive } from '../../models/fixed-adaptive.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { syntheticStream } from '../../sources/synthetic.js';
import * as tf from '@tensorflow/tfjs';
import { at } from '../../lib/at.js';

/** The spine bench's adapter, over the spine bench's stream (bench/spine/adapters.ts). */
function build(name: string, events: readonly LabelledEvent[], fastMaxRows: number | undefined): Adapter {
  const fast = fastMaxRows === undefined ? {} : { fastMaxRows };
  const evs = events.slice(0, 20_000);
  if (name === 'emerg') {
    const layout = inferEventLayout('item', evs);
    return new EmergAdapter(new Emerg({ layout: fieldLayoutOf(layout), vocab: layout.vocab }), layout, 'bench-emerg', fast);
  }
  const layout = inferEventLayout('user', evs);
  if (name === 'coldnas') {
    const model = new ColdNas({ layout: fieldLayoutOf(layout), vocab: layout.vocab, structure: { ops: ['add', 'multiply', 'add', 'multiply'] } });
    return new ColdNasAdapter(model, layout, 'bench-coldnas', fast);
  }
  if (name === 'fixed-adaptive') return new FixedAdaptiveAdapter(new FixedAdaptive({ layout: fieldLayoutOf(layout), vocab: layout.vocab }), layout, 'bench-fixed-adaptive', fast);
  throw new Error(`unknown adapter ${name}`);
}

/** Up to `count` waves of `size` events of distinct entities of the adapter's side. */
function waves(events: readonly LabelledEvent[], adapter: Adapter, size: number, count: number): LabelledEvent[][] {
  const out: LabelledEvent[][] = [];
  let cur: LabelledEvent[] = [];
  let seen = new Set<string>();
  for (const e of events) {
    const id = adapter.side === 'item' ? e.itemId : e.userId;
    if (seen.has(id)) continue;
    seen.add(id);
    cur.push(e);
    if (cur.length === size) {
      out.push(cur);
      if (out.length === count) break;
      cur = [];
      seen = new Set();
    }
  }
  return out;
}

/** One way of running an adapter: the same model and waves, different paths. */
interface Variant {
  label: string;
  adapter: Adapter;
  /** Called after every call (the `unfrozen` variant drops the cached weight tensors). */
  after?: () => void;
}

/**
 * The variants of `name`: `unfrozen` = the TensorFlow.js path with the weight tensors re-created on
 * every call, as before ParamSet.freeze (emulated by disposing them after each call); `frozen tf` =
 * the TensorFlow.js path with frozen weights; `default` = the adapter as shipped (frozen weights and
 * the hand path for waves up to fastMaxRows).
 */
function variants(name: string, events: readonly LabelledEvent[], hand: boolean): Variant[] {
  const tfOnly = build(name, events, 0);
  const unfrozen = build(name, events, 0);
  const out: Variant[] = [
    { label: 'unfrozen tf', adapter: unfrozen, after: () => unfrozen.dispose?.() },
    { label: 'frozen tf', adapter: tfOnly },
  ];
  out.push({ label: 'default', adapter: build(name, events, undefined) });
  if (hand) out.push({ label: 'hand', adapter: build(name, events, Number.MAX_SAFE_INTEGER) });
  return out;
}

/**
 * ms per predictThenAdapt call of waves of `size` events for each variant, interleaved (rounds of
 * `sliceMs` per variant, so a load spike of this shared host hits every variant alike).
 */
function perCall(vs: readonly Variant[], events: readonly LabelledEvent[], size: number, rounds: number, sliceMs: number): { label: string; msPerCall: number; calls: number }[] {
  const side = at(vs, 0).adapter;
  const bs = waves(events, side, size, size >= 1024 ? 4 : 64);
  const runs = vs.map((v) => {
    const states = bs.map((b) => v.adapter.initialStates?.(b) ?? b.map((e) => v.adapter.initialState(e)));
    return { v, states, ms: 0, calls: 0, next: 0 };
  });
  const call = (r: (typeof runs)[number]): void => {
    const i = r.next++ % bs.length;
    r.v.adapter.predictThenAdapt({ events: at(bs, i), states: at(r.states, i) });
    r.v.after?.();
  };
  for (const r of runs) for (let w = 0; w < 3; w++) call(r); // warm-up (JIT, kernels)
  for (let round = 0; round < rounds; round++) {
    for (const r of runs) {
      const t0 = performance.now();
      let n = 0;
      while (performance.now() - t0 < sliceMs || n < 2) {
        call(r);
        n++;
      }
      r.ms += performance.now() - t0;
      r.calls += n;
    }
  }
  return runs.map((r) => ({ label: r.v.label, msPerCall: r.ms / r.calls, calls: r.calls }));
}

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    waves: { type: 'string', default: '1,4,32,1024' },
    adapters: { type: 'string', default: 'emerg,coldnas,fixed-adaptive' },
    rounds: { type: 'string', default: '4' },
    'slice-ms': { type: 'string', default: '250' },
    hand: { type: 'boolean', default: false },
  },
  strict: true,
});
const backend = await initBackend(values.backend as BackendPreference);
const events = [...syntheticStream({ events: 60_000, seed: 11, users: 20_000, items: 5_000 }).events()];
const rows: string[] = [];
for (const name of values.adapters.split(',').map((n) => n.trim())) {
  const vs = variants(name, events, values.hand);
  for (const w of values.waves.split(',').map(Number)) {
    const res = perCall(vs, events, w, Number(values.rounds), Number(values['slice-ms']));
    const cell = (label: string): string => {
      const r = res.find((x) => x.label === label);
      return r === undefined ? '—' : `${r.msPerCall.toFixed(3)} (${Math.round((w * 1000) / r.msPerCall).toLocaleString('en-US')} ev/s)`;
    };
    rows.push(`| ${name} | ${w} | ${cell('unfrozen tf')} | ${cell('frozen tf')} | ${cell('default')} |${values.hand ? ` ${cell('hand')} |` : ''}`);
    process.stderr.write(`${at(rows, rows.length - 1)}\n`);
  }
  const before = tf.memory().numTensors;
  for (const v of vs) v.adapter.dispose?.();
  process.stderr.write(`${JSON.stringify({ adapter: name, tensorsBeforeDispose: before, tensorsAfter: tf.memory().numTensors })}\n`);
}
process.stdout.write(
  [
    '',
    `backend ${backend}; ms per predictThenAdapt call (events/s); variants interleaved, ${values.rounds} rounds × ${values['slice-ms']} ms each`,
    '',
    `| adapter | wave events | unfrozen tf (before) | frozen tf | default (frozen + hand path for small waves) |${values.hand ? ' hand path for every wave |' : ''}`,
    `|---|---:|---:|---:|---:|${values.hand ? '---:|' : ''}`,
    ...rows,
    '',
  ].join('\n'),
);
