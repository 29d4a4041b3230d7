/**
 * Frozen release weights (ParamSet.freeze) and the adapters' typed-array hand paths for small waves
 * (adapters/fast/*): same results as the TensorFlow.js path, no tensor growth across calls or
 * across adapters retired with dispose().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { ColdNasAdapter } from '../../../adapters/coldnas.js';
import { EmergAdapter } from '../../../adapters/emerg.js';
import { FixedAdaptiveFastPath } from '../../../adapters/fast/fixed-adaptive.js';
import { FixedAdaptiveAdapter } from '../../../adapters/fixed-adaptive.js';
import { FrozenAdapter } from '../../../adapters/frozen.js';
import type { Adapter } from '../../../adapters/types.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { initBackend } from '../../../models/backend.js';
import { ColdNas } from '../../../models/coldnas.js';
import type { ForwardInputs } from '../../../models/ctr-model.js';
import { EventEncoder, fieldLayoutOf } from '../../../models/event-layout.js';
import { FixedAdaptive } from '../../../models/fixed-adaptive.js';
import { DenseAdam, ParamSet } from '../../../models/params.js';
import { Rng } from '../../../models/rng.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { distinctItems, emergFixture } from './emerg-fixture.js';
import { coldNas, fixedAdaptive, maxAbsDiff, maxStateDiff, userEvents, userLayout, wavedRun } from './user-fixtures.js';

await initBackend('wasm');

const events = userEvents(400, 3);
const layout = userLayout(events);
const isModelError = (e: unknown): boolean => e instanceof ThawError && e.code === 'MODEL_ERROR';

/** The first event of each of `n` distinct users. */
function distinctUsers(evs: readonly LabelledEvent[], n: number): LabelledEvent[] {
  const seen = new Set<string>();
  return evs.filter((e) => !seen.has(e.userId) && seen.add(e.userId)).slice(0, n);
}

/** States after some adaptation (biases included), so the parity covers non-initial states. */
function warmStates(a: Adapter, evs: readonly LabelledEvent[]): Float32Array[] {
  const states = evs.map((e) => a.initialState(e));
  for (let k = 0; k < 3; k++) a.predictThenAdapt({ events: evs, states, others: views(evs.length) });
  return states;
}

/** The bias filter's prior of the releases here (the adapters learn biases with it). */
const PRIOR = { user: { variance: 0.5, drift: 0.01 }, item: { variance: 0.3, drift: 0.02 } };

/** Other-side views of a wave: `[b, s, …]`, every third entity cold. */
function views(n: number): (Float32Array | undefined)[] {
  return Array.from({ length: n }, (_, j) => (j % 3 === 2 ? undefined : Float32Array.of(0.6 * Math.sin(j + 1), 0.1, 0.3)));
}

/**
 * predictThenAdapt of the same wave on copies of the same states by two adapters, with other-side
 * views: the largest differences of scores, states and baselines.
 */
function parity(a: Adapter, b: Adapter, evs: readonly LabelledEvent[], states: readonly Float32Array[]): { scores: number; states: number; baselines: number } {
  const sa = states.map((s) => s.slice());
  const sb = states.map((s) => s.slice());
  const others = views(evs.length);
  const ba = new Float32Array(evs.length);
  const bb = new Float32Array(evs.length);
  const pa = a.predictThenAdapt({ events: evs, states: sa, others, baseline: ba });
  const pb = b.predictThenAdapt({ events: evs, states: sb, others, baseline: bb });
  let sd = 0;
  sa.forEach((s, i) => (sd = Math.max(sd, maxAbsDiff(s, sb[i]!))));
  return { scores: maxAbsDiff(pa, pb), states: sd, baselines: maxAbsDiff(ba, bb) };
}

void test('a frozen ParamSet returns kept tensors, refuses mutation, and disposes them', () => {
  const p = new ParamSet();
  p.add('w', [2, 2], Float32Array.of(1, 2, 3, 4));
  p.add('b', [2], Float32Array.of(5, 6));
  const fresh = p.tensors();
  assert.notEqual(fresh['w'], p.tensors()['w'], 'unfrozen: a new tensor per call');
  tf.dispose(Object.values(fresh));
  assert.equal(p.freeze(), p);
  const before = tf.memory().numTensors;
  const t1 = tf.tidy(() => p.tensors()['w']!.add(1));
  const t2 = p.tensors(['b']);
  assert.equal(tf.memory().numTensors, before + 2 + 1, 'params created once (2) + the tidy result (1)');
  assert.equal(tf.tidy(() => p.tensors())['w'], p.tensors()['w'], 'tidy does not dispose the kept tensors');
  assert.deepEqual([...t1.dataSync()], [2, 3, 4, 5]);
  assert.deepEqual(Object.keys(t2), ['b']);
  t1.dispose();
  assert.throws(() => p.tensors(['nope']), isModelError);
  assert.throws(() => p.add('x', [1], Float32Array.of(0)), isModelError);
  assert.throws(() => new DenseAdam(0.1).apply(p, new Map([['w', new Float32Array(4)]])), isModelError);
  assert.deepEqual([...p.get('w').data], [1, 2, 3, 4], 'a refused step changes nothing');
  assert.equal(p.clone().frozen, false, 'a clone is trainable');
  p.dispose();
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual([...p.tensors()['b']!.dataSync()], [5, 6], 'usable after dispose (re-created)');
  p.dispose();
  assert.equal(tf.memory().numTensors, before);
});

