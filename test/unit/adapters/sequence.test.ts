/**
 * `predictThenAdaptSequence` (adapters/types.ts) of the user-side adapters and of the frozen `none`
 * over them: a whole micro-batch in one call, repeated users carrying one shared state object,
 * gives the wave-by-wave scores and states (to 1e-5); the BatchProcessor uses it when present and
 * writes the same rows and states as with waves, redeliveries included.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ColdNasAdapter } from '../../../adapters/coldnas.js';
import { FixedAdaptiveAdapter } from '../../../adapters/fixed-adaptive.js';
import { FrozenAdapter } from '../../../adapters/frozen.js';
import type { Adapter } from '../../../adapters/types.js';
import { BatchProcessor, type BatchItem } from '../../../consumers/processor.js';
import { initBackend } from '../../../models/backend.js';
import { ColdNas } from '../../../models/coldnas.js';
import { fieldLayoutOf } from '../../../models/event-layout.js';
import { MemoryEntityStore } from '../../../model-store/memory-store.js';
import { Rng } from '../../../models/rng.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { RecordingSink } from '../consumers/fakes.js';
import { coldNas, fixedAdaptive, maxAbsDiff, maxStateDiff, userEvents, userLayout, wavedRun, type RunResult } from './user-fixtures.js';

await initBackend('wasm');

const events = userEvents(600, 5, 30);
const layout = userLayout(events);

/** Micro-batches of `batch` events, each in ONE predictThenAdaptSequence call (shared state per user). */
function sequenceRun(adapter: Adapter, evs: readonly LabelledEvent[], batch: number): RunResult {
  const states = new Map<string, Float32Array>();
  const scores = new Float32Array(evs.length);
  for (let at = 0; at < evs.length; at += batch) {
    const part = evs.slice(at, at + batch);
    const sts = part.map((e) => {
      let st = states.get(e.userId);
      if (st === undefined) states.set(e.userId, (st = adapter.initialState(e)));
      return st;
    });
    scores.set(adapter.predictThenAdaptSequence!({ events: part, states: sts }), at);
  }
  return { scores, states };
}

function supernet(): ColdNas {
  const m = new ColdNas({ layout: fieldLayoutOf(layout), vocab: layout.vocab, seed: 4 });
  const rng = new Rng(4);
  for (const n of m.dense.names()) rng.fillUniform(m.dense.get(n).data, 0.3);
  rng.fillUniform(m.table.data, 0.3);
  rng.fillUniform(m.arch.get('cn.alpha').data, 2);
  return m;
}

void test('coldnas and fixed-adaptive: one call per micro-batch equals the waves (scores and states to 1e-5)', () => {
  const cases: [string, () => Adapter][] = [
    ['coldnas', () => new ColdNasAdapter(coldNas(layout), layout, 'c')],
    ['coldnas, tf only', () => new ColdNasAdapter(coldNas(layout), layout, 'c', { fastMaxRows: 0 })],
    ['coldnas, chunks of 7', () => new ColdNasAdapter(coldNas(layout), layout, 'c', { chunkRows: 7 })],
    ['coldnas, window 3', () => new ColdNasAdapter(coldNas(layout), layout, 'c', { historyWindow: 3 })],
    ['coldnas supernet', () => new ColdNasAdapter(supernet(), layout, 'c')],
    ['fixed-adaptive', () => new FixedAdaptiveAdapter(fixedAdaptive(layout), layout, 'f')],
    ['fixed-adaptive, tf only', () => new FixedAdaptiveAdapter(fixedAdaptive(layout), layout, 'f', { fastMaxRows: 0 })],
    ['none over coldnas', () => new FrozenAdapter(new ColdNasAdapter(coldNas(layout), layout, 'c'))],
    ['none over fixed-adaptive', () => new FrozenAdapter(new FixedAdaptiveAdapter(fixedAdaptive(layout), layout, 'f'))],
  ];
  for (const [name, build] of cases) {
    const waves = wavedRun(build(), events, 200);
    const seq = sequenceRun(build(), events, 200);
    assert.ok(maxAbsDiff(waves.scores, seq.scores) < 1e-5, `${name}: scores differ by ${maxAbsDiff(waves.scores, seq.scores)}`);
    assert.ok(maxStateDiff(waves.states, seq.states) < 1e-5, `${name}: states differ by ${maxStateDiff(waves.states, seq.states)}`);
  }
  // The frozen baseline never moves a state.
  const frozen = sequenceRun(new FrozenAdapter(new ColdNasAdapter(coldNas(layout), layout, 'c')), events, 200);
  for (const st of frozen.states.values()) assert.ok(st.every((v) => v === 0));
});

