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
  const r = await trainFm(events.slice(0, PREFIX), { epochs: 2, minCount: 20, seed: 11, biasFilter: { user: { variance: 0.5, drift: 0.01 }, item: { variance: 0.5, drift: 0.003 } } });
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
  // A non-initial state too: its lasting bias (and so its view's bias) at 0.7.
  const parts = 2 * model.k + 2;
  (states[2] as Float32Array)[parts] = 0.7;
  (states[2] as Float32Array)[0] = 0.7;
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

void test('state layout [view: b+f, s+s_f, e(k)], Ge(k), [b, s, f, s_f]: the bias filter and Adagrad on e', () => {
  const k = model.k;
  const ad = new FmAdagradAdapter('item', model, { initialAccumulator: 0.5, sessionDecay: 0.5, sessionVariance: 0.3 });
  assert.equal(ad.stateSize, 2 * k + 6);
  assert.equal(ad.viewSize, k + 2);
  const ev = eventOf('x', 1);
  const st = ad.initialState(ev);
  const prior = model.priors.item;
  const parts = 2 * k + 2;
  const sf0 = 0.3 / (1 - 0.25); // the session bias's stationary variance
  assert.equal(st[0], Math.fround(prior.bias));
  assert.equal(st[1], Math.fround(prior.biasVariance + sf0));
  assert.deepEqual(st.subarray(2, k + 2), prior.vector);
  assert.ok(st.subarray(k + 2, parts).every((g) => g === 0.5));
  assert.deepEqual([...st.subarray(parts)], [prior.bias, prior.biasVariance, 0, sf0].map(Math.fround));
  const p = ad.predictThenAdapt({ events: [ev], states: [st] })[0] ?? NaN;
  // A positive label moved both bias parts up by their Kalman gains and shrank their variances;
  // then the session part faded (×0.5) and gained its variance for the next event.
  const s0 = prior.biasVariance + prior.biasDrift;
  const h = Math.max(p * (1 - p), 0.01);
  const d = 1 + h * (s0 + sf0 + (model.coldView('user')[1] ?? 0));
  const b = prior.bias + ((1 - p) * s0) / d;
  const f = 0.5 * (((1 - p) * sf0) / d);
  const sf = 0.25 * (sf0 - (h * sf0 * sf0) / d) + 0.3;
  const close = (a: number | undefined, x: number, what: string): void => assert.ok(Math.abs((a ?? NaN) - x) < 1e-5, `${what}: ${a} vs ${x}`);
  close(st[parts], b, 'b');
  close(st[parts + 1], s0 - (h * s0 * s0) / d, 's');
  close(st[parts + 2], f, 'f');
  close(st[parts + 3], sf, 's_f');
  close(st[0], b + f, 'view bias');
  close(st[1], s0 - (h * s0 * s0) / d + sf, 'view variance');
  assert.ok(
    st.subarray(k + 2, parts).some((g) => g > 0.5),
    'Adagrad accumulators grew',
  );
  const zero = new FmAdagradAdapter('item', model, { init: 'zero' }).initialState(ev);
  assert.ok(zero[0] === 0 && zero.subarray(2, k + 2).every((x) => x === 0));
  // Bias variance 0 (and no session part) freezes the bias.
  const frozen = new FmAdagradAdapter('item', model, { biasVariance: 0, biasDrift: 0, sessionVariance: 0 });
  const fst = frozen.initialState(ev);
  frozen.predictThenAdapt({ events: [ev], states: [fst] });
  assert.equal(fst[0], Math.fround(prior.bias));
});

