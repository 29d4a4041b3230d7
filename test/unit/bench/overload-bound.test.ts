import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cpuCosts, goodputBound, rhoFor } from '../../../bench/serving/overload-bound.js';

test('cpuCosts solves CPU per answer and per refusal from two rows', () => {
  // s = 300 µs, r = 60 µs: 1,000 answers/s and 500 refusals/s use 0.33 cores; 1,500 and 4,000 use 0.69.
  const costs = cpuCosts({ okPerSec: 1000, shedPerSec: 500, cpuCores: 0.33 }, { okPerSec: 1500, shedPerSec: 4000, cpuCores: 0.69 });
  assert.ok(costs !== undefined);
  assert.ok(Math.abs(costs.answerUs - 300) < 1e-6, String(costs.answerUs));
  assert.ok(Math.abs(costs.refusalUs - 60) < 1e-6, String(costs.refusalUs));
  assert.equal(cpuCosts({ okPerSec: 1000, shedPerSec: 100, cpuCores: 0.3 }, { okPerSec: 2000, shedPerSec: 200, cpuCores: 0.6 }), undefined, 'proportional rows');
  assert.equal(cpuCosts({ okPerSec: 1000, shedPerSec: 0, cpuCores: 0.3 }, { okPerSec: 1000, shedPerSec: 1000, cpuCores: 0.2 }), undefined, 'a negative refusal cost');
});

test('goodputBound: what one core can answer at f × capacity when a refusal costs ρ of an answer', () => {
  assert.equal(goodputBound(3, 0), 1);
  assert.ok(Math.abs(goodputBound(3, 0.2) - 0.5) < 1e-12);
  assert.equal(goodputBound(3, 0.5), 0);
  const rho = rhoFor(3, 0.9);
  assert.ok(Math.abs(goodputBound(3, rho) - 0.9) < 1e-12);
  assert.ok(Math.abs(rho - 0.1 / 2.1) < 1e-12);
});
