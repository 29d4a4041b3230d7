import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COLDNAS_HISTORY_WINDOW, ColdNasAdapter, foldInto } from '../../../adapters/coldnas.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { initBackend } from '../../../models/backend.js';
import { EventEncoder, inferEventLayout } from '../../../models/event-layout.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { coldNas, maxAbsDiff, maxStateDiff, sequentialRun, userEvents, userLayout, wavedRun } from './user-fixtures.js';

await initBackend('cpu');

const events = userEvents(400, 3);
const layout = userLayout(events);
const model = coldNas(layout);
const C = model.contextDim;
const adapter = (chunkRows?: number): ColdNasAdapter => new ColdNasAdapter(model, layout, 'coldnas/test', chunkRows === undefined ? {} : { chunkRows });

void test('identity, state size C+3 ([b, s, count, mean]), and a new user starts at bias 0, count 0 with the zero mean', () => {
  const a = adapter();
  assert.deepEqual([a.name, a.side, a.release, a.stateSize, a.viewSize, a.hasBaseline], ['coldnas', 'user', 'coldnas/test', C + 3, 2, true]);
  const st = a.initialState(events[0]!);
  assert.equal(st.length, C + 3);
  assert.ok(
    st.every((v) => v === 0),
    'a release without a bias filter prior: variance 0',
  );
  const withPrior = new ColdNasAdapter(model, layout, 'c', {}, { user: { variance: 0.4, drift: 0.01 }, item: { variance: 0.2, drift: 0 } });
  assert.deepEqual([...withPrior.initialState(events[0]!).subarray(0, 3)], [0, 0.4000000059604645, 0]);
});

void test('batched waves (and chunked forwards) equal one event at a time, to 1e-5', () => {
  const seq = sequentialRun(adapter(), events);
  const waved = wavedRun(adapter(7), events, 64);
  assert.ok(maxAbsDiff(seq.scores, waved.scores) < 1e-5, `scores differ by ${maxAbsDiff(seq.scores, waved.scores)}`);
  assert.ok(maxStateDiff(seq.states, waved.states) < 1e-5, `states differ by ${maxStateDiff(seq.states, waved.states)}`);
});

void test('historyWindow 0: after n events a state is [n, batch mean of the n encodings] (model.batchStates), O(1) per event', () => {
  const { states } = wavedRun(new ColdNasAdapter(model, layout, 'coldnas/test', { historyWindow: 0 }), events, 50);
  const users = [...states.keys()];
  const index = new Map(users.map((u, i) => [u, i]));
  const rows = new EventEncoder(layout).encode(
    events,
    Int32Array.from(events, (e) => index.get(e.userId)!),
  );
  const batch = model.batchStates(rows, users.length);
  let maxDiff = 0;
  users.forEach((u, i) => {
    const st = states.get(u)!;
    assert.equal(st.length, C + 3, 'the state size does not grow with the history');
    assert.equal(st[2], batch[i]!.count);
    maxDiff = Math.max(maxDiff, maxAbsDiff(st.subarray(3), batch[i]!.mean));
  });
  assert.ok(maxDiff < 1e-5, `running mean vs batch mean: ${maxDiff}`);
  assert.ok(Math.max(...batch[0]!.mean.map(Math.abs)) > 1e-2, 'encodings are not trivially zero');
  assert.equal(
    users.reduce((s, u) => s + states.get(u)![2]!, 0),
    events.length,
  );
});

void test('scores are pre-adaptation: predictThenAdapt returns what predict gave before, and the state then moves the score', () => {
  const a = adapter();
  const warm = sequentialRun(a, events.slice(0, 200)).states;
  const probe = events.slice(200).filter((e, i, all) => warm.has(e.userId) && all.findIndex((x) => x.userId === e.userId) === i);
  assert.ok(probe.length >= 10, `${probe.length} probe users`);
  const states = probe.map((e) => warm.get(e.userId)!.slice());
  const before = a.predict({ events: probe, states });
  assert.ok(maxStateDiff(new Map(probe.map((e, i) => [e.userId, states[i]!])), new Map(probe.map((e) => [e.userId, warm.get(e.userId)!]))) === 0, 'predict does not modify states');
  // The adapter's per-row modulation equals the model's own scoring of the same states.
  const ref = model.predict(
    new EventEncoder(layout).encode(probe),
    states.map((st) => ({ count: st[2]!, mean: st.slice(3) })),
  );
  assert.ok(maxAbsDiff(before, ref) < 1e-5, `adapter vs model.predict: ${maxAbsDiff(before, ref)}`);
  const scored = a.predictThenAdapt({ events: probe, states });
  assert.ok(maxAbsDiff(before, scored) < 1e-6);
  // The same events scored again with the adapted states: each mean moved, so each score moved.
  const after = a.predict({ events: probe, states });
  assert.ok(maxAbsDiff(before, after) > 1e-4, `adapted states change the scores (max change ${maxAbsDiff(before, after)})`);
  // The warm states differ from the cold one in their scores too.
  const cold = a.predict({ events: probe, states: probe.map((e) => a.initialState(e)) });
  assert.ok(maxAbsDiff(before, cold) > 1e-4);
});

