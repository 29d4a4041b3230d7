import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EmergAdapter } from '../../../adapters/emerg.js';
import { FrozenAdapter } from '../../../adapters/frozen.js';
import type { Adapter } from '../../../adapters/types.js';
import { initBackend } from '../../../models/backend.js';
import { distinctItems, emergFixture } from './emerg-fixture.js';

await initBackend('cpu');

const { model, layout, events } = emergFixture();

test('FrozenAdapter: named none, same state layout and initial states, scores without adapting', () => {
  const inner = new EmergAdapter(model, layout, 'emerg/v1');
  const none = new FrozenAdapter(inner);
  assert.equal(none.name, 'none');
  assert.equal(none.side, 'item');
  assert.equal(none.stateSize, inner.stateSize);
  assert.equal(none.release, 'emerg/v1');
  const firsts = distinctItems(events, 10);
  const states = none.initialStates(firsts);
  assert.deepEqual(states, inner.initialStates(firsts));
  assert.deepEqual(none.initialState(firsts[2]!), inner.initialState(firsts[2]!));
  const copy = states.map((s) => s.slice());
  for (let round = 0; round < 3; round++) {
    const scores = none.predictThenAdapt({ events: firsts, states });
    assert.deepEqual(scores, inner.predict({ events: firsts, states: copy }));
  }
  assert.deepEqual(states, copy, 'states never change');
  // The adapter it wraps does move them on the same events.
  inner.predictThenAdapt({ events: firsts, states });
  assert.notDeepEqual(states, copy);
});

test('FrozenAdapter falls back to initialState when the inner adapter has no batched form', () => {
  const calls: string[] = [];
  const inner: Adapter = {
    name: 'x',
    side: 'user',
    stateSize: 1,
    viewSize: 0,
    hasBaseline: false,
    release: 'r',
    initialState: (e) => {
      calls.push(e.eventId);
      return Float32Array.of(1);
    },
    predict: (b) => new Float32Array(b.events.length).fill(0.25),
    predictThenAdapt: () => {
      throw new Error('must not adapt');
    },
  };
  const none = new FrozenAdapter(inner);
  const evs = events.slice(0, 3);
  assert.deepEqual(
    none.initialStates(evs),
    evs.map(() => Float32Array.of(1)),
  );
  assert.deepEqual(
    calls,
    evs.map((e) => e.eventId),
  );
  assert.deepEqual([...none.predictThenAdapt({ events: evs, states: evs.map(() => Float32Array.of(1)) })], [0.25, 0.25, 0.25]);
});
