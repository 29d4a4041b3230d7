/**
 * The `emerg` adapter (adapters/emerg.ts), two measurements. No Kafka, Redis or ClickHouse.
 *
 * --mode throughput: events/s of `predictThenAdapt` on in-memory AdapterBatches of 1024 distinct
 *   items (one wave of a micro-batch), random-init EmerG at the ML-1M sizes (D 16, 3 layers) over
 *   the synthetic stream's item layout (F = 10 fields), beside `initialStates` (new items/s).
 *
 * --mode tune: how the adapter's defaults were chosen. A synthetic stream (drift-free, planted
 *   item-specific interactions) is split in time: EmerG is meta-trained (trainers/meta-trainer.ts)
 *   on the items with at least 40 events in the first 60%; the options are then compared on the
 *   prequential log loss and AUC of the items that FIRST appear in the last 40% (held out: never
 *   seen in training), events replayed in waves exactly as a worker does, beside `none` (the same
 *   release, generated states, no adaptation). Prints a table sorted by log loss.
 *
 *   node --import tsx bench/adapters/emerg-adapter.ts --mode throughput [--backend wasm|cpu] [--seconds 5]
 *   node --import tsx bench/adapters/emerg-adapter.ts --mode tune [--backend wasm] [--events 60000]
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { EmergAdapter, type EmergAdapterOptions } from '../../adapters/emerg.js';
import { FrozenAdapter } from '../../adapters/frozen.js';
import type { Adapter } from '../../adapters/types.js';
import { auc } from '../../lib/metrics.js';
import { initBackend, type BackendPreference } from '../../models/backend.js';
import { Emerg } from '../../models/emerg.js';
import { EventEncoder, fieldLayoutOf, inferEventLayout, type EventLayout } from '../../models/event-layout.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { trainMeta } from '../../trainers/meta-trainer.js';
import { at as atIndex, defined } from '../../lib/at.js';

const BATCH = 1024;

function distinctBatches(events: readonly LabelledEvent[], count: number): LabelledEvent[][] {
  const out: LabelledEvent[][] = [];
  let cur: LabelledEvent[] = [];
  let seen = new Set<string>();
  for (const e of events) {
    if (seen.has(e.itemId)) continue;
    seen.add(e.itemId);
    cur.push(e);
    if (cur.length === BATCH) {
      out.push(cur);
      if (out.length === count) break;
      cur = [];
      seen = new Set();
    }
  }
  return out;
}

function throughput(seconds: number): void {
  // Many items so every batch holds 1024 distinct ones.
  const events = [...syntheticStream({ seed: 3, events: 40_000, users: 5000, items: 8000 }).events()];
  const layout = inferEventLayout('item', events, { maxSlots: 3 });
  const model = new Emerg({ layout: fieldLayoutOf(layout), vocab: layout.vocab, dim: 16, layers: 3, seed: 1 });
  const ad = new EmergAdapter(model, layout, 'bench');
  const bs = distinctBatches(events, 3);
  const t0 = performance.now();
  const states = bs.map((b) => ad.initialStates(b));
  const initMs = (performance.now() - t0) / bs.length;
  for (let w = 0; w < 2; w++) ad.predictThenAdapt({ events: atIndex(bs, w % bs.length), states: atIndex(states, w % bs.length) });
  let n = 0;
  const t1 = performance.now();
  while (performance.now() - t1 < seconds * 1000 || n < 3) {
    const i = n % bs.length;
    ad.predictThenAdapt({ events: atIndex(bs, i), states: atIndex(states, i) });
    n++;
  }
  const ms = (performance.now() - t1) / n;
  process.stdout.write(`| adapter | F | D | batch | predictThenAdapt ms/batch | events/s | initialStates new items/s |\n|---|---|---|---|---|---|---|\n`);
  process.stdout.write(`| emerg | ${layout.fields.length} | 16 | ${BATCH} | ${ms.toFixed(1)} | ${Math.round((BATCH * 1000) / ms)} | ${Math.round((BATCH * 1000) / initMs)} |\n`);
}

/** Prequential replay in waves (k-th event of each item in wave k, stream order): scores and labels. */
function replay(adapter: Adapter, evs: readonly LabelledEvent[]): { scores: Float32Array; labels: Float32Array } {
  const count = new Map<string, number>();
  const waves: number[][] = [];
  evs.forEach((e, i) => {
    const k = count.get(e.itemId) ?? 0;
    count.set(e.itemId, k + 1);
    (waves[k] ??= []).push(i);
  });
  const states = new Map<string, Float32Array>();
  const scores = new Float32Array(evs.length);
  for (const wave of waves) {
    for (let at = 0; at < wave.length; at += BATCH) {
      const idx = wave.slice(at, at + BATCH);
      const batch = idx.map((i) => atIndex(evs, i));
      const fresh = batch.filter((e) => !states.has(e.itemId));
      (adapter.initialStates?.(fresh) ?? fresh.map((e) => adapter.initialState(e))).forEach((s, j) => states.set(atIndex(fresh, j).itemId, s));
      const out = adapter.predictThenAdapt({ events: batch, states: batch.map((e) => defined(states.get(e.itemId), `state of ${e.itemId}`)) });
      idx.forEach((i, j) => (scores[i] = atIndex(out, j)));
    }
  }
  return { scores, labels: Float32Array.from(evs, (e) => e.label) };
}

