import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { EmergAdapter, EMERG_ADAPTER_DEFAULTS } from '../../../adapters/emerg.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { decodeState, encodeState } from '../../../model-store/state-codec.js';
import { initBackend } from '../../../models/backend.js';
import { EventEncoder, inferEventLayout } from '../../../models/event-layout.js';
import { distinctItems, emergFixture } from './emerg-fixture.js';

await initBackend('cpu');

const { model, layout, events } = emergFixture();
const W = model.width;
const G = model.graphSize;
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void => {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
};
const bce = (p: number, y: number): number => -(y * Math.log(p) + (1 - y) * Math.log(1 - p));

/** Offset of the adapter's own params in a state, after the bias view [b, s]. */
const O = 2;

test('state layout: [b, s], then 2W + 2G + 2 floats', () => {
  const ad = new EmergAdapter(model, layout, 'emerg/v1');
  assert.equal(ad.stateSize, O + 2 * W + 2 * G + 2);
  assert.equal(ad.viewSize, O);
  assert.equal(ad.hasBaseline, true);
  assert.equal(ad.name, 'emerg');
  assert.equal(ad.side, 'item');
  assert.equal(ad.release, 'emerg/v1');
});

test('new items get the hypernetwork graph and the generated ID embedding from their first event', () => {
  const ad = new EmergAdapter(model, layout, 'emerg/v1', { initialAccumulator: 0.5 });
  const firsts = distinctItems(events, 12);
  const states = ad.initialStates(firsts);
  const rows = new EventEncoder(layout).encode(firsts);
  const [ids, graphs] = tf.tidy(() => {
    const p = model.dense.tensors();
    const pooled = model.pooledOf(rows);
    return [model.generateIdEmb(p, pooled).dataSync(), model.generateGraph(p, pooled).dataSync()];
  });
  states.forEach((st, i) => {
    assert.deepEqual([st[0], st[1]], [0, 0], 'bias 0; a release without a bias filter prior: variance 0');
    const e = st.subarray(O, O + W);
    const a = st.subarray(O + W, O + W + G);
    close(e, ids.subarray(i * W, i * W + W), 1e-6, `id of item ${i}`);
    close(a, graphs.subarray(i * G, i * G + G), 1e-6, `graph of item ${i}`);
    assert.ok(
      a.some((v) => Math.abs(v) > 1e-3),
      'graph is not zeros',
    );
    close(st.subarray(O + W + G, O + 2 * W + G), e, 0, 'anchor e0');
    close(st.subarray(O + 2 * W + G, O + 2 * W + 2 * G), a, 0, 'anchor A0');
    assert.deepEqual([st[O + 2 * W + 2 * G], st[O + 2 * W + 2 * G + 1]], [0.5, 0.5]);
  });
  // Items with different features get different graphs; initialState is the batched call on one event.
  const differ = firsts.findIndex((e) => JSON.stringify(e.itemFeatures) !== JSON.stringify(firsts[0]!.itemFeatures));
  assert.ok(differ > 0);
  assert.notDeepEqual([...states[0]!.subarray(O + W, O + W + G)], [...states[differ]!.subarray(O + W, O + W + G)]);
  close(ad.initialState(firsts[3]!), states[3]!, 1e-6, 'initialState');
});

test('batched predictThenAdapt over N distinct items equals N single-item calls', () => {
  const ad = new EmergAdapter(model, layout, 'emerg/v1', { learningRate: 0.5 });
  const firsts = distinctItems(events, 16);
  // Later events of the same items, so states and labels vary: two rounds.
  const batched = ad.initialStates(firsts);
  const single = batched.map((s) => s.slice());
  for (let round = 0; round < 2; round++) {
    const evs = firsts.map((e, i) => ({ ...e, label: (i + round) % 3 === 0 ? (1 as const) : (0 as const) }));
    const sb = ad.predictThenAdapt({ events: evs, states: batched });
    const ss = evs.map((e, i) => ad.predictThenAdapt({ events: [e], states: [single[i]!] })[0]!);
    close(sb, ss, 1e-5, `scores round ${round}`);
    batched.forEach((s, i) => close(s, single[i]!, 1e-5, `state ${i} round ${round}`));
  }
});