/** A fixed other-side view per item (as if its worker had written it): `[b, s, …]`, some items cold. */
function viewOf(e: LabelledEvent): Float32Array | undefined {
  const h = [...e.itemId].reduce((a, ch) => (a * 31 + ch.charCodeAt(0)) % 997, 7);
  return h % 5 === 0 ? undefined : Float32Array.of((h % 13) / 10 - 0.6, 0.05 + (h % 7) / 50, 0.1);
}

/** Scores, baselines and final states of micro-batches of `batch` events, by waves or by one sequence call each. */
function biasRun(adapter: Adapter, evs: readonly LabelledEvent[], batch: number, mode: 'waves' | 'sequence'): RunResult & { baselines: Float32Array } {
  const states = new Map<string, Float32Array>();
  const scores = new Float32Array(evs.length);
  const baselines = new Float32Array(evs.length);
  const stateOf = (e: LabelledEvent): Float32Array => {
    let st = states.get(e.userId);
    if (st === undefined) states.set(e.userId, (st = adapter.initialState(e)));
    return st;
  };
  for (let at = 0; at < evs.length; at += batch) {
    const idx = Array.from({ length: Math.min(batch, evs.length - at) }, (_, k) => at + k);
    const groups: number[][] = [];
    if (mode === 'sequence') groups.push(idx);
    else {
      const seen = new Map<string, number>();
      idx.forEach((i) => {
        const user = evs[i]?.userId ?? '';
        const k = seen.get(user) ?? 0;
        seen.set(user, k + 1);
        (groups[k] ??= []).push(i);
      });
    }
    for (const g of groups) {
      const part = g.flatMap((i) => evs[i] ?? []);
      const baseline = new Float32Array(part.length);
      const b = { events: part, states: part.map(stateOf), others: part.map(viewOf), baseline };
      const out = mode === 'sequence' ? adapter.predictThenAdaptSequence!(b) : adapter.predictThenAdapt(b);
      g.forEach((i, j) => {
        scores[i] = out[j] ?? NaN;
        baselines[i] = baseline[j] ?? NaN;
      });
    }
  }
  return { scores, states, baselines };
}

void test('with biases learned and other sides read: one call per micro-batch equals the waves (scores, baselines, states to 1e-5)', () => {
  const prior = { user: { variance: 0.5, drift: 0.01 }, item: { variance: 0.3, drift: 0.02 } };
  const cases: [string, () => Adapter][] = [
    ['coldnas', () => new ColdNasAdapter(coldNas(layout), layout, 'c', {}, prior)],
    ['coldnas, tf only, chunks of 7', () => new ColdNasAdapter(coldNas(layout), layout, 'c', { fastMaxRows: 0, chunkRows: 7 }, prior)],
    ['fixed-adaptive', () => new FixedAdaptiveAdapter(fixedAdaptive(layout), layout, 'f', {}, prior)],
    ['fixed-adaptive, tf only', () => new FixedAdaptiveAdapter(fixedAdaptive(layout), layout, 'f', { fastMaxRows: 0 }, prior)],
  ];
  for (const [name, build] of cases) {
    const waves = biasRun(build(), events, 200, 'waves');
    const seq = biasRun(build(), events, 200, 'sequence');
    assert.ok(maxAbsDiff(waves.scores, seq.scores) < 1e-5, `${name}: scores differ by ${maxAbsDiff(waves.scores, seq.scores)}`);
    assert.ok(maxAbsDiff(waves.baselines, seq.baselines) < 1e-5, `${name}: baselines differ by ${maxAbsDiff(waves.baselines, seq.baselines)}`);
    assert.ok(maxStateDiff(waves.states, seq.states) < 1e-5, `${name}: states differ by ${maxStateDiff(waves.states, seq.states)}`);
    assert.ok(
      [...seq.states.values()].some((st) => Math.abs(st[0] ?? 0) > 0.05),
      `${name}: user biases moved`,
    );
    // The baseline is the frozen none's score: the same for a user's every event with the same features.
    const none = new FrozenAdapter(build());
    const frozen = events.slice(0, 200);
    const expect = none.predictThenAdaptSequence!({ events: frozen, states: frozen.map((e) => none.initialState(e)) });
    assert.ok(maxAbsDiff(seq.baselines.subarray(0, 200), expect) < 1e-6, `${name}: baseline vs none ${maxAbsDiff(seq.baselines.subarray(0, 200), expect)}`);
  }
});

