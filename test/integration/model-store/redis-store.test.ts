import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { ThawError } from '../../../lib/errors.js';
import { CAS_SCRIPT } from '../../../model-store/cas-script.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import { originOf } from '../../../model-store/origin.js';
import { encodeState } from '../../../model-store/state-codec.js';
import type { EntityState, StateScope } from '../../../model-store/types.js';
import { dropPrefix, keysUnder, openRedis, uniquePrefix } from './helpers.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
const st = (offset: number, v = offset): EntityState => ({ count: offset + 1, lastOffset: offset, lastEventMs: 1_700_000_000_000 + offset, params: Float32Array.from([v, -v, v / 4]) });

let redis: Redis;
const prefixes: string[] = [];

before(async () => {
  redis = openRedis();
  // Loaded up front so round-trip counts do not depend on what the shared server has cached
  // (the NOSCRIPT path is covered in redis-outage.test.ts on a throwaway server).
  await redis.script('LOAD', CAS_SCRIPT);
});
after(async () => {
  for (const p of prefixes) await dropPrefix(redis, p);
  await redis.quit();
});

function newStore(opts: { ttlSeconds?: number } = {}): { store: RedisEntityStore; prefix: string; calls: Record<string, number> } {
  const prefix = uniquePrefix();
  prefixes.push(prefix);
  // Count round trips by wrapping the client methods the store uses (only on this test's view).
  const calls: Record<string, number> = { mgetBuffer: 0, evalsha: 0 };
  const spy = Object.create(redis) as Redis;
  for (const m of ['mgetBuffer', 'evalsha'] as const) {
    const orig = (redis[m] as (...a: unknown[]) => Promise<unknown>).bind(redis);
    (spy as unknown as Record<string, unknown>)[m] = (...args: unknown[]) => {
      calls[m]!++;
      return orig(...args);
    };
  }
  return { store: new RedisEntityStore({ redis: spy, keyPrefix: prefix, ...opts }), prefix, calls };
}

void test('getMany/putMany round trip of 1000 entities in one round trip each', async () => {
  const { store, calls } = newStore();
  const ids = Array.from({ length: 1000 }, (_, i) => (i % 10 === 0 ? `odd {id} ${i} ✓` : `item-${i}`));
  assert.deepEqual(
    await store.putMany(
      scope,
      ids.map((entityId, i) => ({ entityId, state: st(i) })),
    ),
    { written: 1000, skipped: 0 },
  );
  const got = await store.getMany(scope, [...ids, 'never-seen']);
  assert.deepEqual(
    got.slice(0, 1000),
    ids.map((_, i) => st(i)),
  );
  assert.equal(got[1000], undefined);
  assert.deepEqual(calls, { mgetBuffer: 1, evalsha: 1 });
  assert.deepEqual(await store.getMany(scope, []), []);
  assert.deepEqual(await store.putMany(scope, []), { written: 0, skipped: 0 });
  await store.close(); // does not close a client it does not own
  assert.equal(await redis.ping(), 'PONG');
});

void test('CAS skips stale offsets within a batch and across batches', async () => {
  const { store } = newStore();
  const r1 = await store.putMany(scope, [
    { entityId: 'a', state: st(10) },
    { entityId: 'a', state: st(9) }, // older, same batch
    { entityId: 'a', state: st(10, 99) }, // equal offset: a redelivery, skipped
    { entityId: 'b', state: st(-1) },
    { entityId: 'b', state: st(0) }, // newer, same batch
  ]);
  assert.deepEqual(r1, { written: 3, skipped: 2 });
  const r2 = await store.putMany(scope, [
    { entityId: 'a', state: st(3) },
    { entityId: 'b', state: st(1) },
    { entityId: 'c', state: st(0) },
  ]);
  assert.deepEqual(r2, { written: 2, skipped: 1 });
  assert.deepEqual(await store.getMany(scope, ['a', 'b', 'c']), [st(10), st(1), st(0)]);
});