void test('emerg: scores with frozen weights equal the unfrozen model to 1e-6; the model refuses training', () => {
  const { model, layout: itemLayout, events: evs } = emergFixture(9);
  const { model: twin } = emergFixture(9);
  const wave = distinctItems(evs, 12);
  const ad = new EmergAdapter(model, itemLayout, 'emerg/v1');
  assert.equal(model.dense.frozen, true);
  assert.equal(twin.dense.frozen, false);
  const states = ad.initialStates(wave);
  const w = model.width;
  const g = model.graphSize;
  const ent = { count: wave.length, idEmb: new Float32Array(wave.length * w), graph: new Float32Array(wave.length * g) };
  // After the bias view [b, s]: e, then A.
  states.forEach((s, j) => {
    ent.idEmb.set(s.subarray(2, 2 + w), j * w);
    ent.graph.set(s.subarray(2 + w, 2 + w + g), j * g);
  });
  const rows = new EventEncoder(itemLayout).encode(wave);
  const ref = twin.predict(rows, ent);
  for (let k = 0; k < 3; k++) assert.ok(maxAbsDiff(ad.predict({ events: wave, states }), ref) < 1e-6);
  assert.throws(() => new DenseAdam(0.1).apply(model.dense, new Map([['out.bias', new Float32Array(1)]])), isModelError);
  ad.dispose();
});

void test('coldnas: the hand path equals the tf path to 1e-5 (fixed structure and supernet)', () => {
  const fixed = coldNas(layout);
  const supernet = new ColdNas({ layout: fieldLayoutOf(layout), vocab: layout.vocab, seed: 4 });
  const rng = new Rng(4);
  for (const n of supernet.dense.names()) rng.fillUniform(supernet.dense.get(n).data, 0.3);
  rng.fillUniform(supernet.table.data, 0.3);
  rng.fillUniform(supernet.arch.get('cn.alpha').data, 2);
  for (const m of [fixed, supernet]) {
    const tfPath = new ColdNasAdapter(m, layout, 'c', { fastMaxRows: 0 }, PRIOR);
    const hand = new ColdNasAdapter(m, layout, 'c', { fastMaxRows: 1_000 }, PRIOR);
    const wave = distinctUsers(events, 16);
    const states = warmStates(tfPath, wave);
    assert.ok(
      states.some((s) => Math.abs(s[0] ?? 0) > 0.01),
      'the user biases moved',
    );
    const d = parity(tfPath, hand, wave, states);
    assert.ok(d.scores < 1e-5 && d.states < 1e-5 && d.baselines < 1e-5, `${m.structure === undefined ? 'supernet' : 'fixed'}: scores ${d.scores}, states ${d.states}, baselines ${d.baselines}`);
    assert.ok(maxAbsDiff(tfPath.predict({ events: wave, states }), hand.predict({ events: wave, states })) < 1e-5);
    // Whole streams in waves (small ones take the hand path by default) agree too.
    const a = wavedRun(new ColdNasAdapter(m, layout, 'c', { fastMaxRows: 0 }), events, 64);
    const b = wavedRun(new ColdNasAdapter(m, layout, 'c'), events, 64);
    assert.ok(maxAbsDiff(a.scores, b.scores) < 1e-5 && maxStateDiff(a.states, b.states) < 1e-5);
    tfPath.dispose();
  }
});

