import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseTrial, meanLogLoss, scoreTrial } from '../../../../evaluation/peers/select.js';
import { mapLimit } from '../../../../lib/map-limit.js';

const trial = (id: number, auc: number, logLoss: number): { settings: { id: number }; auc: number; logLoss: number } => ({ settings: { id }, auc, logLoss });

test('chooseTrial: highest AUC, then lowest log loss, then the earliest; NaN ranks last', () => {
  assert.equal(chooseTrial([trial(1, 0.6, 0.5), trial(2, 0.7, 0.9), trial(3, 0.65, 0.1)]).settings.id, 2);
  assert.equal(chooseTrial([trial(1, 0.7, 0.5), trial(2, 0.7, 0.4), trial(3, 0.7, 0.4)]).settings.id, 2);
  assert.equal(chooseTrial([trial(1, NaN, 0.1), trial(2, 0.5, 0.9)]).settings.id, 2);
  assert.equal(chooseTrial([trial(1, NaN, 0.7), trial(2, NaN, 0.6), trial(3, NaN, NaN)]).settings.id, 2);
  assert.throws(() => chooseTrial([]), RangeError);
});

test('scoreTrial / meanLogLoss: AUC and clipped log loss of the scores given', () => {
  const t = scoreTrial({ lr: 1 }, [0.9, 0.2, 0.6, 0], [1, 0, 0, 0]);
  assert.equal(t.auc, 1);
  assert.ok(Math.abs(t.logLoss - -(Math.log(0.9) + Math.log(0.8) + Math.log(0.4) + Math.log(1 - 1e-7)) / 4) < 1e-12);
  assert.ok(Number.isNaN(meanLogLoss([], [])));
  assert.throws(() => scoreTrial({}, [0.5], [1, 0]), RangeError);
});

test('mapLimit: results in input order, never more than `limit` calls in flight', async () => {
  let inFlight = 0;
  let most = 0;
  const out = await mapLimit([5, 1, 4, 2, 3], 2, async (x, k) => {
    most = Math.max(most, ++inFlight);
    for (let i = 0; i < x; i++) await Promise.resolve(); // finish in another order than started
    inFlight--;
    return `${k}:${x * 10}`;
  });
  assert.deepEqual(out, ['0:50', '1:10', '2:40', '3:20', '4:30']);
  assert.equal(most, 2);
  assert.deepEqual(await mapLimit([], 2, () => Promise.resolve(1)), []);
});

test('mapLimit: after a failure no new call starts; the calls in flight finish, then it throws', async () => {
  const started: number[] = [];
  let finished = 0;
  await assert.rejects(
    mapLimit([0, 1, 2, 3, 4], 2, async (x) => {
      started.push(x);
      if (x === 0) throw new Error('boom');
      for (let i = 0; i < 5; i++) await Promise.resolve();
      finished++;
    }),
    /boom/,
  );
  assert.deepEqual(started, [0, 1]);
  assert.equal(finished, 1);
  await assert.rejects(
    mapLimit([1], 0, () => Promise.resolve(1)),
    RangeError,
  );
});