void test('TTL is set on every write (default 30 days, configurable, 0 = none)', async () => {
  const { store } = newStore();
  await store.putMany(scope, [{ entityId: 'a', state: st(1) }]);
  const ttl = await redis.ttl(store.keyOf(scope, 'a'));
  assert.ok(ttl > 30 * 24 * 3600 - 60 && ttl <= 30 * 24 * 3600, `ttl ${ttl}`);

  const short = newStore({ ttlSeconds: 120 }).store;
  await short.putMany(scope, [{ entityId: 'a', state: st(1) }]);
  await redis.expire(short.keyOf(scope, 'a'), 5);
  await short.putMany(scope, [{ entityId: 'a', state: st(2) }]);
  const t2 = await redis.ttl(short.keyOf(scope, 'a'));
  assert.ok(t2 > 100 && t2 <= 120, `ttl refreshed on write: ${t2}`);

  const none = newStore({ ttlSeconds: 0 }).store;
  await none.putMany(scope, [{ entityId: 'a', state: st(1) }]);
  assert.equal(await redis.ttl(none.keyOf(scope, 'a')), -1);
});

void test('keys follow the documented layout with a hash tag per entity', async () => {
  const { store, prefix } = newStore();
  await store.putMany(scope, [
    { entityId: 'i1', state: st(1) },
    { entityId: '{x}', state: st(2) },
  ]);
  await store.putMany({ ...scope, side: 'user', namespace: 'replay-1' }, [{ entityId: 'u1', state: st(3) }]);
  assert.deepEqual(await keysUnder(redis, `${prefix}:*`), [`${prefix}:live:item:fm-adagrad:{%7Bx%7D}`, `${prefix}:live:item:fm-adagrad:{i1}`, `${prefix}:replay-1:user:fm-adagrad:{u1}`]);
});

void test('a corrupt stored value: getMany throws STATE_CORRUPT naming the key, putMany overwrites it', async () => {
  const { store } = newStore();
  const key = store.keyOf(scope, 'bad');
  await redis.set(key, Buffer.from([1, 2, 3]));
  await assert.rejects(store.getMany(scope, ['bad']), (e: unknown) => e instanceof ThawError && e.code === 'STATE_CORRUPT' && e.message.includes(key));
  assert.deepEqual(await store.putMany(scope, [{ entityId: 'bad', state: st(0) }]), { written: 1, skipped: 0 });
  assert.deepEqual(await store.getMany(scope, ['bad']), [st(0)]);
  // A stored state written by a newer format version is overwritten rather than compared blindly.
  const future = encodeState(st(100));
  future[0] = 9;
  await redis.set(key, future);
  assert.deepEqual(await store.putMany(scope, [{ entityId: 'bad', state: st(1) }]), { written: 1, skipped: 0 });
});

void test('a wrong-type key surfaces as REDIS_ERROR', async () => {
  const { store } = newStore();
  await redis.hset(store.keyOf(scope, 'h'), 'f', 'v');
  await assert.rejects(store.putMany(scope, [{ entityId: 'h', state: st(1) }]), (e: unknown) => e instanceof ThawError && e.code === 'REDIS_ERROR' && /WRONGTYPE/.test(e.message));
});