void test('a user without profile features is scored and folded in; its encoding ignores the missing fields', () => {
  const a = adapter();
  const e = events[0]!;
  const bare: LabelledEvent = { ...e, eventId: 'bare', userFeatures: {} };
  const st = a.initialState(bare);
  const p = a.predictThenAdapt({ events: [bare], states: [st] })[0]!;
  assert.ok(p > 0 && p < 1);
  assert.equal(st[2], 1);
  // Its mean is exactly the encoding of a row whose user fields are zero-weight padding.
  const rows = new EventEncoder(layout).encode([bare]);
  assert.ok(maxAbsDiff(st.subarray(3), model.encodeInteractions(rows)) < 1e-6);
  const full = a.initialState(e);
  a.predictThenAdapt({ events: [e], states: [full] });
  assert.ok(maxAbsDiff(st, full) > 1e-4, 'profile features do enter the encoding');
});

void test('the shared model is never written', () => {
  const table = Buffer.from(model.table.data.slice().buffer);
  const dense = model.dense.names().map((n) => Buffer.from(model.dense.get(n).data.slice().buffer));
  wavedRun(adapter(), events, 100);
  assert.ok(table.equals(Buffer.from(model.table.data.buffer, model.table.data.byteOffset, model.table.data.byteLength)));
  model.dense.names().forEach((n, i) => {
    const d = model.dense.get(n).data;
    assert.ok(dense[i]!.equals(Buffer.from(d.buffer, d.byteOffset, d.byteLength)), `${n} changed`);
  });
});

void test('options and inputs are validated', () => {
  for (const chunkRows of [0, -1, 1.5, Number.NaN]) assert.throws(() => adapter(chunkRows), ConfigError);
  const itemLayout = inferEventLayout('item', events, { vocab: 4096 });
  assert.throws(
    () => new ColdNasAdapter(model, itemLayout, 'x'),
    (e: unknown) => e instanceof ThawError && e.code === 'RELEASE_INCOMPATIBLE',
  );
  assert.throws(
    () => new ColdNasAdapter(model, { ...layout, vocab: 2048 }, 'x'),
    (e: unknown) => e instanceof ThawError && e.code === 'RELEASE_INCOMPATIBLE',
  );
  const fewer = userLayout(events.map((e) => ({ ...e, itemFeatures: {} })));
  assert.throws(
    () => new ColdNasAdapter(model, fewer, 'x'),
    (e: unknown) => e instanceof ThawError && e.code === 'RELEASE_INCOMPATIBLE',
  );
  const a = adapter();
  const e = events[0]!;
  assert.throws(
    () => a.predict({ events: [e], states: [new Float32Array(C)] }),
    (err: unknown) => err instanceof ThawError && err.code === 'STATE_CORRUPT',
  );
  assert.throws(() => a.predict({ events: [e], states: [] }), ThawError);
  const bad = a.initialState(e);
  bad[2] = 1.5;
  assert.throws(
    () => a.predictThenAdapt({ events: [e], states: [bad] }),
    (err: unknown) => err instanceof ThawError && err.code === 'STATE_CORRUPT',
  );
  assert.equal(a.predictThenAdapt({ events: [], states: [] }).length, 0);
});

void test('historyWindow: exact running mean up to the window, then an exponential moving mean with rate 1/window', () => {
  const fold = (window: number, xs: number[]): Float32Array => {
    const st = new Float32Array(2);
    for (const x of xs) foldInto(st, Float32Array.of(x), 0, window);
    return st;
  };
  // Window 3: 1, 2, 3 give the exact mean 2; then 5 and 11 move it by 1/3 of the gap each time.
  const w3 = fold(3, [1, 2, 3, 5, 11]);
  assert.equal(w3[0], 5, 'count keeps counting');
  const after4 = 2 + (5 - 2) / 3;
  assert.ok(Math.abs(w3[1]! - (after4 + (11 - after4) / 3)) < 1e-6, `ema ${w3[1]}`);
  // Window 0 (and a window not yet filled) is the exact mean.
  assert.ok(Math.abs(fold(0, [1, 2, 3, 5, 11])[1]! - 4.4) < 1e-6);
  assert.ok(Math.abs(fold(10, [1, 2, 3, 5, 11])[1]! - 4.4) < 1e-6);
  // The adapter applies its window: default 5, and 0 gives back the exact mean.
  assert.equal(adapter().historyWindow, COLDNAS_HISTORY_WINDOW);
  assert.equal(COLDNAS_HISTORY_WINDOW, 5);
  assert.throws(
    () => new ColdNasAdapter(model, layout, 'c', { historyWindow: -2 }),
    (e: unknown) => e instanceof ConfigError && e.key === 'coldnas.historyWindow',
  );
  const one = events.filter((e) => e.userId === events[0]!.userId).slice(0, 8);
  const run = (historyWindow: number): Float32Array => {
    const a = new ColdNasAdapter(model, layout, 'c', { historyWindow });
    const st = a.initialState(one[0]!);
    for (const e of one) a.predictThenAdapt({ events: [e], states: [st] });
    return st;
  };
  assert.ok(maxAbsDiff(run(0), run(8)) < 1e-7, 'window = history length: exact mean');
  assert.ok(maxAbsDiff(run(0), run(2)) > 1e-4, 'a short window weighs recent events more');
});
