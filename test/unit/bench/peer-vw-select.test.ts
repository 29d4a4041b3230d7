import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { bucketMetrics, priorCounts } from '../../../bench/peer-vw/evaluate.js';
import { auc } from '../../../evaluation/metrics.js';
import { chooseValue, selectSettings } from '../../../bench/peer-vw/select.js';
import { PEER_ADAPTERS, PEER_TUNING, runThawSide } from '../../../bench/peer-vw/thaw-peer.js';
import { initBackend } from '../../../models/backend.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { SyntheticStream } from '../../../sources/synthetic.js';

await initBackend('cpu');

const events: LabelledEvent[] = [];
// The selection's training prefix [0, selN) has 24 users with 20+ events (the FM's hot users) and 27 with 15+.
for await (const e of new SyntheticStream({ events: 3000, users: 45, items: 25, seed: 5 })) events.push(e);
const metaTrain = { epochs: 1, metaEpochs: 1, searchEpochs: 1, minEvents: 15, dim: 4 };
const dir = join(tmpdir(), `thaw-peer-select-${randomUUID()}`);
after(() => rm(dir, { recursive: true, force: true }));

test('chooseValue: highest AUC; ties go to the default, then to the earliest value; NaN ignored', () => {
  assert.equal(chooseValue([{ value: 1, auc: 0.6, n: 9, byBucket: {} }, { value: 2, auc: 0.7, n: 9, byBucket: {} }, { value: 3, auc: 0.65, n: 9, byBucket: {} }], 1), 2);
  assert.equal(chooseValue([{ value: 1, auc: 0.7, n: 9, byBucket: {} }, { value: 2, auc: 0.7, n: 9, byBucket: {} }, { value: 3, auc: 0.7, n: 9, byBucket: {} }], 3), 3);
  assert.equal(chooseValue([{ value: 1, auc: 0.7, n: 9, byBucket: {} }, { value: 2, auc: 0.7, n: 9, byBucket: {} }], 5), 1);
  assert.equal(chooseValue([{ value: 1, auc: NaN, n: 0, byBucket: {} }], 4), 4);
});

test('PEER_TUNING: every grid holds its default, and the default options build the default adapter', () => {
  for (const [name, t] of Object.entries(PEER_TUNING)) {
    assert.ok((t.grid as readonly number[]).includes(t.default), `${name}: default ${t.default} not in its grid`);
    assert.equal(PEER_ADAPTERS[name]!.tune, t);
  }
  assert.deepEqual(PEER_TUNING['fm-adagrad'].options(0.1), { 'fm-adagrad': { learningRate: 0.1 } });
});

test('selectSettings (user side): one trial per grid value on [selN, selEnd) only, chosen = best trial, events after selEnd never read', async () => {
  const selN = 1500;
  const selEnd = 2000;
  // Flipping every label after selEnd must not change anything: the selection never reads them.
  const poisoned = [...events.slice(0, selEnd), ...events.slice(selEnd).map((e) => ({ ...e, label: (1 - e.label) as 0 | 1 }))];
  const adapters = ['none', 'fm-adagrad', 'coldnas', 'fixed-adaptive', 'emerg'];
  const a = await selectSettings(events, { side: 'user', adapters, selN, selEnd, batchSize: 100, minEarly: 10, releaseDir: dir, metaTrain });
  const b = await selectSettings(poisoned, { side: 'user', adapters, selN, selEnd, batchSize: 100, minEarly: 10, releaseDir: dir, metaTrain });
  assert.deepEqual(a.map((s) => s.adapter), ['fm-adagrad', 'coldnas', 'fixed-adaptive']);
  assert.deepEqual(b, a);
  for (const s of a) {
    const t = PEER_TUNING[s.adapter as keyof typeof PEER_TUNING];
    assert.deepEqual(s.trials.map((x) => x.value), [...t.grid]);
    assert.ok(s.trials.every((x) => Number.isFinite(x.auc) && x.n > 0 && x.n <= selEnd - selN), JSON.stringify(s.trials));
    assert.equal(s.chosen, chooseValue(s.trials, s.default));
    assert.deepEqual(s.options, t.options(s.chosen));
  }
  // coldnas is scored on all rows of the window; the historyWindow values give different scores.
  const coldnas = a.find((s) => s.adapter === 'coldnas')!;
  assert.equal(coldnas.rows, 'all');
  assert.equal(coldnas.trials[0]!.n, selEnd - selN);
  // The default trial equals a plain default run of the same split (same FM seed, same release).
  const stream = events.slice(0, selEnd);
  const prior = priorCounts(stream, 'user');
  const plain = await runThawSide(stream, prior, { side: 'user', adapters: ['fixed-adaptive'], trainN: selN, batchSize: 100, releaseDir: join(dir, 'select'), metaTrain });
  const fa = a.find((s) => s.adapter === 'fixed-adaptive')!;
  const dflt = fa.trials.find((x) => x.value === PEER_TUNING['fixed-adaptive'].default)!;
  const scores = plain.runs[0]!.scores;
  const expected =
    fa.rows === 'early'
      ? bucketMetrics(scores, Uint8Array.from(stream, (e) => e.label), prior, selN)['1-5'].auc
      : auc(Array.from(scores.subarray(selN)), stream.slice(selN).map((e) => e.label));
  assert.ok(Math.abs(expected - dflt.auc) < 1e-12, `${expected} vs ${dflt.auc}`);
  assert.ok(plain.releases.every((r) => r.reused), 'the selection releases are cached under <dir>/select');
});
