import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../lib/errors.js';
import { CachedEntityStore } from '../../../model-store/cached-store.js';
import { MemoryEntityStore } from '../../../model-store/memory-store.js';
import { originOf } from '../../../model-store/origin.js';
import type { EntityState, EntityStore, StateScope } from '../../../model-store/types.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm' };
const st = (offset: number): EntityState => ({ count: offset + 1, lastOffset: offset, lastEventMs: offset, params: Float32Array.from([offset]) });

/** Counts the ids the cache asks the inner store for. */
class CountingStore implements EntityStore {
  reads: string[] = [];
  failPuts = false;
  constructor(readonly inner = new MemoryEntityStore()) {}
  getMany(s: StateScope, ids: readonly string[]): Promise<(EntityState | undefined)[]> {
    this.reads.push(...ids);
    return this.inner.getMany(s, ids);
  }
  putMany(s: StateScope, e: readonly { entityId: string; state: EntityState }[]): Promise<{ written: number; skipped: number }> {
    return this.failPuts ? Promise.reject(new Error('down')) : this.inner.putMany(s, e);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

void test('LRU stays within maxEntries and evicts the least recently used', async () => {
  const inner = new CountingStore();
  const c = new CachedEntityStore(inner, { maxEntries: 3 });
  await c.putMany(
    scope,
    ['a', 'b', 'c'].map((entityId, i) => ({ entityId, state: st(i) })),
  );
  await c.getMany(scope, ['a']); // a becomes most recent; b is now the LRU
  await c.putMany(scope, [{ entityId: 'd', state: st(9) }]);
  assert.equal(c.size, 3);
  inner.reads = [];
  assert.deepEqual(await c.getMany(scope, ['a', 'b', 'c', 'd']), [st(0), st(1), st(2), st(9)]);
  assert.deepEqual(inner.reads, ['b'], 'only the evicted entity is read from the inner store');
  for (let i = 0; i < 50; i++) await c.putMany(scope, [{ entityId: `e${i}`, state: st(i) }]);
  assert.equal(c.size, 3);
});

void test('written states are served from the cache; reads expire after readTtlMs', async () => {
  let now = 1000;
  const inner = new CountingStore();
  await inner.inner.putMany(scope, [{ entityId: 'other', state: st(1) }]);
  const c = new CachedEntityStore(inner, { readTtlMs: 100, now: () => now });
  await c.putMany(scope, [{ entityId: 'mine', state: st(4) }]);
  await c.getMany(scope, ['mine', 'other']);
  assert.deepEqual(inner.reads, ['other']);
  now += 50;
  await c.getMany(scope, ['mine', 'other']);
  assert.deepEqual(inner.reads, ['other'], 'fresh read served from cache');
  now += 100;
  await c.getMany(scope, ['mine', 'other']);
  assert.deepEqual(inner.reads, ['other', 'other'], 'expired read reloaded, written state kept');
  assert.deepEqual(c.stats(), { hits: 4, misses: 2, size: 2 });
});

void test('write-through: a failed inner put leaves the cache unchanged', async () => {
  const inner = new CountingStore();
  const c = new CachedEntityStore(inner);
  await c.putMany(scope, [{ entityId: 'a', state: st(1) }]);
  inner.failPuts = true;
  await assert.rejects(c.putMany(scope, [{ entityId: 'a', state: st(2) }]), /down/);
  assert.deepEqual(await c.getMany(scope, ['a']), [st(1)]);
});

void test('callers mutating returned or written states cannot corrupt the cache', async () => {
  const c = new CachedEntityStore(new MemoryEntityStore());
  const s = st(1);
  await c.putMany(scope, [{ entityId: 'a', state: s }]);
  s.params[0] = 777;
  const [got] = await c.getMany(scope, ['a']);
  got!.params[0] = 888;
  assert.deepEqual(await c.getMany(scope, ['a']), [st(1)]);
});

void test('CAS outcome mirrors the inner store; unexpected skips drop the entries', async () => {
  const inner = new CountingStore();
  await inner.inner.putMany(scope, [{ entityId: 'x', state: st(10) }]); // written by someone else
  const c = new CachedEntityStore(inner, { readTtlMs: 0 });
  assert.deepEqual(
    await c.putMany(scope, [
      { entityId: 'a', state: st(3) },
      { entityId: 'a', state: st(2) },
    ]),
    { written: 1, skipped: 1 },
  );
  assert.deepEqual(await c.putMany(scope, [{ entityId: 'x', state: st(5) }]), { written: 0, skipped: 1 });
  inner.reads = [];
  assert.deepEqual(await c.getMany(scope, ['a', 'x']), [st(3), st(10)]);
  assert.deepEqual(inner.reads, ['x'], 'the stale write of x was not cached');
});

void test('invalidate and invalidateAll force reloads', async () => {
  const inner = new CountingStore();
  const c = new CachedEntityStore(inner);
  const other: StateScope = { ...scope, side: 'user' };
  await c.putMany(scope, [{ entityId: 'a', state: st(1) }]);
  await c.putMany(other, [{ entityId: 'a', state: st(2) }]);
  c.invalidate(scope);
  assert.equal(c.size, 1);
  c.invalidateAll();
  assert.equal(c.size, 0);
  assert.deepEqual(await c.getMany(scope, ['a']), [st(1)]);
  assert.deepEqual(inner.reads, ['a']);
});

void test('rejects invalid options naming the key', () => {
  assert.throws(
    () => new CachedEntityStore(new MemoryEntityStore(), { maxEntries: 0 }),
    (e: unknown) => e instanceof ConfigError && e.key === 'maxEntries',
  );
  assert.throws(
    () => new CachedEntityStore(new MemoryEntityStore(), { readTtlMs: -1 }),
    (e: unknown) => e instanceof ConfigError && e.key === 'readTtlMs',
  );
});

void test('invalidatePartitions drops the states of moved partitions and of unknown origin, keeps the rest', async () => {
  const inner = new CountingStore();
  const c = new CachedEntityStore(inner);
  const on = (offset: number, partition: number): EntityState => ({ ...st(offset), origin: originOf('topic', partition) });
  await c.putMany(scope, [
    { entityId: 'p0', state: on(1, 0) },
    { entityId: 'p1', state: on(2, 1) },
    { entityId: 'other-topic', state: { ...st(3), origin: originOf('other', 0) } },
    { entityId: 'unknown', state: st(4) },
  ]);
  assert.equal(c.invalidatePartitions([{ topic: 'topic', partition: 0 }]), 2);
  inner.reads = [];
  await c.getMany(scope, ['p0', 'p1', 'other-topic', 'unknown']);
  assert.deepEqual(inner.reads, ['p0', 'unknown'], 'only the moved partition and the state of unknown origin are read again');
});

void test("a write of another origin replaces a cached state with a higher offset (the store's CAS does too)", async () => {
  const inner = new CountingStore();
  const c = new CachedEntityStore(inner);
  await c.putMany(scope, [{ entityId: 'x', state: { ...st(50), origin: originOf('topic', 0) } }]);
  const moved: EntityState = { ...st(3), origin: originOf('topic', 7) };
  assert.deepEqual(await c.putMany(scope, [{ entityId: 'x', state: moved }]), { written: 1, skipped: 0 });
  inner.reads = [];
  assert.deepEqual(await c.getMany(scope, ['x']), [moved]);
  assert.deepEqual(inner.reads, [], 'served from the cache, which followed the store');
  // Same origin: the usual CAS (a lower offset is a redelivery).
  assert.deepEqual(await c.putMany(scope, [{ entityId: 'x', state: { ...st(2), origin: originOf('topic', 7) } }]), { written: 0, skipped: 1 });
});
