import assert from 'node:assert/strict';
import { test } from 'node:test';
import { at, defined } from '../../../lib/at.js';
import { ThawError } from '../../../lib/errors.js';

const internal = (e: unknown): boolean => e instanceof ThawError && e.code === 'INTERNAL';

void test('at returns the element in range and throws INTERNAL naming the index out of range', () => {
  const xs = Float32Array.from([1.5, 0, -2]);
  assert.equal(at(xs, 0), 1.5);
  assert.equal(at(xs, 1), 0);
  assert.equal(at(['a', 'b'], 1), 'b');
  assert.throws(
    () => at(xs, 3, 'row'),
    (e: unknown) => internal(e) && /row 3 out of range \[0, 3\)/.test((e as Error).message),
  );
  assert.throws(() => at(xs, -1), internal);
  assert.throws(() => at(xs, 0.5), internal);
});

void test('defined passes present values (0, empty string, null) and throws INTERNAL on undefined', () => {
  assert.equal(defined(0, 'zero'), 0);
  assert.equal(defined('', 'empty'), '');
  assert.equal(defined(null, 'null'), null);
  assert.throws(
    () => defined(new Map<string, number>().get('x'), 'entry x'),
    (e: unknown) => internal(e) && /entry x is missing/.test((e as Error).message),
  );
});
