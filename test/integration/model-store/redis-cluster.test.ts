/**
 * RedisEntityStore on a real 3-master Redis Cluster (issue 11 "Redis Cluster, real"), started
 * privately with scripts/services.sh: batches split by node, one round trip per node (counted on
 * the servers: INFO commandstats), progress on every node read as the minimum, namespaces across
 * nodes, and a slot moved under the store's feet (MOVED: the map is refreshed and the batch retried).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { ConfigError, StoreRegressedError } from '../../../lib/errors.js';
import { createLogger, type Logger } from '../../../lib/log.js';
import { CLUSTER_CAS_SCRIPT } from '../../../model-store/cas-script.js';
import { countNamespace, dropNamespace, promoteNamespace } from '../../../model-store/namespaces.js';
import { slotOf } from '../../../model-store/redis-cluster.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import { createRedis } from '../../../model-store/redis.js';
import type { EntityState, StateScope } from '../../../model-store/types.js';
import { RedisStateSource } from '../../../serving/state-source.js';
import { uniquePrefix } from './helpers.js';
import { PrivateCluster } from './private-cluster.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
const guard: StateScope = { namespace: 'live', side: 'item', adapter: 'safeguard' };
const st = (offset: number, v = offset): EntityState => ({ count: offset + 1, lastOffset: offset, lastEventMs: 1_700_000_000_000 + offset, params: Float32Array.from([v, -v, v / 4]) });
const ids = (n: number, tag = 'item-'): string[] => Array.from({ length: n }, (_, i) => (i % 10 === 0 ? `odd {id} ${tag}${i} ✓` : `${tag}${i}`));

let cluster: PrivateCluster;
const nodes: Redis[] = [];

before(async () => {
  cluster = await PrivateCluster.up();
  for (const port of cluster.ports) nodes.push(cluster.node(port));
  // Loaded up front so call counts do not include a first NOSCRIPT (that path: the kill test).
  for (const n of nodes) await n.script('LOAD', CLUSTER_CAS_SCRIPT);
});
after(async () => {
  for (const n of nodes) n.disconnect();
  await cluster.down();
});

function newStore(prefix = uniquePrefix(), logger?: Logger): { store: RedisEntityStore; prefix: string } {
  return { store: new RedisEntityStore({ redis: { url: cluster.url, cluster: true }, keyPrefix: prefix, ...(logger === undefined ? {} : { logger }) }), prefix };
}

/** Calls of `command` each node has served so far (INFO commandstats, counted by the servers). */
async function served(command: string): Promise<number[]> {
  return Promise.all(
    nodes.map(async (n) => {
      const m = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await n.info('commandstats'));
      return Number(m?.[1] ?? 0);
    }),
  );
}

/** Keys under `prefix` on each node (SCAN on that node alone). */
async function keysPerNode(prefix: string): Promise<string[][]> {
  return Promise.all(
    nodes.map(async (n) => {
      const out: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await n.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        out.push(...keys);
      } while (cursor !== '0');
      return out;
    }),
  );
}