function logLoss(s: Float32Array, y: Float32Array, from = 0, to = s.length, mask?: Uint8Array): number {
  let sum = 0;
  let n = 0;
  for (let i = from; i < to; i++) {
    if (mask !== undefined && mask[i] === 0) continue;
    const p = Math.min(1 - 1e-7, Math.max(1e-7, atIndex(s, i)));
    const yi = atIndex(y, i);
    sum -= yi * Math.log(p) + (1 - yi) * Math.log(1 - p);
    n++;
  }
  return sum / Math.max(1, n);
}

async function tune(eventsN: number): Promise<void> {
  const events = [...syntheticStream({ seed: 7, events: eventsN, users: 3000, items: 1500 }).events()];
  const cut = Math.floor(events.length * 0.6);
  const train = events.slice(0, cut);
  const layout: EventLayout = inferEventLayout('item', events, { vocab: 65_536, maxSlots: 3 });
  const encoder = new EventEncoder(layout);
  const perItem = new Map<string, number>();
  for (const e of train) perItem.set(e.itemId, (perItem.get(e.itemId) ?? 0) + 1);
  const hotIds = [...perItem].filter(([, c]) => c >= 40).map(([id]) => id);
  const hotIndex = new Map(hotIds.map((id, i) => [id, i]));
  const hotEvents = train.filter((e) => hotIndex.has(e.itemId));
  const hot = encoder.encode(
    hotEvents,
    Int32Array.from(hotEvents, (e) => defined(hotIndex.get(e.itemId), `index of hot item ${e.itemId}`)),
  );
  const seenInTrain = new Set(train.map((e) => e.itemId));
  const heldOut = events.slice(cut).filter((e) => !seenInTrain.has(e.itemId));
  process.stderr.write(`${JSON.stringify({ hotItems: hotIds.length, hotRows: hot.n, heldOutEvents: heldOut.length, heldOutItems: new Set(heldOut.map((e) => e.itemId)).size })}\n`);
  const t0 = performance.now();
  const res = await trainMeta({ layout: fieldLayoutOf(layout), vocabSize: layout.vocab, hot, hotItemCount: hotIds.length }, { kind: 'emerg', baseEpochs: 2, metaEpochs: 4, dim: 16, seed: 7 });
  process.stderr.write(`${JSON.stringify({ trainedSeconds: Math.round((performance.now() - t0) / 1000) })}\n`);
  const model = res.model as Emerg;
  // Early events (prior count < 10) are where adaptation matters; also report all held-out events.
  const prior = new Map<string, number>();
  const early = Uint8Array.from(heldOut, (e) => {
    const k = prior.get(e.itemId) ?? 0;
    prior.set(e.itemId, k + 1);
    return k < 10 ? 1 : 0;
  });
  const configs: [string, EmergAdapterOptions | 'none'][] = [['none (frozen)', 'none']];
  for (const optimizer of ['adagrad', 'sgd'] as const) {
    for (const learningRate of optimizer === 'adagrad' ? [0.03, 0.1, 0.3, 1] : [0.01, 0.03, 0.1]) {
      configs.push([`${optimizer} lr ${learningRate}`, { optimizer, learningRate }]);
    }
  }
  configs.push(['adagrad lr 0.3 graph 0', { learningRate: 0.3, graphLrScale: 0 }]);
  configs.push(['adagrad lr 0.3 graph 3', { learningRate: 0.3, graphLrScale: 3 }]);
  configs.push(['adagrad lr 0.3 l2 0', { learningRate: 0.3, l2: 0 }]);
  configs.push(['adagrad lr 0.3 l2 0.1', { learningRate: 0.3, l2: 0.1 }]);
  configs.push(['adagrad lr 0.3 G0 0.1', { learningRate: 0.3, initialAccumulator: 0.1 }]);
  configs.push(['adagrad lr 0.3 G0 10', { learningRate: 0.3, initialAccumulator: 10 }]);
  // Second round, around the best of the first: larger steps with a smaller G0, and the graph scale.
  configs.push(['adagrad lr 0.5', { learningRate: 0.5 }]);
  configs.push(['adagrad lr 0.5 G0 0.1', { learningRate: 0.5, initialAccumulator: 0.1 }]);
  configs.push(['adagrad lr 1 G0 0.1', { learningRate: 1, initialAccumulator: 0.1 }]);
  configs.push(['adagrad lr 0.5 G0 0.1 graph 3', { learningRate: 0.5, initialAccumulator: 0.1, graphLrScale: 3 }]);
  const rows: string[] = [];
  const results: { name: string; ll: number; text: string }[] = [];
  for (const [name, opts] of configs) {
    const ad = opts === 'none' ? new FrozenAdapter(new EmergAdapter(model, layout, 'tune')) : new EmergAdapter(model, layout, 'tune', opts);
    const { scores, labels } = replay(ad, heldOut);
    const ll = logLoss(scores, labels);
    const eScores = scores.filter((_, i) => early[i] === 1);
    const eLabels = labels.filter((_, i) => early[i] === 1);
    const text = `| ${name} | ${ll.toFixed(4)} | ${auc(scores, labels).toFixed(4)} | ${logLoss(scores, labels, 0, scores.length, early).toFixed(4)} | ${auc(eScores, eLabels).toFixed(4)} |`;
    results.push({ name, ll, text });
    process.stderr.write(`${text}\n`);
  }
  results.sort((a, b) => a.ll - b.ll);
  rows.push('| options | log loss | AUC | log loss (prior < 10) | AUC (prior < 10) |', '|---|---|---|---|---|', ...results.map((r) => r.text));
  process.stdout.write(`held-out new items: ${new Set(heldOut.map((e) => e.itemId)).size}, events: ${heldOut.length}\n\n${rows.join('\n')}\n`);
}

const { values } = parseArgs({
  options: { mode: { type: 'string', default: 'throughput' }, backend: { type: 'string', default: 'wasm' }, seconds: { type: 'string', default: '5' }, events: { type: 'string', default: '60000' } },
});
const backend = await initBackend(values.backend as BackendPreference);
process.stderr.write(`${JSON.stringify({ backend })}\n`);
if (values.mode === 'tune') await tune(Number(values.events));
else throughput(Number(values.seconds));