void test('the BatchProcessor uses the sequence call when present: same rows and states as the waves, redeliveries skipped', async () => {
  /** The same adapter seen through its wave methods only. */
  const wavesOnly = (a: Adapter): Adapter => ({
    name: a.name,
    side: a.side,
    stateSize: a.stateSize,
    viewSize: a.viewSize,
    hasBaseline: a.hasBaseline,
    release: a.release,
    initialState: (e) => a.initialState(e),
    predict: (b) => a.predict(b),
    predictThenAdapt: (b) => a.predictThenAdapt(b),
  });
  for (const build of [() => new ColdNasAdapter(coldNas(layout), layout, 'c'), () => new FixedAdaptiveAdapter(fixedAdaptive(layout), layout, 'f')]) {
    const runs = await Promise.all(
      [build(), wavesOnly(build())].map(async (adapter) => {
        const store = new MemoryEntityStore();
        const sink = new RecordingSink();
        const scope = { namespace: 'n', side: 'user' as const, adapter: adapter.name };
        const proc = new BatchProcessor({ adapter, store, sink, scope });
        const all: BatchItem[] = events.slice(0, 400).map((event, offset) => ({ offset, event }));
        let skipped = 0;
        for (let at = 0; at < all.length; at += 150) skipped += (await proc.process(all.slice(Math.max(0, at - 20), at + 150))).skipped;
        const states = await store.getMany(scope, [...new Set(all.map((x) => x.event.userId))]);
        return { rows: sink.rows, skipped, states };
      }),
    );
    const [seq, waves] = runs as [(typeof runs)[number], (typeof runs)[number]];
    assert.equal(seq.skipped, waves.skipped);
    assert.ok(seq.skipped > 0, 'the overlapping batches redeliver events');
    assert.equal(seq.rows.length, waves.rows.length);
    seq.rows.forEach((r, i) => {
      const w = waves.rows[i]!;
      assert.deepEqual({ ...r, score: 0 }, { ...w, score: 0 });
      assert.ok(Math.abs(r.score - w.score) < 1e-5, `row ${i}: ${r.score} vs ${w.score}`);
    });
    seq.states.forEach((s, i) => {
      const w = waves.states[i]!;
      assert.deepEqual({ ...s!, params: [], recent: undefined }, { ...w, params: [], recent: undefined });
      assert.ok(maxAbsDiff(s!.params, w.params) < 1e-5);
      // Both list the same recent events; one sequence call observes only the view before an
      // entity's first event of the call (consumers/processor.ts), the waves before each.
      assert.equal(s!.recent?.baseMs, w.recent?.baseMs);
      assert.deepEqual(
        s!.recent?.entries.map((e) => [e.key, e.eventMs]),
        w.recent?.entries.map((e) => [e.key, e.eventMs]),
      );
      s!.recent?.entries.forEach((e, j) => {
        const we = w.recent?.entries[j]?.before;
        if (e.before !== undefined) assert.ok(we !== undefined && maxAbsDiff(e.before, we) < 1e-5, `view before recent event ${j}`);
      });
    });
  }
});