void test('getMany/putMany of 1500 entities: spread over the 3 masters, one script call per node, one read pipeline per node', async () => {
  const { store, prefix } = newStore();
  try {
    assert.equal(store.isCluster, true);
    const all = ids(1500);
    const before = await served('evalsha');
    assert.deepEqual(
      await store.putMany(
        scope,
        all.map((entityId, i) => ({ entityId, state: st(i) })),
      ),
      { written: 1500, skipped: 0 },
    );
    const after = await served('evalsha');
    assert.deepEqual(
      after.map((a, i) => a - (before[i] ?? 0)),
      [1, 1, 1],
    );
    const spread = await keysPerNode(prefix);
    assert.equal(spread.flat().length, 1500);
    for (const keys of spread) assert.ok(keys.length > 300, `every node holds a share: ${spread.map((k) => k.length).join('/')}`);

    store.callsByNode.clear();
    const got = await store.getMany(scope, [...all, 'never-seen']);
    assert.deepEqual(
      got.slice(0, 1500),
      all.map((_, i) => st(i)),
    );
    assert.equal(got[1500], undefined);
    assert.deepEqual([...store.callsByNode.values()], [1, 1, 1], 'one pipeline per node');

    // CAS across nodes: stale entries are skipped wherever they live, newer ones written.
    const again = await store.putMany(
      scope,
      all.map((entityId, i) => ({ entityId, state: i % 2 === 0 ? st(i) : st(i + 10_000) })),
    );
    assert.deepEqual(again, { written: 750, skipped: 750 });
    assert.deepEqual(
      (await store.getMany(scope, all.slice(0, 2))).map((s) => s?.lastOffset),
      [0, 10_001],
    );

    // Serving reads the same keys through the cluster, one pipeline per node.
    const source = new RedisStateSource({ url: cluster.url, cluster: true });
    try {
      const values = await source.mget(all.slice(0, 50).map((id) => store.keyOf(scope, id)));
      assert.equal(values.filter((v) => v !== null).length, 50);
    } finally {
      await source.close();
    }
  } finally {
    await store.close();
  }
});

void test('progress is written on every node in each batch, also without an entity there, and read as the minimum', async () => {
  const { store, prefix } = newStore();
  try {
    // One entity: one node gets the state, every node gets the progress.
    await store.putManyScoped([{ scope, entries: [{ entityId: 'solo', state: st(7) }] }], { scope, topic: 'events', partition: 2, offset: 7 });
    const progressKeys = (await keysPerNode(prefix)).map((keys) => keys.filter((k) => k.includes(':_progress:')));
    assert.deepEqual(
      progressKeys.map((k) => k.length),
      [1, 1, 1],
      'one progress key per node, on that node',
    );
    for (const [i, keys] of progressKeys.entries()) assert.equal(await nodes[i]?.hget(keys[0] ?? '', 'events:2'), '7');
    assert.equal(await store.getProgress(scope, 'events', 2), 7);
    assert.equal(await store.getProgress(scope, 'events', 3), undefined);

    // Two scopes in one write, plus progress: still one call per node.
    const before = await served('evalsha');
    await store.putManyScoped(
      [
        { scope, entries: ids(300, 'a').map((entityId) => ({ entityId, state: st(20) })) },
        { scope: guard, entries: [{ entityId: 'g', state: st(20) }] },
      ],
      { scope, topic: 'events', partition: 2, offset: 20 },
    );
    assert.deepEqual(
      (await served('evalsha')).map((a, i) => a - (before[i] ?? 0)),
      [1, 1, 1],
    );
    assert.equal(await store.getProgress(scope, 'events', 2), 20);

    // One node loses its last writes (its progress regresses with its states): the minimum wins.
    const lagging = progressKeys[1]?.[0] ?? '';
    await nodes[1]?.hset(lagging, 'events:2', '12');
    assert.equal(await store.getProgress(scope, 'events', 2), 12);
    // A later batch brings it forward again (max per node, never backwards).
    await store.putManyScoped([], { scope, topic: 'events', partition: 2, offset: 25 });
    assert.equal(await store.getProgress(scope, 'events', 2), 25);
    await store.putManyScoped([], { scope, topic: 'events', partition: 2, offset: 21 });
    assert.equal(await store.getProgress(scope, 'events', 2), 25);
  } finally {
    await store.close();
  }
});

