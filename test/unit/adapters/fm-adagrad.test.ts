import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SyntheticStream } from '../../../sources/synthetic.js';
import { auc, trainFm } from '../../../trainers/fm-trainer.js';
import { ADAPTER_NAMES, createAdapter } from '../../../adapters/registry.js';
import { FmAdagradAdapter } from '../../../adapters/fm-adagrad.js';
import { NoneAdapter } from '../../../adapters/none.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import type { Adapter } from '../../../adapters/types.js';
import type { LabelledEvent } from '../../../schemas/types.js';

// One stream: the first PREFIX events train the shared FM (hot items only); the rest is the
// held-out online part, where new items arrive and adapters are judged prequentially.
const TOTAL = 250_000;
const PREFIX = 100_000;
let events: LabelledEvent[] = [];
let model: FactorizationMachine;

before(async () => {
  events = [...new SyntheticStream({ seed: 11, events: TOTAL, users: 5000, items: 3000, newEntityFraction: 0.6 }).events()];
  const r = await trainFm(events.slice(0, PREFIX), { side: 'item', epochs: 2, minCount: 20, seed: 11 });
  model = r.model;
});

/** Prequential run over the held-out part; AUC of items new after the prefix, by prior count. */
function warmup(adapter: Adapter): { early: number; late: number; cold: number; nEarly: number } {
  const seen = new Set(events.slice(0, PREFIX).map((e) => e.itemId));
  const states = new Map<string, Float32Array>();
  const counts = new Map<string, number>();
  const b = { cold: { p: [] as number[], y: [] as number[] }, early: { p: [] as number[], y: [] as number[] }, late: { p: [] as number[], y: [] as number[] } };
  for (let j = PREFIX; j < TOTAL; j++) {
    const e = events[j]!;
    let st = states.get(e.itemId);
    if (!st) states.set(e.itemId, (st = adapter.initialState(e)));
    const prior = counts.get(e.itemId) ?? 0;
    counts.set(e.itemId, prior + 1);
    const p = adapter.predictThenAdapt({ events: [e], states: [st] })[0]!;
    if (seen.has(e.itemId)) continue;
    const bucket = prior === 0 ? b.cold : prior <= 20 ? b.early : b.late;
    bucket.p.push(p);
    bucket.y.push(e.label);
  }
  return { cold: auc(b.cold.p, b.cold.y), early: auc(b.early.p, b.early.y), late: auc(b.late.p, b.late.y), nEarly: b.early.p.length };
}

void test('fm-adagrad beats none on new items with 1–20 prior interactions (prequential, held-out)', () => {
  const none = warmup(createAdapter('none', 'item', model));
  const ada = warmup(createAdapter('fm-adagrad', 'item', model));
  console.log(`none ${JSON.stringify(none)}\nfm-adagrad ${JSON.stringify(ada)}`);
  assert.ok(ada.nEarly > 5000, `only ${ada.nEarly} early events`);
  // Same shared model, same cold start: identical at prior count 0.
  assert.equal(ada.cold, none.cold);
  assert.ok(none.early > 0.55, `the shared model alone should carry feature signal (${none.early})`);
  assert.ok(ada.early > none.early + 0.01, `early AUC: fm-adagrad ${ada.early} vs none ${none.early}`);
  assert.ok(ada.late > none.late + 0.05, `late AUC: fm-adagrad ${ada.late} vs none ${none.late}`);
});

function eventOf(itemId: string, label: 0 | 1): LabelledEvent {
  return { ...events[PREFIX]!, itemId, label };
}

void test('predict does not mutate states; predictThenAdapt returns the pre-adaptation score', () => {
  const ad = createAdapter('fm-adagrad', 'item', model);
  const evs = [eventOf('a', 1), eventOf('b', 0), eventOf('c', 1)];
  const states = evs.map((e) => ad.initialState(e));
  states[2]![0] = 0.7; // a non-initial state too
  const before = states.map((s) => Float32Array.from(s));
  const p1 = ad.predict({ events: evs, states });
  assert.deepEqual(states, before);
  const p2 = ad.predictThenAdapt({ events: evs, states });
  assert.deepEqual(p2, p1);
  assert.notDeepEqual(states, before);
  const p3 = ad.predict({ events: evs, states });
  // Learning moved each score towards its label.
  assert.ok(p3[0]! > p1[0]! && p3[1]! < p1[1]! && p3[2]! > p1[2]!);
});

void test('state layout [e(k), b, Ge(k), Gb]', () => {
  const k = model.k;
  const ad = new FmAdagradAdapter('item', model, { initialAccumulator: 0.5 });
  assert.equal(ad.stateSize, 2 * k + 2);
  const ev = eventOf('x', 1);
  const st = ad.initialState(ev);
  assert.deepEqual(st.subarray(0, k), model.entityInit);
  assert.equal(st[k], Math.fround(model.entityBiasInit));
  assert.ok(st.subarray(k + 1).every((g) => g === 0.5));
  const p = ad.predictThenAdapt({ events: [ev], states: [st] })[0]!;
  // Gb grew by the squared bias gradient (p − 1)², the bias moved up by lr·|g|/√Gb.
  assert.ok(Math.abs(st[2 * k + 1]! - (0.5 + (p - 1) ** 2)) < 1e-5);
  assert.ok(st[k]! > model.entityBiasInit);
  const zero = new FmAdagradAdapter('item', model, { init: 'zero' }).initialState(ev);
  assert.ok(zero.subarray(0, k + 1).every((x) => x === 0));
});

void test('none: stateless, the shared model with the cold-entity init', () => {
  const none = createAdapter('none', 'user', model);
  assert.ok(none instanceof NoneAdapter);
  assert.equal(none.stateSize, 0);
  assert.equal(none.release, model.release);
  const evs = [eventOf('a', 1), eventOf('b', 0)];
  const states = evs.map((e) => none.initialState(e));
  assert.deepEqual(none.predictThenAdapt({ events: evs, states }), none.predict({ events: evs, states }));
  const ada = createAdapter('fm-adagrad', 'item', model);
  assert.deepEqual(none.predict({ events: evs, states }), ada.predict({ events: evs, states: evs.map((e) => ada.initialState(e)) }));
});

void test('registry and validation', () => {
  assert.deepEqual([...ADAPTER_NAMES], ['none', 'fm-adagrad', 'emerg', 'coldnas', 'fixed-adaptive']);
  assert.throws(() => createAdapter('emerg?', 'item', model), (e: unknown) => e instanceof ConfigError && e.key === 'adapter');
  assert.throws(() => createAdapter('fm-adagrad', 'item', model, { learningRate: 0 }), (e: unknown) => e instanceof ConfigError && e.key === 'fm-adagrad.learningRate');
  assert.throws(() => createAdapter('fm-adagrad', 'user', model), (e: unknown) => e instanceof ThawError && e.code === 'RELEASE_INCOMPATIBLE');
  assert.throws(() => createAdapter('fm-adagrad', 'item', model, { l2: -1 }), (e: unknown) => e instanceof ConfigError && e.key === 'fm-adagrad.l2');
  const ad = createAdapter('fm-adagrad', 'item', model);
  const ev = eventOf('a', 1);
  assert.throws(() => ad.predict({ events: [ev], states: [] }), (e: unknown) => e instanceof ThawError && e.code === 'MODEL_ERROR');
  assert.throws(() => ad.predictThenAdapt({ events: [ev], states: [new Float32Array(3)] }), (e: unknown) => e instanceof ThawError && e.code === 'STATE_CORRUPT');
});
