import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { ConfigError } from '../../../lib/errors.js';
import { countNamespace, dropNamespace, promoteNamespace } from '../../../model-store/namespaces.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import type { EntityState, StateScope } from '../../../model-store/types.js';
import { dropPrefix, openRedis, uniquePrefix } from './helpers.js';

const st = (offset: number): EntityState => ({ count: 1, lastOffset: offset, lastEventMs: offset, params: Float32Array.from([offset]) });
const scope = (namespace: string): StateScope => ({ namespace, side: 'item', adapter: 'fm' });
const ids = (n: number, tag: string): string[] => Array.from({ length: n }, (_, i) => `${tag}${i}`);

let redis: Redis;
const prefixes: string[] = [];
before(() => {
  redis = openRedis();
});
after(async () => {
  for (const p of prefixes) await dropPrefix(redis, p);
  await redis.quit();
});

async function seeded(): Promise<{ prefix: string; store: RedisEntityStore }> {
  const prefix = uniquePrefix();
  prefixes.push(prefix);
  const store = new RedisEntityStore({ redis, keyPrefix: prefix });
  // live: e0..e29 at offset 1; replay: e20..e59 at offset 2; other: o0..o9.
  await store.putMany(
    scope('live'),
    ids(30, 'e').map((entityId) => ({ entityId, state: st(1) })),
  );
  await store.putMany(
    scope('replay'),
    ids(60, 'e')
      .slice(20)
      .map((entityId) => ({ entityId, state: st(2) })),
  );
  await store.putMany(
    scope('other'),
    ids(10, 'o').map((entityId) => ({ entityId, state: st(3) })),
  );
  return { prefix, store };
}

void test('promote copies a namespace over another (in small batches), then drops it, leaving others untouched', async () => {
  const { prefix, store } = await seeded();
  const bystander = await seeded(); // same namespaces under another prefix
  await redis.expire(store.keyOf(scope('replay'), 'e59'), 1000);
  assert.equal(await promoteNamespace(redis, prefix, 'replay', 'live', { batchSize: 7 }), 40);
  assert.equal(await countNamespace(redis, prefix, 'replay'), 0);
  assert.equal(await countNamespace(redis, prefix, 'live'), 60);
  const live = await store.getMany(scope('live'), ids(60, 'e'));
  assert.deepEqual(
    live.map((s) => s?.lastOffset),
    [...Array<number>(20).fill(1), ...Array<number>(40).fill(2)],
  );
  const ttl = await redis.ttl(store.keyOf(scope('live'), 'e59'));
  assert.ok(ttl > 900 && ttl <= 1000, `COPY keeps the remaining TTL: ${ttl}`);
  assert.equal(await countNamespace(redis, prefix, 'other'), 10);
  assert.equal(await countNamespace(redis, bystander.prefix, 'replay'), 40);
  assert.equal(await countNamespace(redis, bystander.prefix, 'live'), 30);
});

void test('drop deletes only the namespace; live needs force', async () => {
  const { prefix } = await seeded();
  await assert.rejects(dropNamespace(redis, prefix, 'live'), (e: unknown) => e instanceof ConfigError && e.key === 'namespace');
  assert.equal(await countNamespace(redis, prefix, 'live'), 30);
  assert.equal(await dropNamespace(redis, prefix, 'replay', { batchSize: 3 }), 40);
  assert.equal(await countNamespace(redis, prefix, 'replay'), 0);
  assert.equal(await countNamespace(redis, prefix, 'other'), 10);
  assert.equal(await countNamespace(redis, prefix, 'live'), 30);
  assert.equal(await dropNamespace(redis, prefix, 'live', { force: true }), 30);
  assert.equal(await countNamespace(redis, prefix, 'other'), 10);
});

void test('guards: invalid names, from === to, promoting live away without force', async () => {
  const { prefix } = await seeded();
  await assert.rejects(promoteNamespace(redis, prefix, 'Replay', 'live'), (e: unknown) => e instanceof ConfigError && e.key === 'from');
  await assert.rejects(promoteNamespace(redis, prefix, 'replay', 'li*e'), (e: unknown) => e instanceof ConfigError && e.key === 'to');
  await assert.rejects(promoteNamespace(redis, prefix, 'replay', 'replay'), ConfigError);
  await assert.rejects(promoteNamespace(redis, prefix, 'live', 'other'), (e: unknown) => e instanceof ConfigError && e.key === 'from');
  await assert.rejects(dropNamespace(redis, 'a:b', 'replay'), (e: unknown) => e instanceof ConfigError && e.key === 'prefix');
  assert.equal(await countNamespace(redis, prefix, 'live'), 30);
  assert.equal(await countNamespace(redis, prefix, 'replay'), 40);
});
