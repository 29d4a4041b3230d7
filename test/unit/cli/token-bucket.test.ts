import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../../cli/token-bucket.js';

describe('TokenBucket', () => {
  it('rate 0 never waits', () => {
    const b = new TokenBucket(0, () => 0);
    assert.equal(b.reserve(1_000_000), 0);
  });

  it('waits in proportion to the debt and refills with time', () => {
    let t = 0;
    const b = new TokenBucket(1000, () => t);
    assert.equal(b.reserve(500), 500); // empty at start: 500 tokens at 1000/s = 500 ms
    t = 500;
    assert.equal(b.reserve(1000), 1000); // debt repaid, next 1000 need 1 s
    t = 10_000; // long idle: burst capped at one second's worth
    assert.equal(b.reserve(1000), 0);
    assert.equal(b.reserve(1000), 1000);
  });
});
