import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FixedAdaptiveAdapter, type FixedAdaptiveAdapterOptions } from '../../../adapters/fixed-adaptive.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { initBackend } from '../../../models/backend.js';
import { EventEncoder, inferEventLayout } from '../../../models/event-layout.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { fixedAdaptive, maxAbsDiff, maxStateDiff, sequentialRun, userEvents, userLayout, wavedRun } from './user-fixtures.js';

await initBackend('cpu');

const events = userEvents(400, 4);
const layout = userLayout(events);
const model = fixedAdaptive(layout);
const P = model.adaptiveSize;
const adapter = (opts: FixedAdaptiveAdapterOptions = {}): FixedAdaptiveAdapter => new FixedAdaptiveAdapter(model, layout, 'fa/test', opts);

/** The first event of each of the first `n` users: a batch of distinct users. */
function firstEvents(n: number): LabelledEvent[] {
  const seen = new Set<string>();
  return events.filter((e) => !seen.has(e.userId) && seen.add(e.userId)).slice(0, n);
}

/** Offset of the adaptive params in a state, after the bias view [b, s]. */
const O = 2;

void test('identity, state size D+3 ([b, s, θ]), and a new user starts at bias 0 and the meta-learned init fa.init', () => {
  const a = adapter();
  assert.deepEqual([a.name, a.side, a.release, a.stateSize, a.viewSize, a.hasBaseline], ['fixed-adaptive', 'user', 'fa/test', model.backbone.dim + 3, 2, true]);
  const st = a.initialState(events[0]!);
  assert.deepEqual([...st], [0, 0, ...model.meta.get('fa.init').data]);
  st[O] = 42; // a copy, not the release's array
  assert.notEqual(model.meta.get('fa.init').data[0], 42);
});

void test('batched waves (and chunked passes) equal one event at a time, to 1e-5', () => {
  const seq = sequentialRun(adapter(), events);
  const waved = wavedRun(adapter({ chunkRows: 7 }), events, 64);
  assert.ok(maxAbsDiff(seq.scores, waved.scores) < 1e-5, `scores differ by ${maxAbsDiff(seq.scores, waved.scores)}`);
  assert.ok(maxStateDiff(seq.states, waved.states) < 1e-5, `states differ by ${maxStateDiff(seq.states, waved.states)}`);
});

void test('scores are pre-adaptation and the first step is exactly −fa.lr ⊙ gradient (model.userGradients)', () => {
  const a = adapter();
  const evs = firstEvents(20);
  const rows = new EventEncoder(layout).encode(evs);
  const init = model.initUsers(evs.length);
  const expectScores = model.predict(rows, init);
  const { grads } = model.userGradients(rows, init, evs.length);
  const states = evs.map((e) => a.initialState(e));
  const scores = a.predictThenAdapt({ events: evs, states });
  assert.ok(maxAbsDiff(scores, expectScores) < 1e-5, `pre-adaptation scores vs model.predict: ${maxAbsDiff(scores, expectScores)}`);
  const lr = model.meta.get('fa.lr').data;
  let maxErr = 0;
  let maxStep = 0;
  states.forEach((st, u) => {
    for (let k = 0; k < P; k++) {
      const want = -lr[k]! * grads[u * P + k]!;
      const got = st[O + k]! - init[u * P + k]!;
      maxErr = Math.max(maxErr, Math.abs(got - want));
      maxStep = Math.max(maxStep, Math.abs(want));
    }
  });
  assert.ok(maxStep > 1e-3, `the step is not trivially zero (${maxStep})`);
  assert.ok(maxErr < 1e-5, `step vs −fa.lr ⊙ gradient: ${maxErr}`);
  // The step lowers each event's own loss: scores move towards the labels.
  const after = a.predict({ events: evs, states });
  evs.forEach((e, i) => assert.ok(e.label === 1 ? after[i]! > scores[i]! : after[i]! < scores[i]!, `event ${i} (label ${e.label}) moved the wrong way`));
});

void test('lrScale scales every step; 0 keeps users at fa.init', () => {
  const evs = firstEvents(10);
  const step = (lrScale: number): Float32Array[] => {
    const a = adapter({ lrScale });
    const states = evs.map((e) => a.initialState(e));
    a.predictThenAdapt({ events: evs, states });
    return states.map((st, i) => st.map((v, k) => v - a.initialState(evs[i]!)[k]!));
  };
  const one = step(1);
  const half = step(0.5);
  one.forEach((d, i) =>
    assert.ok(
      maxAbsDiff(
        d.map((v) => v * 0.5),
        half[i]!,
      ) < 1e-6,
    ),
  );
  assert.ok(step(0).every((d) => d.every((v) => v === 0)));
});

void test('the shared fixed part and the meta params are byte-identical after a stream of adaptations', () => {
  const snap = (): Buffer[] => [
    Buffer.from(model.table.data.slice().buffer),
    ...model.backbone.dense.names().map((n) => Buffer.from(model.backbone.dense.get(n).data.slice().buffer)),
    ...model.meta.names().map((n) => Buffer.from(model.meta.get(n).data.slice().buffer)),
  ];
  const before = snap();
  const { states } = wavedRun(adapter(), events, 100);
  assert.ok(
    [...states.values()].some((st) => maxAbsDiff(st, model.meta.get('fa.init').data) > 1e-3),
    'users did adapt',
  );
  const after = snap();
  before.forEach((b, i) => assert.ok(b.equals(after[i]!), `shared tensor ${i} changed`));
});

void test('a user without profile features is scored and adapted', () => {
  const a = adapter();
  const bare: LabelledEvent = { ...events[0]!, eventId: 'bare', userFeatures: {} };
  const st = a.initialState(bare);
  const p = a.predictThenAdapt({ events: [bare], states: [st] })[0]!;
  assert.ok(p > 0 && p < 1);
  assert.ok(maxAbsDiff(st, model.meta.get('fa.init').data) > 0);
});

void test('options and inputs are validated', () => {
  for (const lrScale of [-0.1, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => adapter({ lrScale }), ConfigError);
  for (const chunkRows of [0, 2.5]) assert.throws(() => adapter({ chunkRows }), ConfigError);
  assert.throws(
    () => new FixedAdaptiveAdapter(model, inferEventLayout('item', events, { vocab: 4096 }), 'x'),
    (e: unknown) => e instanceof ThawError && e.code === 'RELEASE_INCOMPATIBLE',
  );
  assert.throws(
    () => new FixedAdaptiveAdapter(model, { ...layout, vocab: 999 }, 'x'),
    (e: unknown) => e instanceof ThawError && e.code === 'RELEASE_INCOMPATIBLE',
  );
  const a = adapter();
  assert.throws(
    () => a.predictThenAdapt({ events: [events[0]!], states: [new Float32Array(P + 1)] }),
    (e: unknown) => e instanceof ThawError && e.code === 'STATE_CORRUPT',
  );
  assert.equal(a.predict({ events: [], states: [] }).length, 0);
});
