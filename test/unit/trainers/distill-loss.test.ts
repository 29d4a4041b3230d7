import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../lib/errors.js';
import { checkDistillLoss, distillGradient, distillLoss } from '../../../trainers/distill/loss.js';

const CASES = [
  { s: 0.3, y: 1, t: -1.2, alpha: 0.5, temperature: 2 },
  { s: -2.5, y: 0, t: 1.7, alpha: 0.1, temperature: 1 },
  { s: 4, y: 1, t: 3.9, alpha: 0.9, temperature: 4 },
  { s: -0.01, y: 0, t: -6, alpha: 0, temperature: 0.5 },
  { s: 12, y: 0, t: -12, alpha: 0.3, temperature: 3 },
];

void test('the gradient of the distillation loss matches central finite differences', () => {
  const h = 1e-5;
  for (const c of CASES) {
    const o = { alpha: c.alpha, temperature: c.temperature };
    const fd = (distillLoss(c.s + h, c.y, c.t, o) - distillLoss(c.s - h, c.y, c.t, o)) / (2 * h);
    const g = distillGradient(c.s, c.y, c.t, o);
    assert.ok(Math.abs(fd - g) < 1e-6 * Math.max(1, Math.abs(g)), `${JSON.stringify(c)}: analytic ${g} vs finite differences ${fd}`);
  }
});

void test('the soft term is T^2 KL(teacher || student): zero and stationary when the student agrees with the teacher', () => {
  const o = { alpha: 0, temperature: 2 };
  assert.ok(Math.abs(distillLoss(1.3, 1, 1.3, o)) < 1e-12);
  assert.ok(Math.abs(distillGradient(1.3, 0, 1.3, o)) < 1e-12);
  // KL between Bernoulli(0.5) and Bernoulli(sigmoid(2/2)), times T^2 = 4.
  const r = 1 / (1 + Math.exp(-1));
  const kl = 0.5 * Math.log(0.5 / r) + 0.5 * Math.log(0.5 / (1 - r));
  assert.ok(Math.abs(distillLoss(2, 1, 0, o) - 4 * kl) < 1e-12);
});

void test('without a soft label, or with alpha 1, the loss is the hard label BCE', () => {
  const bce = (s: number, y: number): number => -(y * Math.log(1 / (1 + Math.exp(-s))) + (1 - y) * Math.log(1 - 1 / (1 + Math.exp(-s))));
  for (const c of CASES) {
    assert.ok(Math.abs(distillLoss(c.s, c.y, undefined, c) - bce(c.s, c.y)) < 1e-9);
    assert.ok(Math.abs(distillLoss(c.s, c.y, c.t, { alpha: 1, temperature: c.temperature }) - bce(c.s, c.y)) < 1e-9);
    assert.ok(Math.abs(distillGradient(c.s, c.y, undefined, c) - (1 / (1 + Math.exp(-c.s)) - c.y)) < 1e-12);
  }
});

void test('alpha outside [0, 1] or a temperature <= 0 is refused with the option named', () => {
  assert.throws(
    () => checkDistillLoss({ alpha: 1.5, temperature: 1 }),
    (e: unknown) => e instanceof ConfigError && e.key === 'distill.alpha',
  );
  assert.throws(
    () => checkDistillLoss({ alpha: 0.5, temperature: 0 }),
    (e: unknown) => e instanceof ConfigError && e.key === 'distill.temperature',
  );
});
