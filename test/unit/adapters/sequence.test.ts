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
      assert.deepEqual({ ...s!, params: [] }, { ...w, params: [] });
      assert.ok(maxAbsDiff(s!.params, w.params) < 1e-5);
    });
  }
});