void test('several scopes in one MGET and one atomic EVALSHA, recent views round-trip, the cap applies per scope', async () => {
  const { store: plain, calls } = newStore();
  const other: StateScope = { namespace: 'live', side: 'user', adapter: 'fm-adagrad' };
  const guard: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad.sg' };
  const withViews: EntityState = {
    ...st(7),
    recent: {
      baseMs: 1_700_000_000_000,
      entries: [
        { key: 4_000_000_000, eventMs: 1_700_000_000_006, before: Float32Array.of(1, 2) },
        { key: 5, eventMs: 1_700_000_000_007, before: undefined },
      ],
    },
  };
  const res = await plain.putManyScoped([
    {
      scope,
      entries: [
        { entityId: 'a', state: withViews },
        { entityId: 'b', state: st(3) },
      ],
    },
    { scope: other, entries: [] },
    { scope: guard, entries: [{ entityId: 'p0', state: st(9) }] },
  ]);
  assert.deepEqual(res, [
    { written: 2, skipped: 0 },
    { written: 0, skipped: 0 },
    { written: 1, skipped: 0 },
  ]);
  assert.equal(calls.evalsha, 1, 'one atomic script for every scope');
  const got = await plain.getManyScoped([
    { scope, entityIds: ['a', 'b', 'x'] },
    { scope: other, entityIds: ['a'] },
    { scope: guard, entityIds: ['p0'] },
  ]);
  assert.equal(calls.mgetBuffer, 1, 'one MGET for every scope');
  assert.deepEqual(got, [[withViews, st(3), undefined], [undefined], [st(9)]]);
  // CAS per entry across scopes: a stale write of one scope is skipped, the other scope's goes through.
  assert.deepEqual(
    await plain.putManyScoped([
      { scope, entries: [{ entityId: 'a', state: st(5) }] },
      { scope: guard, entries: [{ entityId: 'p0', state: st(10) }] },
    ]),
    [
      { written: 0, skipped: 1 },
      { written: 1, skipped: 0 },
    ],
  );

  // With a cap, each scope keeps its own least-recently-seen index in the same script.
  const prefix = uniquePrefix();
  prefixes.push(prefix);
  const capped = new RedisEntityStore({ redis, keyPrefix: prefix, maxEntities: 2 });
  const r = await capped.putManyScoped([
    { scope, entries: ['a', 'b', 'c'].map((entityId, i) => ({ entityId, state: st(i) })) },
    { scope: guard, entries: [{ entityId: 'p0', state: st(1) }] },
  ]);
  assert.deepEqual(r, [
    { written: 3, skipped: 0, evicted: 1 },
    { written: 1, skipped: 0, evicted: 0 },
  ]);
  assert.deepEqual(
    (await capped.getMany(scope, ['a', 'b', 'c'])).map((s) => s?.lastOffset),
    [undefined, 1, 2],
  );
  assert.equal(await capped.trackedEntities(guard), 1);
});

void test('progress rides in the same EVALSHA as the states: max of the offsets, TTL of the states, readable by HGET', async () => {
  const { store, calls } = newStore({ ttlSeconds: 3600 });
  const progress = { scope, topic: 'thaw.labelled.by-item', partition: 3 };
  await store.putManyScoped([{ scope, entries: [{ entityId: 'a', state: st(10) }] }], { ...progress, offset: 12 });
  assert.equal(calls.evalsha, 1, 'one round trip for states and progress');
  assert.equal(await store.getProgress(scope, progress.topic, 3), 12);
  // A redelivered batch (its state refused by the CAS) never moves the progress back.
  assert.deepEqual(await store.putManyScoped([{ scope, entries: [{ entityId: 'a', state: st(5) }] }], { ...progress, offset: 7 }), [{ written: 0, skipped: 1 }]);
  assert.equal(await store.getProgress(scope, progress.topic, 3), 12);
  // Progress alone (a batch of redeliveries only) is recorded too.
  await store.putManyScoped([], { ...progress, offset: 20 });
  assert.equal(await store.getProgress(scope, progress.topic, 3), 20);
  assert.equal(await store.getProgress(scope, progress.topic, 4), undefined);
  const ttl = await redis.ttl(store.progressKeyOf(scope));
  assert.ok(ttl > 3000 && ttl <= 3600, `progress TTL ${ttl}`);
});

void test('the Lua CAS lets a state of another origin replace a higher offset; format-1 states keep the offset rule', async () => {
  const { store } = newStore();
  const on = (offset: number, partition: number): EntityState => ({ ...st(offset), origin: originOf('topic', partition) });
  await store.putMany(scope, [{ entityId: 'x', state: on(50, 0) }]);
  assert.deepEqual(await store.putMany(scope, [{ entityId: 'x', state: on(3, 7) }]), { written: 1, skipped: 0 }, 'another partition: written');
  assert.deepEqual(await store.getMany(scope, ['x']), [on(3, 7)]);
  assert.deepEqual(await store.putMany(scope, [{ entityId: 'x', state: on(2, 7) }]), { written: 0, skipped: 1 }, 'same partition: CAS');
  // A state written before origins existed (format 1) is compared by offset only.
  await redis.set(store.keyOf(scope, 'old'), encodeState(st(40)));
  assert.deepEqual(await store.putMany(scope, [{ entityId: 'old', state: on(39, 1) }]), { written: 0, skipped: 1 });
  assert.deepEqual(await store.putMany(scope, [{ entityId: 'old', state: on(41, 1) }]), { written: 1, skipped: 0 });
  assert.deepEqual(await store.getMany(scope, ['old']), [on(41, 1)]);
});