void test('fixed-adaptive: the hand path logits and ∂z/∂θ equal tf.valueAndGrads to 1e-5', () => {
  for (const hidden of [[64, 32], [8], []] as const) {
    const m = new FixedAdaptive({ layout: fieldLayoutOf(layout), vocab: layout.vocab, hidden, seed: 8 });
    const rng = new Rng(8);
    rng.fillUniform(m.table.data, 0.3);
    for (const n of m.backbone.dense.names()) rng.fillUniform(m.backbone.dense.get(n).data, 0.3);
    const wave = distinctUsers(events, 9);
    const rows = new EventEncoder(layout).encode(wave);
    const ps = m.adaptiveSize;
    const users = rng.fillUniform(new Float32Array(wave.length * ps), 0.5);
    const bb = m.backbone;
    const [zT, gT] = tf.tidy(() => {
      const p = bb.dense.tensors();
      const pooled = bb.pooledOf(rows);
      const f = (x: tf.Tensor): tf.Tensor1D => bb.head(p, { pooled, id: x as tf.Tensor2D } satisfies ForwardInputs);
      const { value, grads } = tf.valueAndGrads(f)([tf.tensor2d(users, [wave.length, ps])], tf.ones([wave.length]));
      return [value.dataSync(), grads[0]!.dataSync()];
    });
    const z = new Float64Array(wave.length);
    const dz = new Float64Array(wave.length * ps);
    new FixedAdaptiveFastPath(bb).run(rows, users, z, dz);
    assert.ok(maxAbsDiff(z, zT) < 1e-5, `hidden [${hidden.join(',')}]: logits differ by ${maxAbsDiff(z, zT)}`);
    assert.ok(maxAbsDiff(dz, gT) < 1e-5, `hidden [${hidden.join(',')}]: gradients differ by ${maxAbsDiff(dz, gT)}`);
  }
});

void test('fixed-adaptive: adapter hand path equals the tf path to 1e-5, per wave and over a stream', () => {
  const m = fixedAdaptive(layout);
  const tfPath = new FixedAdaptiveAdapter(m, layout, 'fa', { fastMaxRows: 0 }, PRIOR);
  const hand = new FixedAdaptiveAdapter(m, layout, 'fa', { fastMaxRows: 64 }, PRIOR);
  const wave = distinctUsers(events, 16);
  const states = warmStates(tfPath, wave);
  assert.ok(
    states.some((s) => Math.abs(s[0] ?? 0) > 0.01),
    'the user biases moved',
  );
  const d = parity(tfPath, hand, wave, states);
  assert.ok(d.scores < 1e-5 && d.states < 1e-5 && d.baselines < 1e-5, `scores ${d.scores}, states ${d.states}, baselines ${d.baselines}`);
  const a = wavedRun(new FixedAdaptiveAdapter(m, layout, 'fa', { fastMaxRows: 0 }), events, 64);
  const b = wavedRun(new FixedAdaptiveAdapter(m, layout, 'fa'), events, 64);
  assert.ok(maxAbsDiff(a.scores, b.scores) < 1e-5 && maxStateDiff(a.states, b.states) < 1e-5);
  assert.equal(m.backbone.dense.frozen && m.meta.frozen, true);
  assert.throws(() => m.backbone.dense.add('fm.extra', [1], new Float32Array(1)), isModelError);
  tfPath.dispose();
});

void test('fastMaxRows is validated', () => {
  const m = coldNas(layout);
  assert.throws(
    () => new ColdNasAdapter(m, layout, 'c', { fastMaxRows: -1 }),
    (e: unknown) => e instanceof ConfigError && e.key === 'coldnas.fastMaxRows',
  );
  assert.throws(
    () => new FixedAdaptiveAdapter(fixedAdaptive(layout), layout, 'f', { fastMaxRows: 1.5 }),
    (e: unknown) => e instanceof ConfigError && e.key === 'fixed-adaptive.fastMaxRows',
  );
});

void test('tensor count does not grow across calls, nor across adapters retired with dispose()', () => {
  const { layout: itemLayout, events: evs } = emergFixture(9);
  const items = distinctItems(evs, 20);
  const users = distinctUsers(events, 20);
  const builders: [string, () => Adapter, LabelledEvent[]][] = [
    ['emerg', () => new EmergAdapter(emergFixture(9, evs).model, itemLayout, 'e'), items],
    ['none over emerg', () => new FrozenAdapter(new EmergAdapter(emergFixture(9, evs).model, itemLayout, 'e')), items],
    ['coldnas', () => new ColdNasAdapter(coldNas(layout), layout, 'c', { fastMaxRows: 0 }), users],
    ['fixed-adaptive', () => new FixedAdaptiveAdapter(fixedAdaptive(layout), layout, 'f', { fastMaxRows: 0 }), users],
  ];
  for (const [name, build, wave] of builders) {
    const base = tf.memory().numTensors;
    let first = -1;
    for (let release = 0; release < 4; release++) {
      const a = build();
      const states = a.initialStates?.(wave) ?? wave.map((e) => a.initialState(e));
      a.predictThenAdapt({ events: wave, states });
      const afterOne = tf.memory().numTensors;
      for (let k = 0; k < 10; k++) a.predictThenAdapt({ events: wave.slice(0, 1 + (k % wave.length)), states: states.slice(0, 1 + (k % wave.length)) });
      a.predict({ events: wave, states });
      assert.equal(tf.memory().numTensors, afterOne, `${name}: tensors grew across calls`);
      if (first < 0) first = afterOne;
      assert.equal(afterOne, first, `${name}: tensors grew across releases`);
      a.dispose?.();
      assert.equal(tf.memory().numTensors, base, `${name}: dispose left tensors`);
    }
  }
});
