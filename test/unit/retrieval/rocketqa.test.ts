import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DualEncoderTrainer, type LossInput, type TrainInteraction } from '../../../retrieval/train.js';
import { contrastiveLoss } from '../../../retrieval/loss.js';
import { denoise, mineUser, pseudoLabel, PSEUDO_NEGATIVE, PSEUDO_POSITIVE } from '../../../retrieval/hard-negatives.js';
import type { Ranker } from '../../../retrieval/types.js';
import { Rng } from '../../../models/rng.js';

// 12 items; 6 users, each with positives on items u and u + 6 (alternately).
const catalog = Array.from({ length: 12 }, (_, i) => ({ id: `i${i}`, features: { genres: [`g${i % 3}`] }, known: true }));
const userFeatures = new Map(Array.from({ length: 6 }, (_, u) => [`u${u}`, { taste: [`t${u % 3}`] }]));
const interactions: TrainInteraction[] = [];
for (let round = 0; round < 4; round++) for (let u = 0; u < 6; u++) interactions.push({ userId: `u${u}`, item: round % 2 === 0 ? u : u + 6, label: 1 });

/** A ranker with fixed scores by item, the same for every user. */
function fixedRanker(byItem: (item: number) => number): Ranker & { calls: number } {
  const r = {
    calls: 0,
    score(_user: string, _f: unknown, items: readonly number[], out: Float32Array): void {
      r.calls++;
      items.forEach((i, j) => (out[j] = byItem(i)));
    },
  };
  return r;
}

function trainAndTap(rocketqa: ConstructorParameters<typeof DualEncoderTrainer>[1]): { seen: LossInput[]; trainer: DualEncoderTrainer } {
  const seen: LossInput[] = [];
  const trainer = new DualEncoderTrainer(catalog, { dim: 4, itemBuckets: 64, userBuckets: 16, batchSize: 4, epochs: 3, seed: 3, ...rocketqa, tap: (x) => seen.push(x) });
  const users = trainer.users(interactions, userFeatures);
  trainer.train(trainer.examples(interactions, userFeatures), undefined, users);
  return { seen, trainer };
}

test('denoising: a mined negative the ranker scores at or above the threshold never reaches the loss; one below it does', () => {
  // Item 11 is scored 0.95 (a likely positive) and item 10 0.05; the other items 0.3. Threshold 0.5.
  const ranker = fixedRanker((i) => (i === 11 ? 0.95 : i === 10 ? 0.05 : 0.3));
  const { seen, trainer } = trainAndTap({ rocketqa: { ranker, threshold: 0.5, mineTopK: 12, hardPerExample: 3, mineFromEpoch: 1 } });
  const hard = seen.flatMap((x) => [...x.hardIds]);
  assert.ok(hard.length > 0, 'hard negatives reached the loss');
  assert.ok(!hard.includes(11), 'the negative above the threshold was dropped');
  assert.ok(hard.includes(10), 'the negative below the threshold reached the loss');
  // Epoch 0 (before mining) has no hard negatives; the mining round dropped item 11 for every user.
  assert.ok(seen.slice(0, 6).every((x) => x.hardIds.length === 0));
  // (u5's positive is item 11: not a candidate for u5, so 5 users drop it.)
  assert.equal(trainer.miningStats?.dropped, 5);
  // Never a user's own positive, and each example's hard negatives are its user's.
  for (const x of seen) {
    for (let b = 0; b < x.itemIds.length; b++) {
      const own = x.hardIds.subarray(x.hardStart[b] ?? 0, x.hardStart[b + 1] ?? 0);
      const pos = x.itemIds[b] ?? -1;
      const user = pos % 6;
      assert.ok(!own.includes(user) && !own.includes(user + 6), `example ${b}: no positive of its user among its hard negatives`);
    }
  }
  // The same training without RocketQA feeds the loss no hard negatives.
  const plain = trainAndTap({});
  assert.ok(plain.seen.every((x) => x.hardIds.length === 0));
});

