import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EmergAdapter, EMERG_ADAPTER_DEFAULTS, EMERG_FAST_MAX_ROWS } from '../../../adapters/emerg.js';
import { ConfigError } from '../../../lib/errors.js';
import { initBackend } from '../../../models/backend.js';
import { Emerg } from '../../../models/emerg.js';
import { fieldLayoutOf, inferEventLayout } from '../../../models/event-layout.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { distinctItems, streamEvents } from './emerg-fixture.js';

await initBackend('cpu');

const events = streamEvents(1500, 11);
const layout = inferEventLayout('item', events, { vocab: 2048, maxSlots: 3 });

/** A random EmerG whose table is scaled up so activations (and gradients) are far from zero. */
function model(firstOrder: boolean, seed: number, layers = 3): Emerg {
  const m = new Emerg({ layout: fieldLayoutOf(layout), vocab: layout.vocab, dim: 8, layers, genHidden: 8, seed, firstOrder });
  for (let i = 0; i < m.table.data.length; i++) m.table.data[i] = m.table.data[i]! * 40;
  return m;
}

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    const tol = 1e-5 * Math.max(1, Math.abs(b[i]!));
    assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

/** Waves as a worker makes them: wave k holds the k-th later event of each of `items`. */
function waves(items: readonly LabelledEvent[], rounds: number): LabelledEvent[][] {
  const ids = items.map((e) => e.itemId);
  const later = ids.map((id) => events.filter((e) => e.itemId === id).slice(1));
  return Array.from({ length: rounds }, (_, k) => later.map((l, j) => ({ ...(l[k] ?? items[j]!), itemId: ids[j]! })));
}

test('the layout has a multi-valued (bag) field', () => {
  assert.ok(layout.fields.some((f) => f.slots > 1));
});

// 3 layers: the hand path's 3-token blocks; 2 and 4: its remainder loop.
for (const [firstOrder, layers] of [
  [true, 3],
  [false, 3],
  [true, 2],
  [false, 4],
] as const) {
  test(`hand path = TensorFlow.js path: scores and adapted states over several waves (firstOrder ${firstOrder}, ${layers} layers)`, () => {
    const m = model(firstOrder, firstOrder ? 3 : 4, layers);
    const hand = new EmergAdapter(m, layout, 'emerg/v1', { fastMaxRows: 1000, l2: 0.05 });
    const tfPath = new EmergAdapter(m, layout, 'emerg/v1', { fastMaxRows: 0, l2: 0.05 });
    const items = distinctItems(events, 12);
    const sHand = hand.initialStates(items);
    const sTf = sHand.map((s) => Float32Array.from(s));
    const start = sHand.map((s) => Float32Array.from(s));
    const labels = new Set<number>();
    for (const [k, wave] of waves(items, 4).entries()) {
      for (const e of wave) labels.add(e.label);
      assertClose(hand.predict({ events: wave, states: sHand }), tfPath.predict({ events: wave, states: sTf }), `predict, wave ${k}`);
      const pHand = hand.predictThenAdapt({ events: wave, states: sHand });
      const pTf = tfPath.predictThenAdapt({ events: wave, states: sTf });
      assertClose(pHand, pTf, `scores, wave ${k}`);
      sHand.forEach((s, j) => assertClose(s, sTf[j]!, `state ${j} after wave ${k}`));
    }
    assert.deepEqual([...labels].sort(), [0, 1], 'both labels occur');
    // The steps moved both the ID embedding and the graph of every item.
    const W = m.width;
    const G = m.graphSize;
    sHand.forEach((s, j) => {
      const moved = (from: number, len: number): number => Math.max(...Array.from({ length: len }, (_, i) => Math.abs(s[from + i]! - start[j]![from + i]!)));
      // After the bias view [b, s].
      assert.ok(moved(2, W) > 1e-4, `item ${j}: e moved`);
      assert.ok(moved(2 + W, G) > 1e-4, `item ${j}: A moved`);
    });
  });
}

test('hand path = TensorFlow.js path with the bias terms: scores, baselines and states (biases learned, other sides read)', () => {
  const prior = { user: { variance: 0.4, drift: 0.01 }, item: { variance: 0.6, drift: 0.02 } };
  for (const firstOrder of [true, false]) {
    const m = model(firstOrder, 7);
    const hand = new EmergAdapter(m, layout, 'emerg/v1', { fastMaxRows: 1000 }, prior);
    const tfPath = new EmergAdapter(m, layout, 'emerg/v1', { fastMaxRows: 0 }, prior);
    const items = distinctItems(events, 12);
    const sHand = hand.initialStates(items);
    const sTf = sHand.map((s) => Float32Array.from(s));
    for (const [k, wave] of waves(items, 4).entries()) {
      const others = wave.map((_, j) => (j % 3 === 2 ? undefined : Float32Array.of(0.5 * Math.cos(j + k), 0.1, 0.2)));
      assertClose(hand.predict({ events: wave, states: sHand, others }), tfPath.predict({ events: wave, states: sTf, others }), `predict, wave ${k}`);
      const bHand = new Float32Array(wave.length);
      const bTf = new Float32Array(wave.length);
      assertClose(hand.predictThenAdapt({ events: wave, states: sHand, others, baseline: bHand }), tfPath.predictThenAdapt({ events: wave, states: sTf, others, baseline: bTf }), `scores, wave ${k}`);
      assertClose(bHand, bTf, `baselines, wave ${k}`);
      sHand.forEach((s, j) => assertClose(s, sTf[j]!, `state ${j} after wave ${k}`));
    }
    assert.ok(
      sHand.some((s) => Math.abs(s[0] ?? 0) > 0.05),
      'item biases moved',
    );
  }
});

test('a wave larger than fastMaxRows runs TensorFlow.js; the split changes nothing', () => {
  const m = model(true, 5);
  const items = distinctItems(events, 20);
  const mixed = new EmergAdapter(m, layout, 'emerg/v1', { fastMaxRows: 8 });
  const tfOnly = new EmergAdapter(m, layout, 'emerg/v1', { fastMaxRows: 0 });
  const a = mixed.initialStates(items);
  const b = a.map((s) => Float32Array.from(s));
  for (const wave of waves(items, 2)) {
    for (const part of [wave.slice(0, 5), wave]) {
      const sa = a.slice(0, part.length);
      const sb = b.slice(0, part.length);
      assertClose(mixed.predictThenAdapt({ events: part, states: sa }), tfOnly.predictThenAdapt({ events: part, states: sb }), 'scores');
    }
  }
  a.forEach((s, j) => assertClose(s, b[j]!, `state ${j}`));
});

test('fastMaxRows: default and validation', () => {
  assert.equal(EMERG_ADAPTER_DEFAULTS.fastMaxRows, EMERG_FAST_MAX_ROWS);
  const m = model(true, 6);
  assert.throws(
    () => new EmergAdapter(m, layout, 'emerg/v1', { fastMaxRows: -1 }),
    (e: unknown) => e instanceof ConfigError && /emerg\.fastMaxRows/.test(e.message),
  );
  assert.throws(() => new EmergAdapter(m, layout, 'emerg/v1', { fastMaxRows: 1.5 }), ConfigError);
});