void test("a running writer's expectation (expectAtLeast): a master that lost writes refuses with the min; a master without a record does not", async () => {
  const { store, prefix } = newStore();
  try {
    const many = ids(300, 'x');
    await store.putManyScoped([{ scope, entries: many.map((entityId) => ({ entityId, state: st(30) })) }], { scope, topic: 'ev', partition: 0, offset: 30 });
    const progressKeys = (await keysPerNode(prefix)).map((keys) => keys.filter((k) => k.includes(':_progress:')));
    // Checked and in step: written.
    await store.putManyScoped([{ scope, entries: many.map((entityId) => ({ entityId, state: st(40) })) }], { scope, topic: 'ev', partition: 0, offset: 40, expectAtLeast: 30 });
    assert.equal(await store.getProgress(scope, 'ev', 0), 40);

    // One master lost its last writes: the write is refused naming the min over the masters.
    await nodes[2]?.hset(progressKeys[2]?.[0] ?? '', 'ev:0', '33');
    await assert.rejects(
      store.putManyScoped([{ scope, entries: many.map((entityId) => ({ entityId, state: st(50) })) }], { scope, topic: 'ev', partition: 0, offset: 50, expectAtLeast: 40 }),
      (e: unknown) => e instanceof StoreRegressedError && e.stored === 33 && e.expected === 40,
    );
    // The refusing master applied nothing of it.
    assert.equal(await nodes[2]?.hget(progressKeys[2]?.[0] ?? '', 'ev:0'), '33');
    await nodes[2]?.hset(progressKeys[2]?.[0] ?? '', 'ev:0', '40');

    // A master whose record is gone (a slot move gave it another progress key) while the others are in
    // step: not a loss; the write goes through and the record is back.
    await nodes[0]?.del(progressKeys[0]?.[0] ?? '');
    await store.putManyScoped([{ scope, entries: many.map((entityId) => ({ entityId, state: st(60) })) }], { scope, topic: 'ev', partition: 0, offset: 60, expectAtLeast: 40 });
    assert.equal(await store.getProgress(scope, 'ev', 0), 60);
    assert.equal(await nodes[0]?.hget(progressKeys[0]?.[0] ?? '', 'ev:0'), '60');
  } finally {
    await store.close();
  }
});

void test('services.sh: up again is a no-op, status lists the 3 masters with cluster_state ok', async () => {
  await cluster.sh('up');
  const lines = (await cluster.sh('status')).trim().split('\n');
  assert.deepEqual(
    lines.map((l) => /^redis-cluster +up\/cluster:ok +127\.0\.0\.1:(\d+)/.exec(l)?.[1]),
    cluster.ports.map(String),
  );
});

void test('maxEntities is refused on a cluster (its index would live on one node)', () => {
  assert.throws(
    () => new RedisEntityStore({ redis: { url: cluster.url, cluster: true }, keyPrefix: uniquePrefix(), maxEntities: 10 }),
    (err: unknown) => err instanceof ConfigError && /maxEntities/.test(err.message) && /Redis Cluster/.test(err.message),
  );
});

void test('namespaces: count, promote and drop across the 3 nodes', async () => {
  const { store, prefix } = newStore();
  const client = createRedis({ url: cluster.url, cluster: true });
  try {
    const replay: StateScope = { ...scope, namespace: 'replay' };
    await store.putMany(
      scope,
      ids(100, 'e').map((entityId) => ({ entityId, state: st(1) })),
    );
    await store.putManyScoped(
      [
        {
          scope: replay,
          entries: ids(160, 'e')
            .slice(40)
            .map((entityId) => ({ entityId, state: st(2) })),
        },
      ],
      { scope: replay, topic: 't', partition: 0, offset: 2 },
    );
    assert.equal(await countNamespace(client, prefix, 'live'), 100);
    assert.equal(await countNamespace(client, prefix, 'replay'), 120);
    assert.equal(await promoteNamespace(client, prefix, 'replay', 'live', { batchSize: 7 }), 120);
    assert.equal(await countNamespace(client, prefix, 'replay'), 0);
    assert.equal(await countNamespace(client, prefix, 'live'), 160);
    const e = ids(160, 'e');
    assert.deepEqual(
      (await store.getMany(scope, [e[0] ?? '', e[39] ?? '', e[40] ?? '', e[159] ?? ''])).map((s) => s?.lastOffset),
      [1, 1, 2, 2],
    );
    assert.equal(await store.getProgress(replay, 't', 0), undefined, 'the promoted namespace takes its progress along when dropped');
    assert.equal(await dropNamespace(client, prefix, 'live', { force: true }), 160);
    assert.deepEqual((await keysPerNode(prefix)).flat(), []);
  } finally {
    client.disconnect();
    await store.close();
  }
});

