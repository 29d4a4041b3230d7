/**
 * Bounded state on the real Redis: TTL expiry of idle entities, the `maxEntities` cap evicting the
 * least recently seen, and what eviction means for the processor (fresh restart, exactly-once for
 * the entities that remain) and for the cache tier in front.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { BatchProcessor, type BatchItem } from '../../../consumers/processor.js';
import { CachedEntityStore } from '../../../model-store/cached-store.js';
import { countNamespace, dropNamespace, promoteNamespace } from '../../../model-store/namespaces.js';
import { CAS_SCRIPT } from '../../../model-store/cas-script.js';
import { RedisEntityStore, type RedisEntityStoreOptions } from '../../../model-store/redis-store.js';
import type { EntityState, StateScope } from '../../../model-store/types.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { RecordingSink, ToyAdapter } from '../../unit/consumers/fakes.js';
import { dropPrefix, keysUnder, openRedis, uniquePrefix } from './helpers.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'toy' };
const st = (offset: number): EntityState => ({ count: offset + 1, lastOffset: offset, lastEventMs: 1_700_000_000_000 + offset, params: Float32Array.from([offset, 1, 2]) });

let redis: Redis;
const prefixes: string[] = [];

before(async () => {
  redis = openRedis();
  await redis.script('LOAD', CAS_SCRIPT);
});
after(async () => {
  for (const p of prefixes) await dropPrefix(redis, p);
  await redis.quit();
});

function newStore(opts: Omit<RedisEntityStoreOptions, 'redis' | 'keyPrefix'> = {}): { store: RedisEntityStore; prefix: string } {
  const prefix = uniquePrefix();
  prefixes.push(prefix);
  return { store: new RedisEntityStore({ redis, keyPrefix: prefix, ...opts }), prefix };
}

/** Entity ids whose state key exists in a scope (SCAN), sorted. */
async function storedIds(prefix: string, s: StateScope = scope): Promise<string[]> {
  const head = `${prefix}:${s.namespace}:${s.side}:${s.adapter}:{`;
  return (await keysUnder(redis, `${prefix}:${s.namespace}:${s.side}:${s.adapter}:*`)).map((k) => k.slice(head.length, -1)).sort();
}

/** Waits (bounded) until `cond` holds; the assertion that follows checks what matters. */
async function waitFor(cond: () => Promise<boolean>, maxMs: number, tick: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + maxMs;
  while (!(await cond()) && Date.now() < deadline) {
    await tick();
    await sleep(200);
  }
}

void test('TTL: an idle entity expires while an entity written meanwhile survives (index trimmed too)', async () => {
  for (const maxEntities of [0, 100]) {
    const { store, prefix } = newStore({ ttlSeconds: 1, maxEntities });
    await store.putMany(scope, [
      { entityId: 'idle', state: st(0) },
      { entityId: 'busy', state: st(1) },
    ]);
    let offset = 1;
    // Keep writing `busy` (each write refreshes its 1 s TTL) until `idle` has expired.
    const writeBusy = async (): Promise<void> => {
      await store.putMany(scope, [{ entityId: 'busy', state: st(++offset) }]);
    };
    await waitFor(async () => (await store.getMany(scope, ['idle']))[0] === undefined, 10_000, writeBusy);
    await writeBusy();
    const [idle, busy] = await store.getMany(scope, ['idle', 'busy']);
    assert.equal(idle, undefined, `idle entity expired (maxEntities ${maxEntities})`);
    assert.deepEqual(busy, st(offset), 'the entity written meanwhile survives with its latest state');
    if (maxEntities > 0) {
      // The write after the expiry trimmed `idle` from the last-seen index.
      assert.deepEqual(await redis.zrange(store.seenIndexKeyOf(scope), 0, -1), ['busy']);
      const ttl = await redis.pttl(store.seenIndexKeyOf(scope));
      assert.ok(ttl > 0 && ttl <= 1000, `the index expires with its newest state: ${ttl} ms`);
    } else {
      assert.deepEqual(await keysUnder(redis, `${prefix}:_seen:*`), [], 'no index without a cap');
    }
  }
});

