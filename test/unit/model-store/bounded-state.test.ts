import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../lib/errors.js';
import { CachedEntityStore } from '../../../model-store/cached-store.js';
import { namespacePattern, seenIndexKey, seenIndexPattern } from '../../../model-store/keys.js';
import { MemoryEntityStore } from '../../../model-store/memory-store.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import type { EntityState, EntityStore, StateScope } from '../../../model-store/types.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
const st = (offset: number): EntityState => ({ count: offset + 1, lastOffset: offset, lastEventMs: offset, params: Float32Array.from([offset]) });

void test('maxEntities is validated at construction (before any connection)', () => {
  for (const bad of [-1, 1.5, Number.NaN, Infinity]) {
    assert.throws(
      () => new RedisEntityStore({ redis: { url: 'redis://127.0.0.1:1' }, maxEntities: bad }),
      (e: unknown) => e instanceof ConfigError && e.key === 'maxEntities',
      String(bad),
    );
  }
});

void test('last-seen index keys never match a namespace SCAN pattern', () => {
  const k = seenIndexKey('thaw', scope);
  assert.equal(k, 'thaw:_seen:live:item:fm-adagrad');
  const glob = (p: string): RegExp => new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '*' ? '.*' : `\\${c}`))}$`);
  assert.equal(glob(namespacePattern('thaw', 'live')).test(k), false);
  assert.equal(glob(seenIndexPattern('thaw', 'live')).test(k), true);
  assert.equal(glob(seenIndexPattern('thaw', 'replay')).test(k), false);
});

/** A memory store that says it can evict (as RedisEntityStore with maxEntities > 0 does). */
class EvictingStore implements EntityStore {
  readonly evictsEntities = true;
  reads: string[] = [];
  constructor(readonly inner = new MemoryEntityStore()) {}
  getMany(s: StateScope, ids: readonly string[]): Promise<(EntityState | undefined)[]> {
    this.reads.push(...ids);
    return this.inner.getMany(s, ids);
  }
  putMany(s: StateScope, e: readonly { entityId: string; state: EntityState }[]): Promise<{ written: number; skipped: number }> {
    return this.inner.putMany(s, e);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

void test('cache tier: written states expire after readTtlMs only over an evicting store', async () => {
  let now = 0;
  const evicting = new EvictingStore();
  const c = new CachedEntityStore(evicting, { readTtlMs: 500, now: () => now });
  await c.putMany(scope, [{ entityId: 'a', state: st(1) }]);
  now = 499;
  assert.deepEqual(await c.getMany(scope, ['a']), [st(1)]);
  assert.deepEqual(evicting.reads, [], 'served from the cache within readTtlMs');
  now = 500;
  assert.deepEqual(await c.getMany(scope, ['a']), [st(1)]);
  assert.deepEqual(evicting.reads, ['a'], 're-read from the store after readTtlMs');

  // Over a store that never evicts, states written through the cache stay authoritative.
  now = 0;
  const plain = new EvictingStore();
  Object.defineProperty(plain, 'evictsEntities', { value: false });
  const p = new CachedEntityStore(plain, { readTtlMs: 500, now: () => now });
  await p.putMany(scope, [{ entityId: 'a', state: st(1) }]);
  now = 1e9;
  assert.deepEqual(await p.getMany(scope, ['a']), [st(1)]);
  assert.deepEqual(plain.reads, []);
});
