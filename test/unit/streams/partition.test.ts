/**
 * `partitionOfKey` (streams/producer.ts): where the producer sends a keyed message, so per-partition
 * state can be replayed offline (the integration tests of the meta workers check it against the
 * broker's placement through the safeguard's per-partition fold).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../../lib/errors.js';
import { partitionOfKey } from '../../../streams/producer.js';

void test('a key always lands in the same partition, in range; keys spread over the partitions', () => {
  const keys = Array.from({ length: 600 }, (_, i) => `user-${i}`);
  const seen = new Map<number, number>();
  for (const k of keys) {
    const p = partitionOfKey(k, 3);
    assert.ok(Number.isInteger(p) && p >= 0 && p < 3, `${k}: ${p}`);
    assert.equal(partitionOfKey(k, 3), p);
    seen.set(p, (seen.get(p) ?? 0) + 1);
  }
  assert.equal(seen.size, 3);
  for (const n of seen.values()) assert.ok(n > 150, `partition sizes ${JSON.stringify([...seen])}`);
  assert.equal(partitionOfKey('anything', 1), 0);
  assert.throws(
    () => partitionOfKey('k', 0),
    (e: unknown) => e instanceof ConfigError && e.key === 'partitions',
  );
});