/** A deterministic generator for the stream test. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

void test('maxEntities evicts exactly the least recently seen and keeps the count <= cap over a stream of batches', async () => {
  const cap = 40;
  const { store, prefix } = newStore({ maxEntities: cap });
  const rnd = rng(7);
  // Reference model: stored offset per entity, Map order = least recently written first.
  const model = new Map<string, number>();
  let nextOffset = 0;
  let evictedTotal = 0;
  for (let b = 0; b < 60; b++) {
    const size = 1 + Math.floor(rnd() * 30);
    const entries: { entityId: string; state: EntityState }[] = [];
    for (let j = 0; j < size; j++) {
      const id = `e${Math.floor(rnd() * 150)}`;
      // Now and then a stale redelivery (an older offset), which the CAS skips and must not refresh.
      const offset = rnd() < 0.15 ? Math.max(0, nextOffset - 200) : nextOffset++;
      entries.push({ entityId: id, state: st(offset) });
    }
    let written = 0;
    let skipped = 0;
    for (const { entityId, state } of entries) {
      const cur = model.get(entityId);
      if (cur !== undefined && cur >= state.lastOffset) skipped++;
      else {
        model.delete(entityId);
        model.set(entityId, state.lastOffset);
        written++;
      }
    }
    let evicted = 0;
    for (const id of model.keys()) {
      if (model.size <= cap) break;
      model.delete(id);
      evicted++;
    }
    evictedTotal += evicted;
    assert.deepEqual(await store.putMany(scope, entries), { written, skipped, evicted }, `batch ${b}`);
    assert.ok((await store.trackedEntities(scope)) <= cap);
  }
  assert.ok(evictedTotal > 100, `the stream exercised eviction (${evictedTotal})`);
  assert.equal(store.evicted, evictedTotal);
  assert.deepEqual(await storedIds(prefix), [...model.keys()].sort(), 'exactly the most recently seen entities remain');
  assert.deepEqual(await redis.zrange(store.seenIndexKeyOf(scope), 0, -1), [...model.keys()], 'index in last-seen order');
  const states = await store.getMany(scope, [...model.keys()]);
  assert.deepEqual(
    states.map((s) => s?.lastOffset),
    [...model.values()],
  );
  // Other scopes have their own cap and index.
  const other: StateScope = { ...scope, side: 'user' };
  await store.putMany(other, [{ entityId: 'u', state: st(0) }]);
  assert.equal(await store.trackedEntities(other), 1);
  assert.equal(await store.trackedEntities(scope), cap);
});

void test('ids with braces and percent signs are evicted by their own key', async () => {
  const { store, prefix } = newStore({ maxEntities: 2 });
  const ids = ['{a}', '%7B', 'plain %'];
  for (const [i, id] of ids.entries()) await store.putMany(scope, [{ entityId: id, state: st(i) }]);
  assert.deepEqual(await store.getMany(scope, ids), [undefined, st(1), st(2)]);
  assert.equal((await storedIds(prefix)).length, 2);
});

function ev(itemId: string, n: number): LabelledEvent {
  return { eventId: `ev-${n}`, timeMs: 1_700_000_000_000 + n, userId: `u${n % 3}`, itemId, label: n % 2 === 0 ? 1 : 0, userFeatures: {}, itemFeatures: {} };
}
function batch(spec: [string, number][]): BatchItem[] {
  return spec.map(([id, offset]) => ({ offset, event: ev(id, offset) }));
}

void test('through BatchProcessor: an evicted entity restarts from the initial state; remaining ones keep exactly-once', async () => {
  const { store, prefix } = newStore({ maxEntities: 3 });
  const adapter = new ToyAdapter('item');
  const sink = new RecordingSink();
  const proc = new BatchProcessor({ adapter, store, sink, scope });

  await proc.process(
    batch([
      ['A', 0],
      ['B', 1],
      ['C', 2],
    ]),
  );
  const b2 = batch([
    ['D', 3],
    ['B', 4],
    ['E', 5],
  ]);
  const r2 = await proc.process(b2);
  assert.equal(r2.statesWritten, 3);
  assert.deepEqual(await storedIds(prefix), ['B', 'D', 'E'], 'A and C were least recently seen');

  // A redelivery of batch 2 (crash before the commit): every remaining entity skips it.
  const rows = sink.rows.length;
  const again = await proc.process(b2);
  assert.deepEqual([again.processed, again.skipped, again.statesWritten], [0, 3, 0]);
  assert.equal(sink.rows.length, rows, 'nothing scored twice');
  assert.deepEqual(await storedIds(prefix), ['B', 'D', 'E']);

  const r3 = await proc.process(
    batch([
      ['A', 6],
      ['B', 7],
    ]),
  );
  assert.equal(r3.newEntities, 1, 'A starts afresh');
  const a = sink.rows.find((r) => r.eventId === 'ev-6');
  const b = sink.rows.find((r) => r.eventId === 'ev-7');
  assert.equal(a?.priorCount, 0);
  assert.equal(b?.priorCount, 2, 'B continues');
  const [sa, sb] = await store.getMany(scope, ['A', 'B']);
  // Toy state: [bias, weight, events seen]; A's history before eviction is gone.
  assert.deepEqual([sa?.count, sa?.lastOffset, sa?.params[2]], [1, 6, 1]);
  assert.deepEqual([sb?.count, sb?.lastOffset, sb?.params[2]], [3, 7, 3]);
  // The score of A's new event is the initial state's score, as for a never-seen entity.
  const fresh = adapter.predict({ events: [ev('A', 6)], states: [adapter.initialState(ev('A', 6))] });
  assert.equal(a?.score, fresh[0]);
  assert.deepEqual(await storedIds(prefix), ['A', 'B', 'E'], 'D was now the least recently seen');
});

void test('cache tier over an evicting store: an evicted entity is served from the cache at most readTtlMs', async () => {
  const { store, prefix } = newStore({ maxEntities: 2 });
  let now = 1_000_000;
  const cache = new CachedEntityStore(store, { readTtlMs: 1000, now: () => now });
  const sink = new RecordingSink();
  const proc = new BatchProcessor({ adapter: new ToyAdapter('item'), store: cache, sink, scope });
  await proc.process(
    batch([
      ['A', 0],
      ['B', 1],
    ]),
  );
  await proc.process(batch([['C', 2]]));
  assert.deepEqual(await storedIds(prefix), ['B', 'C'], 'A evicted in Redis, still cached');
  now += 1001;
  const r = await proc.process(batch([['A', 3]]));
  assert.equal(r.newEntities, 1, 'past readTtlMs the cache no longer resurrects A');
  assert.equal(sink.rows.at(-1)?.priorCount, 0);
});

void test('namespaces: dropping one drops its last-seen indexes; promoting leaves the target index alone', async () => {
  const { store, prefix } = newStore({ maxEntities: 10 });
  const replay: StateScope = { ...scope, namespace: 'replay' };
  await store.putMany(scope, [{ entityId: 'live-1', state: st(0) }]);
  await store.putMany(replay, [
    { entityId: 'r-1', state: st(0) },
    { entityId: 'r-2', state: st(1) },
  ]);
  assert.equal(await countNamespace(redis, prefix, 'replay'), 2, 'the index is not counted as a state');
  assert.equal(await promoteNamespace(redis, prefix, 'replay', 'live'), 2);
  assert.deepEqual(await keysUnder(redis, `${prefix}:_seen:*`), [store.seenIndexKeyOf(scope)], "replay's index dropped with it");
  assert.deepEqual(await redis.zrange(store.seenIndexKeyOf(scope), 0, -1), ['live-1'], 'promoted entities join on their next write');
  assert.equal(await dropNamespace(redis, prefix, 'live', { force: true }), 3);
  assert.deepEqual(await keysUnder(redis, `${prefix}:*`), []);
});
