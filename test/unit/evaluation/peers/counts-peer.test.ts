import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COUNTS_DEFAULT_GRID, countsPass, indexCountsStream, runCountsPeer } from '../../../../evaluation/peers/counts-peer.js';
import { ConfigError } from '../../../../lib/errors.js';
import type { LabelledEvent } from '../../../../schemas/types.js';
import { SyntheticStream } from '../../../../sources/synthetic.js';

const events: LabelledEvent[] = [];
for await (const e of new SyntheticStream({ events: 3000, users: 150, items: 80, seed: 11 })) events.push(e);
const HISTORY = 1000;

const withLabel = (evs: readonly LabelledEvent[], j: number, label: 0 | 1): LabelledEvent[] => evs.map((e, k) => (k === j ? { ...e, label } : e));
const flip = (e: LabelledEvent): LabelledEvent => ({ ...e, label: e.label === 1 ? 0 : 1 });
const ev = (userId: string, itemId: string, label: 0 | 1): LabelledEvent => ({ eventId: `${userId}/${itemId}`, timeMs: 0, userId, itemId, label, userFeatures: {}, itemFeatures: {} });

test('countsPass: the documented smoothed rates and Adagrad step, by hand', () => {
  const stream = indexCountsStream([ev('u1', 'i1', 1), ev('u1', 'i2', 0), ev('u2', 'i1', 1)]);
  const [p0, p1, p2] = countsPass(stream, 3, { priorStrength: 2, learningRate: 0.1 });
  const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));
  // Event 0: everything new, m = 1/2, both logits 0 → 1/2. Its Adagrad step moves only the bias:
  // gradient −0.5, accumulator 0.25, step 0.1·0.5/(√0.25 + 1e-8) (1e-8: the denominator's floor).
  assert.equal(p0, 0.5);
  const w0 = (0.1 * 0.5) / (0.5 + 1e-8);
  // Event 1: m = 2/3; u1 has 1 of 1 → (1 + 2·2/3)/(1 + 2) = 7/9; i2 is new → m = 2/3.
  assert.ok(Math.abs((p1 ?? NaN) - sigmoid(w0 + 0.5 * Math.log(7 / 2) + 0.5 * Math.log(2))) < 1e-12);
  // Event 2 is scored before it is learned: a finite probability from events 0 and 1 only.
  assert.ok(p2 !== undefined && p2 > 0 && p2 < 1);
  assert.deepEqual([...stream.user], [0, 0, 1]);
  assert.deepEqual([...stream.item], [2, 3, 2]); // items after the 2 users in the shared count table
});

test('runCountsPeer: one score per event, every grid pair tried, chosen = the best history AUC', () => {
  const run = runCountsPeer(events, HISTORY);
  assert.equal(run.name, 'counts');
  assert.equal(run.scores.length, events.length);
  assert.ok(run.scores.every((s) => Number.isFinite(s) && s > 0 && s < 1));
  assert.equal(run.trials.length, COUNTS_DEFAULT_GRID.priorStrengths.length * COUNTS_DEFAULT_GRID.learningRates.length);
  const bestAuc = Math.max(...run.trials.map((t) => t.auc));
  assert.equal(run.trials.find((t) => t.settings === run.chosen)?.auc, bestAuc);
  // The final pass with the chosen setting replays the history exactly as its trial did.
  const stream = indexCountsStream(events);
  assert.deepEqual(run.scores.subarray(0, HISTORY), countsPass(stream, HISTORY, run.chosen));
});

test('runCountsPeer is prequential: the label of event j changes later scores only', () => {
  const j = 1800;
  const a = runCountsPeer(events, HISTORY);
  const b = runCountsPeer(withLabel(events, j, events[j]?.label === 1 ? 0 : 1), HISTORY);
  assert.deepEqual(b.chosen, a.chosen);
  assert.deepEqual(b.scores.subarray(0, j + 1), a.scores.subarray(0, j + 1)); // score j included
  assert.notDeepEqual(b.scores.subarray(j + 1), a.scores.subarray(j + 1));
  assert.notEqual(b.scores[j + 1], a.scores[j + 1]); // the global rate and the weights move at once
});

test('runCountsPeer chooses on the history only: labels after historyN leave chosen and trials unchanged', () => {
  const a = runCountsPeer(events, HISTORY);
  const b = runCountsPeer([...events.slice(0, HISTORY), ...events.slice(HISTORY).map(flip)], HISTORY);
  assert.deepEqual(b.chosen, a.chosen);
  assert.deepEqual(b.trials, a.trials);
  assert.deepEqual(b.scores.subarray(0, HISTORY + 1), a.scores.subarray(0, HISTORY + 1));
  assert.notDeepEqual(b.scores, a.scores);
  // … while the history's labels do take part in the choice.
  const c = runCountsPeer([...events.slice(0, HISTORY).map(flip), ...events.slice(HISTORY)], HISTORY);
  assert.notDeepEqual(c.trials, a.trials);
});

test('runCountsPeer is deterministic', () => {
  const a = runCountsPeer(events, HISTORY);
  const b = runCountsPeer(events, HISTORY);
  assert.deepEqual(b.scores, a.scores);
  assert.deepEqual(b.chosen, a.chosen);
  assert.deepEqual(b.trials, a.trials);
});

test('runCountsPeer refuses a bad history length or grid, naming the key', () => {
  assert.throws(
    () => runCountsPeer(events, 0),
    (e: unknown) => e instanceof ConfigError && e.key === 'historyN',
  );
  assert.throws(
    () => runCountsPeer(events, events.length + 1),
    (e: unknown) => e instanceof ConfigError && e.key === 'historyN',
  );
  assert.throws(
    () => runCountsPeer(events, HISTORY, { priorStrengths: [] }),
    (e: unknown) => e instanceof ConfigError && e.key === 'counts.priorStrengths',
  );
  assert.throws(
    () => runCountsPeer(events, HISTORY, { learningRates: [0.1, -1] }),
    (e: unknown) => e instanceof ConfigError && e.key === 'counts.learningRates',
  );
});
