/**
 * The bias terms of the meta-learned adapters (adapters/entity-bias.ts) on EmerG, ColdNAS and the
 * fixed/adaptive split: logit = model + b_own + b_other, the cross-side read and its switch, the
 * bias filter's step, the model's own step on the whole logit's prediction, and the baseline the
 * safeguard compares with (what the frozen `none` scores).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ColdNasAdapter } from '../../../adapters/coldnas.js';
import { EmergAdapter } from '../../../adapters/emerg.js';
import type { EntityBiasOptions } from '../../../adapters/entity-bias.js';
import { FixedAdaptiveAdapter } from '../../../adapters/fixed-adaptive.js';
import { FrozenAdapter } from '../../../adapters/frozen.js';
import type { Adapter } from '../../../adapters/types.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { initBackend } from '../../../models/backend.js';
import { filterBias } from '../../../models/bias-filter.js';
import type { BiasFilterPrior } from '../../../models/meta-state.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { distinctItems, emergFixture } from './emerg-fixture.js';
import { coldNas, fixedAdaptive, maxAbsDiff, userEvents, userLayout } from './user-fixtures.js';

await initBackend('cpu');

const PRIOR: BiasFilterPrior = { user: { variance: 0.5, drift: 0.01 }, item: { variance: 0.3, drift: 0.02 } };
const logit = (p: number): number => Math.log(p / (1 - p));
const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));

const item = emergFixture(9);
const users = userEvents(400, 3);
const uLayout = userLayout(users);

/** The first event of each of `n` distinct users. */
function distinctUsers(evs: readonly LabelledEvent[], n: number): LabelledEvent[] {
  const seen = new Set<string>();
  return evs.filter((e) => !seen.has(e.userId) && seen.add(e.userId)).slice(0, n);
}

interface Case {
  name: string;
  build: (opts?: EntityBiasOptions) => Adapter;
  /** A wave: one event each of distinct entities. */
  wave: LabelledEvent[];
  /** The side whose prior is the adapter's own. */
  own: 'user' | 'item';
}

const CASES: Case[] = [
  { name: 'emerg', build: (o = {}) => new EmergAdapter(item.model, item.layout, 'e', o, PRIOR), wave: distinctItems(item.events, 12), own: 'item' },
  { name: 'coldnas', build: (o = {}) => new ColdNasAdapter(coldNas(uLayout), uLayout, 'c', o, PRIOR), wave: distinctUsers(users, 12), own: 'user' },
  { name: 'fixed-adaptive', build: (o = {}) => new FixedAdaptiveAdapter(fixedAdaptive(uLayout), uLayout, 'f', o, PRIOR), wave: distinctUsers(users, 12), own: 'user' },
];

function initial(a: Adapter, wave: readonly LabelledEvent[]): Float32Array[] {
  return a.initialStates !== undefined ? a.initialStates(wave) : wave.map((e) => a.initialState(e));
}

/** Other-side views: FM-like `[b, s, vector…]`, some entities cold (undefined). */
function views(n: number): (Float32Array | undefined)[] {
  return Array.from({ length: n }, (_, j) => (j % 4 === 3 ? undefined : Float32Array.of(0.8 * Math.sin(j + 1), 0.05 + 0.02 * j, 0.3, -0.2)));
}