/** Moves `slot` to the node on `toPort` with its keys, as `redis-cli --cluster reshard` does. */
async function moveSlot(slot: number, toPort: number): Promise<void> {
  const ids = await Promise.all(nodes.map(async (n) => String(await n.call('CLUSTER', 'MYID'))));
  const owner = nodes[ownerIndexOf(slot)];
  const target = nodes[cluster.ports.indexOf(toPort)];
  const targetId = ids[cluster.ports.indexOf(toPort)] ?? '';
  const ownerId = ids[ownerIndexOf(slot)] ?? '';
  if (owner === undefined || target === undefined) throw new Error('no such node');
  await target.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', ownerId);
  await owner.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', targetId);
  for (;;) {
    const keys = (await owner.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
    if (keys.length === 0) break;
    await owner.call('MIGRATE', '127.0.0.1', toPort, '', 0, 5000, 'KEYS', ...keys);
  }
  for (const n of nodes) await n.call('CLUSTER', 'SETSLOT', slot, 'NODE', targetId);
}

let slotOwners: number[] = [];
function ownerIndexOf(slot: number): number {
  const i = slotOwners[slot];
  if (i === undefined) throw new Error(`unknown owner of slot ${slot}`);
  return i;
}

void test('a slot moved under the store (MOVED, non-local keys): the slot map is refreshed and the batch retried', async () => {
  const lines: string[] = [];
  const { store, prefix } = newStore(
    uniquePrefix(),
    createLogger('info', {}, (line) => lines.push(line)),
  );
  const client = createRedis({ url: cluster.url, cluster: true });
  try {
    const all = ids(600, 'm');
    await store.putManyScoped([{ scope, entries: all.map((entityId) => ({ entityId, state: st(1) })) }], { scope, topic: 't', partition: 0, offset: 1 });
    // Who owns what, from the servers.
    const ranges = (await nodes[0]?.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    slotOwners = [];
    for (const [from, to, [, port]] of ranges) for (let s = from; s <= to; s++) slotOwners[s] = cluster.ports.indexOf(port);
    const moveAway = async (entityId: string): Promise<void> => {
      const slot = slotOf(store.keyOf(scope, entityId));
      await moveSlot(slot, cluster.ports[(ownerIndexOf(slot) + 1) % 3] ?? 0);
      slotOwners[slot] = (ownerIndexOf(slot) + 1) % 3;
    };

    // The store still has the old map: its next write meets a key its node no longer owns.
    await moveAway('m1');
    const res = await store.putManyScoped([{ scope, entries: all.map((entityId) => ({ entityId, state: st(2) })) }], { scope, topic: 't', partition: 0, offset: 2 });
    assert.equal((res[0]?.written ?? 0) + (res[0]?.skipped ?? 0), 600);
    assert.ok(
      lines.some((l) => l.includes('retrying the batch') && l.includes('non local key')),
      lines.join('\n'),
    );

    // And its next read meets MOVED.
    await moveAway('m2');
    assert.deepEqual(
      (await store.getMany(scope, all)).map((s) => s?.lastOffset),
      all.map(() => 2),
    );
    assert.ok(
      lines.some((l) => l.includes('retrying the read')),
      lines.join('\n'),
    );
    assert.equal(await store.getProgress(scope, 't', 0), 2);
    assert.equal(await countNamespace(client, prefix, 'live'), 600);
  } finally {
    client.disconnect();
    await store.close();
  }
});
