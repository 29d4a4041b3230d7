import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jsonScore, jsonString } from '../../../serving/json-out.js';

describe('respond stage JSON pieces', () => {
  test('scores print as JSON numbers within 5e-10 in [1e-4, 1], in full below and outside', () => {
    for (const x of [1e-4, 0.000123456789, 0.0105, 0.1, 0.123456789123, 0.5, 0.9999999994, 0.9999999996, 1 - 1e-12]) {
      const text = jsonScore(x);
      const back = JSON.parse(text) as number;
      assert.ok(Math.abs(back - x) <= 5e-10 + 1e-16, `${x} → ${text}`);
      assert.match(text, /^(0\.\d{9}|1)$/, text);
    }
    assert.equal(jsonScore(0.5), '0.500000000');
    assert.equal(jsonScore(0.000100001), '0.000100001');
    for (const x of [0, 3e-7, 1, 1.5, -0.25]) assert.equal(JSON.parse(jsonScore(x)), x);
    assert.equal(jsonScore(Number.NaN), 'null');
    assert.equal(jsonScore(Number.POSITIVE_INFINITY), 'null');
  });

  test('strings are quoted, escaped where JSON needs it', () => {
    for (const s of ['i42', '', 'a"b', 'back\\slash', 'tab\there', 'nl\n', '\u0001', 'é ünïcode', '😀', 'lone \ud800 surrogate', '\u2028']) {
      assert.equal(JSON.parse(jsonString(s)), s);
      assert.equal(jsonString(s), JSON.stringify(s));
    }
  });
});