test('the denoising rule and the pseudo-label thresholds are exact', () => {
  assert.deepEqual(denoise([4, 5, 6, 7], [0.09, 0.1, 0.11, 0.5], 0.1), [4]);
  assert.equal(PSEUDO_POSITIVE, 0.9);
  assert.equal(PSEUDO_NEGATIVE, 0.1);
  assert.equal(pseudoLabel(0.9), undefined);
  assert.equal(pseudoLabel(Math.fround(0.9000001)), 1);
  assert.equal(pseudoLabel(1), 1);
  assert.equal(pseudoLabel(0.1), undefined);
  assert.equal(pseudoLabel(0.0999999), 0);
  assert.equal(pseudoLabel(0), 0);
  assert.equal(pseudoLabel(0.5), undefined);
  // Through mining: unlabelled items scored > 0.9 become positives, < 0.1 negatives, the rest nothing.
  const scores = Float32Array.from({ length: 8 }, (_, i) => 8 - i); // retriever prefers lower indices
  const ranker = fixedRanker((i) => [0.95, 0.9, 0.05, 0.1, 0.5, 0.91, 0.09, 0.99][i] ?? 0.5);
  const user = { userId: 'u', features: {}, positives: new Set([7]), seen: new Set([7, 0]) };
  const mined = mineUser(user, scores, ranker, { mineTopK: 0, threshold: 0.1, pseudoTopK: 8 });
  assert.deepEqual(mined.pseudoPositives, [5], 'item 0 is labelled (seen), item 7 a positive: neither is pseudo-labelled');
  assert.deepEqual(mined.negatives, [2, 6]);
});

test('pseudo positives are trained on: they appear as positives in the loss', () => {
  // Items 3..5 are unlabelled for users u0..u2 (whose positives are u and u+6); the ranker scores item 4
  // as a sure positive for everyone, everything else 0.5 (no pseudo negative, no denoised negative).
  const ranker = fixedRanker((i) => (i === 4 ? 0.97 : 0.5));
  const { seen, trainer } = trainAndTap({ rocketqa: { ranker, threshold: 0.4, mineTopK: 4, pseudoTopK: 12, mineFromEpoch: 1 } });
  const positivesAfterMining = seen.slice(6).flatMap((x) => [...x.itemIds]);
  const positivesBefore = seen.slice(0, 6).flatMap((x) => [...x.itemIds]);
  // Every user but u4 (for whom item 4 is a real positive) gains item 4 as a positive.
  assert.equal(trainer.miningStats?.pseudoPositives, 5);
  assert.equal(positivesBefore.filter((i) => i === 4).length, 2, 'epoch 0: u4 alone, twice');
  assert.equal(positivesAfterMining.filter((i) => i === 4).length, 2 * (2 + 5), 'epochs 1 and 2: u4 twice and the 5 pseudo positives');
  // No pool: the threshold drops every mined candidate (all scored 0.5 >= 0.4), and no pseudo negative.
  assert.ok(seen.every((x) => x.hardIds.length === 0));
});

test("cross-batch negatives are the previous micro-batches' positives", () => {
  const seen: LossInput[] = [];
  const trainer = new DualEncoderTrainer(catalog, { dim: 4, itemBuckets: 64, userBuckets: 16, batchSize: 4, epochs: 1, seed: 3, crossBatches: 2, tap: (x) => seen.push(x) });
  trainer.train(trainer.examples(interactions, userFeatures));
  assert.equal(seen[0]?.extraIds.length, 0);
  assert.deepEqual([...(seen[1]?.extraIds ?? [])], [...(seen[0]?.itemIds ?? [])]);
  assert.deepEqual([...(seen[3]?.extraIds ?? [])], [...(seen[1]?.itemIds ?? []), ...(seen[2]?.itemIds ?? [])]);
});

test('the loss gradient with per-user hard negatives matches finite differences', () => {
  const rng = new Rng(5);
  const dim = 3;
  const rand = (n: number): Float32Array => rng.fillUniform(new Float32Array(n), 1);
  const batch = {
    users: rand(2 * dim),
    items: rand(2 * dim),
    itemIds: Int32Array.from([1, 2]),
    extra: rand(dim),
    extraIds: Int32Array.from([3]),
    hard: rand(3 * dim),
    hardIds: Int32Array.from([4, 5, 1]), // user 1's last hard negative is user 0's positive: still a negative for user 1
    hardStart: Int32Array.from([0, 1, 3]),
    dim,
    temperature: 0.5,
  };
  const res = contrastiveLoss(batch);
  const without = contrastiveLoss({ ...batch, hard: new Float32Array(0), hardIds: new Int32Array(0) });
  assert.ok(res.loss > without.loss, 'hard negatives add to the loss');
  const eps = 1e-3;
  for (const [name, m, grad] of [
    ['users', batch.users, res.dUsers],
    ['items', batch.items, res.dItems],
    ['hard', batch.hard, res.dHard],
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
  // A hard negative equal to its own user's positive is masked: no gradient into it.
  const masked = contrastiveLoss({ ...batch, hardIds: Int32Array.from([1, 5, 2]) });
  assert.ok([0, 1, 2].every((j) => masked.dHard[j] === 0) && [6, 7, 8].every((j) => masked.dHard[j] === 0));
});
