/**
 * Adaptation throughput of the user-side adapters (`coldnas`, `fixed-adaptive`): events/s of
 * `predictThenAdapt` on in-memory AdapterBatches of 1024 distinct users (one wave of a micro-batch),
 * small randomly initialised models (D 16, the models' default sizes) over a synthetic user layout.
 * No Kafka, Redis or ClickHouse: the adapter's compute alone. Prints a Markdown table.
 *
 *   node --import tsx bench/adapters/user-adapters.ts [--backend wasm|cpu] [--seconds 5]
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { ColdNasAdapter } from '../../adapters/coldnas.js';
import { FixedAdaptiveAdapter } from '../../adapters/fixed-adaptive.js';
import type { Adapter } from '../../adapters/types.js';
import { initBackend, type BackendPreference } from '../../models/backend.js';
import { ColdNas } from '../../models/coldnas.js';
import { fieldLayoutOf, inferEventLayout } from '../../models/event-layout.js';
import { FixedAdaptive } from '../../models/fixed-adaptive.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { at } from '../../lib/at.js';

const BATCH = 1024;

/** Batches of BATCH events of distinct users (each user's first events, round-robin). */
function batches(events: readonly LabelledEvent[], count: number): LabelledEvent[][] {
  const out: LabelledEvent[][] = [];
  let cur: LabelledEvent[] = [];
  let users = new Set<string>();
  for (const e of events) {
    if (users.has(e.userId)) continue;
    users.add(e.userId);
    cur.push(e);
    if (cur.length === BATCH) {
      out.push(cur);
      if (out.length === count) break;
      cur = [];
      users = new Set();
    }
  }
  return out;
}

function measure(adapter: Adapter, bs: LabelledEvent[][], seconds: number): { eventsPerSec: number; msPerBatch: number; batches: number } {
  const states = bs.map((b) => b.map((e) => adapter.initialState(e)));
  for (let w = 0; w < 2; w++) adapter.predictThenAdapt({ events: at(bs, w % bs.length), states: at(states, w % bs.length) });
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000 || n < 3) {
    const i = n % bs.length;
    adapter.predictThenAdapt({ events: at(bs, i), states: at(states, i) });
    n++;
  }
  const ms = performance.now() - t0;
  return { eventsPerSec: (n * BATCH * 1000) / ms, msPerBatch: ms / n, batches: n };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { backend: { type: 'string', default: 'wasm' }, seconds: { type: 'string', default: '5' } }, strict: true });
  const backend = await initBackend(values.backend as BackendPreference);
  const events = [...syntheticStream({ seed: 9, events: 60_000, users: 20_000, items: 2000 }).events()];
  const layout = inferEventLayout('user', events.slice(0, 500));
  const bs = batches(events, 8);
  const rows: string[] = [];
  const adapters: Adapter[] = [
    new ColdNasAdapter(new ColdNas({ layout: fieldLayoutOf(layout), vocab: layout.vocab, structure: { ops: ['add', 'multiply', 'add', 'multiply'] } }), layout, 'bench'),
    new FixedAdaptiveAdapter(new FixedAdaptive({ layout: fieldLayoutOf(layout), vocab: layout.vocab }), layout, 'bench'),
  ];
  for (const a of adapters) {
    const r = measure(a, bs, Number(values.seconds));
    rows.push(`| ${a.name} | ${backend} | ${a.stateSize} | ${Math.round(r.eventsPerSec).toLocaleString('en-US')} | ${r.msPerBatch.toFixed(1)} | ${r.batches} |`);
  }
  process.stdout.write(
    [
      `Fields ${layout.fields.length}, slots ${fieldLayoutOf(layout).slotField.length}, batches of ${BATCH} distinct users`,
      '',
      '| adapter | backend | state floats | events/s | ms / batch | batches timed |',
      '|---|---|---:|---:|---:|---:|',
      ...rows,
      '',
    ].join('\n'),
  );
}

await main();