for (const c of CASES) {
  void test(`${c.name}: a new entity's view is [0, the release's prior variance]; logit = model + b_own + b_other`, () => {
    const a = c.build();
    assert.equal(a.viewSize, 2);
    assert.equal(a.hasBaseline, true);
    const states = initial(a, c.wave);
    for (const st of states) assert.deepEqual([...st.subarray(0, 2)], [0, Math.fround(PRIOR[c.own].variance)]);
    // Move the own biases off 0 and read other sides.
    states.forEach((st, j) => (st[0] = 0.1 * (j - 5)));
    const others = views(c.wave.length);
    const withBias = a.predict({ events: c.wave, states, others });
    const bare = a.predict({ events: c.wave, states: states.map((st) => Float32Array.from(st, (v, k) => (k === 0 ? 0 : v))) });
    const want = c.wave.map((_, j) => sigmoid(logit(bare[j] ?? NaN) + (states[j]?.[0] ?? 0) + (others[j]?.[0] ?? 0)));
    assert.ok(maxAbsDiff(withBias, want) < 1e-5, `${maxAbsDiff(withBias, want)}`);
    assert.ok(maxAbsDiff(withBias, bare) > 0.05, 'the biases move the scores');
    // crossSide 'off': the own bias only.
    const off = c.build({ crossSide: 'off' }).predict({ events: c.wave, states, others });
    const wantOff = c.wave.map((_, j) => sigmoid(logit(bare[j] ?? NaN) + (states[j]?.[0] ?? 0)));
    assert.ok(maxAbsDiff(off, wantOff) < 1e-5, `off: ${maxAbsDiff(off, wantOff)}`);
  });

  void test(`${c.name}: after each event the bias filter steps on the whole logit's prediction, with the other side's variance`, () => {
    for (const crossSide of ['bias', 'off'] as const) {
      const a = c.build({ crossSide });
      const states = initial(a, c.wave);
      const others = views(c.wave.length);
      for (let round = 0; round < 3; round++) {
        const before = states.map((s) => s.slice());
        const p = a.predictThenAdapt({ events: c.wave, states, others });
        states.forEach((st, j) => {
          const expect = (before[j] ?? new Float32Array(2)).slice(0, 2);
          const otherVar = crossSide === 'bias' ? (others[j]?.[1] ?? PRIOR[c.own === 'user' ? 'item' : 'user'].variance) : PRIOR[c.own === 'user' ? 'item' : 'user'].variance;
          filterBias(expect, p[j] ?? NaN, c.wave[j]?.label ?? NaN, otherVar, PRIOR[c.own].drift);
          assert.ok(maxAbsDiff(st.subarray(0, 2), expect) < 1e-6, `${crossSide}, round ${round}, entity ${j}: [${[...st.subarray(0, 2)].join(',')}] vs [${[...expect].join(',')}]`);
        });
      }
      assert.ok(
        states.some((st) => Math.abs(st[0] ?? 0) > 0.05),
        'biases moved',
      );
    }
    // Options override the release's prior; variance 0 freezes the bias.
    const frozen = c.build({ biasVariance: 0, biasDrift: 0 });
    const st = initial(frozen, c.wave);
    frozen.predictThenAdapt({ events: c.wave, states: st, others: views(c.wave.length) });
    for (const s of st) assert.deepEqual([...s.subarray(0, 2)], [0, 0]);
  });

  // ColdNAS's own step (folding the event's encoding into the user's mean) does not use the score.
  if (c.name !== 'coldnas') {
    void test(`${c.name}: the model's own step learns from the whole logit's prediction`, () => {
      // A bias of +30 on the other side makes every prediction ~1: label-1 events teach the
      // model's own parameters nothing, while without it they do.
      const a = c.build({ biasVariance: 0, biasDrift: 0 });
      const ones = c.wave.map((e) => ({ ...e, label: 1 as const }));
      const moved = (others?: (Float32Array | undefined)[]): number => {
        const states = initial(a, ones);
        const start = states.map((s) => s.slice());
        a.predictThenAdapt({ events: ones, states, ...(others === undefined ? {} : { others }) });
        return Math.max(...states.map((s, j) => maxAbsDiff(s, start[j] ?? new Float32Array(0))));
      };
      assert.ok(moved() > 1e-4, `without the other side's bias the own params move (${moved()})`);
      assert.ok(moved(ones.map(() => Float32Array.of(30, 0))) < 1e-6, `with it they do not (${moved(ones.map(() => Float32Array.of(30, 0)))})`);
    });
  }

  void test(`${c.name}: the baseline is what the frozen none scores (initial state, no bias, no cross-side read)`, () => {
    const a = c.build();
    const none = new FrozenAdapter(c.build());
    const states = initial(a, c.wave);
    const initialStates = states.map((s) => s.slice());
    const others = views(c.wave.length);
    for (let round = 0; round < 3; round++) {
      const baseline = new Float32Array(c.wave.length);
      const scored = a.predictThenAdapt({ events: c.wave, states, others, baseline });
      const expect = none.predictThenAdapt({ events: c.wave, states: initialStates, others });
      assert.deepEqual(baseline, expect, `round ${round}`);
      if (round > 0) assert.ok(maxAbsDiff(scored, baseline) > 1e-3, 'the adapted score differs from it');
    }
    // The frozen none reads nothing of the other side and never moves a state.
    assert.deepEqual(none.predict({ events: c.wave, states: initialStates, others }), none.predict({ events: c.wave, states: initialStates }));
    assert.ok(initialStates.every((s, j) => maxAbsDiff(s, initial(a, c.wave.slice(j, j + 1))[0] ?? new Float32Array(0)) === 0));
  });

  void test(`${c.name}: bias options and batch shapes are validated`, () => {
    assert.throws(
      () => c.build({ biasVariance: -1 }),
      (e: unknown) => e instanceof ConfigError && e.key === `${c.name}.biasVariance`,
    );
    assert.throws(
      () => c.build({ biasDrift: Number.NaN }),
      (e: unknown) => e instanceof ConfigError && e.key === `${c.name}.biasDrift`,
    );
    assert.throws(
      () => c.build({ crossSide: 'vector' as never }),
      (e: unknown) => e instanceof ConfigError && e.key === `${c.name}.crossSide`,
    );
    const a = c.build();
    const states = initial(a, c.wave);
    const modelError = (e: unknown): boolean => e instanceof ThawError && e.code === 'MODEL_ERROR';
    assert.throws(() => a.predictThenAdapt({ events: c.wave, states, others: [undefined] }), modelError);
    assert.throws(() => a.predictThenAdapt({ events: c.wave, states, baseline: new Float32Array(1) }), modelError);
  });
}
