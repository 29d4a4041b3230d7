import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LabelledEvent } from '../../../schemas/types.js';
import { buildValidationSplit } from '../../../evaluation/retrieval/split.js';
import { runRetrievalProtocol, type RetrievalProtocolOptions } from '../../../evaluation/retrieval/protocol.js';
import { SyntheticStream } from '../../../sources/synthetic.js';

function ev(timeMs: number, userId: string, itemId: string, label: 0 | 1): LabelledEvent {
  return { eventId: `e${timeMs}`, timeMs, userId, itemId, label, userFeatures: {}, itemFeatures: { genres: [`g${itemId}`] } };
}

test('the validation split is the training window alone: its last 10 % validates, nothing of the test window is in it', () => {
  const events = Array.from({ length: 100 }, (_, t) => ev(t, `u${t % 7}`, `i${t}`, 1)).reverse();
  const val = buildValidationSplit(events, 0.8, 0.1);
  assert.equal(val.train.length, 72, 'the first 90 % of the 80 training events fit');
  assert.equal(val.cutMs, 72, "the training window's last 8 events validate");
  assert.ok(val.trainEvents.every((e) => e.timeMs < 72));
  assert.ok(
    val.items.every((it) => Number(it.id.slice(1)) < 80),
    'no item of the test window',
  );
  assert.ok(val.testUsers.every((u) => [...u.relevant].every((i) => Number(val.items[i]?.id.slice(1)) < 80)));
  assert.throws(() => buildValidationSplit(events, 0.8, 0), { code: 'CONFIG_INVALID' });
});

test('hyper-parameters are chosen on validation: changing the test window changes no choice', async () => {
  const events: LabelledEvent[] = [];
  for await (const e of new SyntheticStream({ seed: 3, events: 5000, users: 80, items: 150, ctrBias: 0 })) events.push(e);
  const opts: RetrievalProtocolOptions = {
    encoder: { dim: 8, itemBuckets: 512, userBuckets: 128, batchSize: 64, epochs: 2 },
    selectionEpochs: 1,
    grid: { temperature: [0.05, 0.5], crossBatches: [0, 2], threshold: [0.3, 0.9], pseudoTopK: [5, 10] },
  };
  const a = await runRetrievalProtocol(events, opts);
  // The same training window, a different test window: every test label flipped.
  const cut = Math.floor(events.length * 0.8);
  const flipped = events.map((e, i) => (i < cut ? e : { ...e, label: e.label === 1 ? (0 as const) : (1 as const) }));
  const b = await runRetrievalProtocol(flipped, opts);
  assert.deepEqual(
    a.trials.map((t) => [t.stage, t.param, t.value]),
    [
      ['dual-encoder', 'temperature', 0.05],
      ['dual-encoder', 'temperature', 0.5],
      ['cross-batch', 'crossBatches', 0],
      ['cross-batch', 'crossBatches', 2],
      ['denoised', 'threshold', 0.3],
      ['denoised', 'threshold', 0.9],
      ['augmented', 'pseudoTopK', 5],
      ['augmented', 'pseudoTopK', 10],
    ],
  );
  assert.deepEqual(b.trials, a.trials, 'the same validation recalls');
  // A queue of 0 batches is the in-batch run already scored: its recall is that run's, not trained again.
  const inBatch = a.trials.find((t) => t.stage === 'dual-encoder' && t.value === a.chosen.temperature);
  assert.equal(a.trials.find((t) => t.param === 'crossBatches' && t.value === 0)?.recall50, inBatch?.recall50);
  assert.deepEqual(b.chosen, a.chosen);
  assert.notDeepEqual(b.rows, a.rows, 'the test window did change the test rows');
  assert.equal(a.validationEvents, cut - Math.floor(cut * 0.9));
  // Each chosen value is its grid's best on validation.
  for (const [param, value] of Object.entries(a.chosen)) {
    const tried = a.trials.filter((t) => t.param === param);
    const best = Math.max(...tried.map((t) => t.recall50));
    assert.equal(tried.find((t) => t.recall50 === best)?.value, value, param);
  }
  assert.deepEqual(
    a.rows.map((r) => r.model),
    ['popularity', 'item-feature-knn', 'dual-encoder (in-batch)', '+cross-batch', '+denoised', '+augmented'],
  );
});