test('returned scores are the pre-adaptation ones, and adaptation lowers each event loss', () => {
  for (const optimizer of ['adagrad', 'sgd'] as const) {
    const ad = new EmergAdapter(model, layout, 'emerg/v1', { optimizer, learningRate: 0.1 });
    const firsts = distinctItems(events, 20).map((e, i) => ({ ...e, label: i % 2 === 0 ? (0 as const) : (1 as const) }));
    const states = ad.initialStates(firsts);
    const before = ad.predict({ events: firsts, states });
    const copy = states.map((s) => s.slice());
    const scores = ad.predictThenAdapt({ events: firsts, states });
    close(scores, before, 1e-6, 'pre-adaptation scores');
    assert.ok(
      states.some((s, i) => s.some((v, k) => v !== copy[i]![k])),
      'states moved',
    );
    const after = ad.predict({ events: firsts, states });
    firsts.forEach((e, i) => assert.ok(bce(after[i]!, e.label) < bce(before[i]!, e.label), `${optimizer}: loss of event ${i}: ${bce(before[i]!, e.label)} -> ${bce(after[i]!, e.label)}`));
    // The graph moved too (graphLrScale 1), and the accumulators grew under adagrad only.
    assert.ok(
      states.some((s, i) => s.subarray(O + W, O + W + G).some((v, k) => v !== copy[i]![O + W + k])),
      'graph adapted',
    );
    const acc = states[0]![O + 2 * W + 2 * G]!;
    if (optimizer === 'adagrad') assert.ok(acc > EMERG_ADAPTER_DEFAULTS.initialAccumulator);
    else assert.equal(acc, EMERG_ADAPTER_DEFAULTS.initialAccumulator);
  }
});

test('graphLrScale 0 keeps the generated graph', () => {
  const ad = new EmergAdapter(model, layout, 'emerg/v1', { graphLrScale: 0 });
  const firsts = distinctItems(events, 5);
  const states = ad.initialStates(firsts);
  const graphs = states.map((s) => s.slice(O + W, O + W + G));
  ad.predictThenAdapt({ events: firsts, states });
  states.forEach((s, i) => assert.deepEqual(s.slice(O + W, O + W + G), graphs[i]));
});

test('state round-trips through the state codec and adaptation continues identically', () => {
  const ad = new EmergAdapter(model, layout, 'emerg/v1');
  const firsts = distinctItems(events, 6);
  const states = ad.initialStates(firsts);
  ad.predictThenAdapt({ events: firsts, states });
  const decoded = states.map((params) => decodeState(encodeState({ count: 1, lastOffset: 3, lastEventMs: 5, params })).params);
  decoded.forEach((d, i) => assert.deepEqual(d, states[i]));
  const a = ad.predictThenAdapt({ events: firsts, states });
  const b = ad.predictThenAdapt({ events: firsts, states: decoded });
  assert.deepEqual(a, b);
  decoded.forEach((d, i) => assert.deepEqual(d, states[i]));
});

test('options are validated; a bad state or a layout of another model is refused', () => {
  const bad: [object, string][] = [
    [{ learningRate: 0 }, 'emerg.learningRate'],
    [{ learningRate: Number.NaN }, 'emerg.learningRate'],
    [{ graphLrScale: -1 }, 'emerg.graphLrScale'],
    [{ l2: -0.1 }, 'emerg.l2'],
    [{ initialAccumulator: 0 }, 'emerg.initialAccumulator'],
    [{ optimizer: 'adam' }, 'emerg.optimizer'],
  ];
  for (const [opts, key] of bad) {
    assert.throws(
      () => new EmergAdapter(model, layout, 'r', opts),
      (e: unknown) => e instanceof ConfigError && e.key === key,
      key,
    );
  }
  const ad = new EmergAdapter(model, layout, 'r');
  const ev = events[0]!;
  assert.throws(
    () => ad.predict({ events: [ev], states: [new Float32Array(3)] }),
    (e: unknown) => e instanceof ThawError && e.code === 'STATE_CORRUPT',
  );
  assert.throws(
    () => ad.predictThenAdapt({ events: [ev], states: [] }),
    (e: unknown) => e instanceof ThawError && e.code === 'MODEL_ERROR',
  );
  const userLayout = inferEventLayout('user', events, { vocab: layout.vocab, maxSlots: 3 });
  assert.throws(
    () => new EmergAdapter(model, userLayout, 'r'),
    (e: unknown) => e instanceof ThawError && e.code === 'RELEASE_INCOMPATIBLE',
  );
  assert.throws(
    () => new EmergAdapter(model, { ...layout, vocab: 99 }, 'r'),
    (e: unknown) => e instanceof ThawError && e.code === 'RELEASE_INCOMPATIBLE',
  );
  assert.deepEqual(ad.predictThenAdapt({ events: [], states: [] }), new Float32Array(0));
});