void test("cross-side: the other side's view enters the score and its variance shares the step", () => {
  const ad = new FmAdagradAdapter('item', model);
  const ev = eventOf('y', 1);
  const cold = ad.predict({ events: [ev], states: [ad.initialState(ev)] })[0] ?? NaN;
  const liked = model.coldView('user');
  liked[0] = (liked[0] ?? 0) + 2; // a user who likes everything
  const withUser = ad.predict({ events: [ev], states: [ad.initialState(ev)], others: [liked] })[0] ?? NaN;
  assert.ok(withUser > cold + 0.1, `${withUser} vs ${cold}`);
  // An undefined other is the cold view; a short view ([b, s] of a meta adapter) keeps the cold vector.
  assert.equal(ad.predict({ events: [ev], states: [ad.initialState(ev)], others: [undefined] })[0], cold);
  const short = ad.predict({ events: [ev], states: [ad.initialState(ev)], others: [liked.subarray(0, 2)] })[0] ?? NaN;
  assert.ok(Math.abs(short - withUser) < 1e-6);
  // A very uncertain other bias takes most of the residual: the own bias moves less.
  const sure = Float32Array.from(liked);
  sure[1] = 0;
  const unsure = Float32Array.from(liked);
  unsure[1] = 50;
  const a = ad.initialState(ev);
  const b = ad.initialState(ev);
  ad.predictThenAdapt({ events: [ev], states: [a], others: [sure] });
  ad.predictThenAdapt({ events: [ev], states: [b], others: [unsure] });
  assert.ok((b[0] ?? 0) - model.priors.item.bias < (a[0] ?? 0) - model.priors.item.bias);
  // The baseline is none's score: both sides cold, whatever the states and the other view.
  const baseline = new Float32Array(1);
  const st = ad.initialState(ev);
  st[0] = 3;
  ad.predictThenAdapt({ events: [ev], states: [st], others: [liked], baseline });
  assert.ok(Math.abs((baseline[0] ?? NaN) - (createAdapter('none', 'item', model).predict({ events: [ev], states: [new Float32Array(0)] })[0] ?? NaN)) < 1e-6);
});

void test('none: stateless, the shared model with both sides cold', () => {
  const none = createAdapter('none', 'user', model);
  assert.ok(none instanceof NoneAdapter);
  assert.equal(none.stateSize, 0);
  assert.equal(none.viewSize, 0);
  assert.equal(none.release, model.release);
  const evs = [eventOf('a', 1), eventOf('b', 0)];
  const states = evs.map((e) => none.initialState(e));
  assert.deepEqual(none.predictThenAdapt({ events: evs, states }), none.predict({ events: evs, states }));
  const ada = createAdapter('fm-adagrad', 'item', model);
  assert.deepEqual(none.predict({ events: evs, states }), ada.predict({ events: evs, states: evs.map((e) => ada.initialState(e)) }));
});

void test('registry and validation', () => {
  assert.deepEqual([...ADAPTER_NAMES], ['none', 'fm-adagrad', 'emerg', 'coldnas', 'fixed-adaptive']);
  assert.throws(
    () => createAdapter('emerg?', 'item', model),
    (e: unknown) => e instanceof ConfigError && e.key === 'adapter',
  );
  assert.throws(
    () => createAdapter('fm-adagrad', 'item', model, { learningRate: 0 }),
    (e: unknown) => e instanceof ConfigError && e.key === 'fm-adagrad.learningRate',
  );
  assert.ok(createAdapter('fm-adagrad', 'user', model) instanceof FmAdagradAdapter, 'one FM release serves both sides');
  assert.throws(
    () => createAdapter('fm-adagrad', 'item', model, { l2: -1 }),
    (e: unknown) => e instanceof ConfigError && e.key === 'fm-adagrad.l2',
  );
  const ad = createAdapter('fm-adagrad', 'item', model);
  const ev = eventOf('a', 1);
  assert.throws(
    () => ad.predict({ events: [ev], states: [] }),
    (e: unknown) => e instanceof ThawError && e.code === 'MODEL_ERROR',
  );
  assert.throws(
    () => ad.predictThenAdapt({ events: [ev], states: [new Float32Array(3)] }),
    (e: unknown) => e instanceof ThawError && e.code === 'STATE_CORRUPT',
  );
  assert.throws(
    () => ad.predictThenAdapt({ events: [ev], states: [ad.initialState(ev)], others: [] }),
    (e: unknown) => e instanceof ThawError && e.code === 'MODEL_ERROR',
  );
});
