import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contrastiveLoss, type ContrastiveBatch } from '../../../retrieval/loss.js';
import { DualEncoderTrainer } from '../../../retrieval/train.js';
import { Rng } from '../../../models/rng.js';
import type { Features } from '../../../schemas/types.js';

const rng = new Rng(11);
const rand = (n: number): Float32Array => rng.fillUniform(new Float32Array(n), 1);

test('the in-batch softmax loss gradient matches finite differences (with extra negatives and a duplicate positive masked)', () => {
  const dim = 4;
  const batch: ContrastiveBatch = {
    users: rand(3 * dim),
    items: rand(3 * dim),
    itemIds: Int32Array.from([7, 8, 7]), // rows 0 and 2 share an item: not each other's negative
    extra: rand(2 * dim),
    extraIds: Int32Array.from([8, 9]),
    dim,
    temperature: 0.5,
    logQ: Float32Array.from({ length: 10 }, (_, i) => -1 - 0.3 * i), // the logQ correction is in the checked gradient
  };
  const { loss, dUsers, dItems } = contrastiveLoss(batch);
  assert.ok(Number.isFinite(loss) && loss > 0);
  const eps = 1e-3;
  for (const [name, m, grad] of [
    ['users', batch.users, dUsers],
    ['items', batch.items, dItems],
  ] as const) {
    for (let k = 0; k < m.length; k++) {
      const keep = m[k] ?? 0;
      m[k] = keep + eps;
      const up = contrastiveLoss(batch).loss;
      m[k] = keep - eps;
      const down = contrastiveLoss(batch).loss;
      m[k] = keep;
      const fd = (up - down) / (2 * eps);
      assert.ok(Math.abs(fd - (grad[k] ?? 0)) < 2e-3 + 1e-2 * Math.abs(fd), `${name}[${k}]: analytic ${grad[k]} vs finite difference ${fd}`);
    }
  }
  // A batch whose rows all share one item has no negatives at all: every logit but the positive is masked.
  const same = contrastiveLoss({ ...batch, itemIds: Int32Array.from([7, 7, 7]), extraIds: Int32Array.from([7, 7]) });
  assert.equal(same.loss, 0);
  assert.ok([...same.dUsers, ...same.dItems].every((g) => g === 0));
  // Cross-batch negatives are in the loss: more negatives, a larger loss, and a gradient from them.
  const inBatch = contrastiveLoss({ ...batch, extra: new Float32Array(0), extraIds: new Int32Array(0) });
  assert.ok(loss > inBatch.loss);
  // logQ lowers each logit by its item's log share: a different loss from the uncorrected one.
  const { logQ: _, ...uncorrected } = batch;
  assert.notEqual(contrastiveLoss(uncorrected).loss, loss);
  assert.notDeepEqual([...dUsers], [...inBatch.dUsers]);
});

test('the towers back-propagate: trainer gradients on table entries match finite differences', () => {
  const catalog = [0, 1, 2, 3].map((i) => ({ id: `i${i}`, features: { genres: [`g${i % 2}`], year: [`199${i}`] }, known: i < 3 }));
  const trainer = new DualEncoderTrainer(catalog, { dim: 4, itemBuckets: 64, userBuckets: 32, seed: 3, temperature: 0.3 });
  const userFeatures = new Map<string, Features>([
    ['u1', { age: ['25'] }],
    ['u2', { age: ['35'], gender: ['F'] }],
  ]);
  const ex = trainer.examples(
    [
      { userId: 'u1', item: 0, label: 1 },
      { userId: 'u2', item: 1, label: 1 },
      { userId: 'u1', item: 2, label: 1 },
      { userId: 'u2', item: 3, label: 1 },
    ],
    userFeatures,
  );
  assert.deepEqual([...(ex[2]?.history ?? [])], [0], 'the history is the earlier positives');
  const useId = [true, false, true, false];
  const extra = { vectors: rand(2 * 4), ids: Int32Array.from([5, 6]) };
  const { grads } = trainer.lossAndGrads(ex, useId, extra);
  const lossNow = (): number => trainer.lossAndGrads(ex, useId, extra).loss;
  const eps = 1e-3;
  const check = (table: Float32Array, rowGrads: Map<number, Float32Array> | Float32Array, what: string): number => {
    let checked = 0;
    const entries: Array<[number, number]> =
      rowGrads instanceof Map ? [...rowGrads].flatMap(([r, g]) => [...g].map((v, j): [number, number] => [r * 4 + j, v])) : [...rowGrads].map((v, k): [number, number] => [k, v]);
    for (const [at, g] of entries) {
      const keep = table[at] ?? 0;
      table[at] = keep + eps;
      const up = lossNow();
      table[at] = keep - eps;
      const down = lossNow();
      table[at] = keep;
      const fd = (up - down) / (2 * eps);
      assert.ok(Math.abs(fd - g) < 2e-3 + 2e-2 * Math.abs(fd), `${what}[${at}]: analytic ${g} vs finite difference ${fd}`);
      checked++;
    }
    return checked;
  };
  assert.ok(check(trainer.model.itemTable, grads.item, 'item') > 8);
  assert.ok(check(trainer.model.userTable, grads.user, 'user') > 8);
  // The history mean is held in a cache of item vectors; H's gradient goes through it.
  assert.equal(check(trainer.model.h, grads.h, 'H'), 16);
});
