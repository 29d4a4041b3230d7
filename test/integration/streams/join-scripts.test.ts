// The join's Lua scripts against a real Redis: claims survive redelivery (crash between the Redis
// claim and the Kafka ack re-emits), other messages never emit twice, unconfirmed sweeps re-emit.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { installJoinScripts } from '../../../streams/join-scripts.js';
import { REDIS_URL } from './helpers.js';

type Pipeline = ReturnType<ReturnType<typeof installJoinScripts>>;
type Fill = (p: Pipeline) => void;

/** A Redis client with the join's scripts, this test's key prefix (deleted after it) and a pipeline runner. */
function scriptsOn(t: TestContext, name: string) {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  const prefix = `test:${name}:${randomUUID()}`;
  t.after(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });
  const pipeline = installJoinScripts(redis);
  const run = async (fill: Fill): Promise<unknown[]> => {
    const p = pipeline();
    fill(p);
    const res = (await p.exec()) ?? [];
    return res.map(([err, v]) => {
      if (err) throw err;
      return v;
    });
  };
  return { redis, prefix, h: (id: string): string => `${prefix}:imp:{${id}}`, z: `${prefix}:deadlines:t:0`, run };
}

void test('join scripts: claim by source message, duplicate and late clicks, sweep re-emits until confirmed', { timeout: 30_000 }, async (t) => {
  const { redis, prefix, h, z, run } = scriptsOn(t, 'join-scripts');
  const status = (v: unknown): string => String((v as Buffer[])[0]);

  // Two impressions pending, a click on one: emitted; the same click message again (redelivery) emits again;
  // another click message does not.
  const imp = Buffer.from([0, 1, 2, 255]);
  const [a, b] = await run((p) => {
    p.thawJoinImpression(h('A'), z, imp, 1000, 61_000, 'A', 'imp:0:1', 60_000);
    p.thawJoinImpression(h('B'), z, imp, 2000, 62_000, 'B', 'imp:0:2', 60_000);
  });
  assert.deepStrictEqual([a, b], ['pending', 'pending']);
  const [c1, c1again, c2] = await run((p) => {
    p.thawJoinClickBuffer(h('A'), 5000, 'clk:0:7', 600_000, 60_000);
    p.thawJoinClickBuffer(h('A'), 5000, 'clk:0:7', 600_000, 60_000);
    p.thawJoinClickBuffer(h('A'), 6000, 'clk:1:3', 600_000, 60_000);
  });
  assert.equal(status(c1), 'emit');
  assert.deepStrictEqual((c1 as Buffer[])[1], imp, 'binary impression bytes survive the round trip');
  assert.equal(status(c1again), 'emit');
  assert.equal(status(c2), 'dup');
  // A redelivered impression does not emit or re-arm anything.
  assert.deepStrictEqual(await run((p) => p.thawJoinImpression(h('B'), z, imp, 2000, 62_000, 'B', 'imp:0:2', 60_000)), ['dup']);

  // Sweep below B's deadline: nothing; past it: B for label 0, and A, clicked, to be removed once
  // the sweeping chunk (impressions offsets 5..9) is committed.
  assert.deepStrictEqual(await run((p) => p.thawJoinSweepBuffer(z, 50_000, 100, `${prefix}:imp:`, 5, 9, 0)), [[]]);
  const [swept] = await run((p) => p.thawJoinSweepBuffer(z, 70_000, 100, `${prefix}:imp:`, 5, 9, 0));
  assert.deepStrictEqual(
    (swept as (Buffer | number)[]).map((x) => (typeof x === 'number' ? x : x.toString('latin1'))),
    ['A', 1, 'B', imp.toString('latin1')],
  );
  assert.deepStrictEqual(await redis.zrange(z, 0, -1), ['A', 'B'], 'both kept until the sweeping chunk is committed');
  await redis.zrem(z, 'A');
  // Its transaction not committed (crash, or retried): the chunk again, or one that starts at or
  // before offset 9 after a restart, sweeps B again.
  const [again] = await run((p) => p.thawJoinSweepBuffer(z, 70_000, 100, `${prefix}:imp:`, 5, 9, 0));
  assert.equal((again as Buffer[])[0]?.toString(), 'B');
  const [afterRestart] = await run((p) => p.thawJoinSweepBuffer(z, 70_000, 100, `${prefix}:imp:`, 3, 12, 0));
  assert.equal((afterRestart as Buffer[])[0]?.toString(), 'B');
  // A round that skips what this chunk already claimed does not see B twice.
  assert.deepStrictEqual(await run((p) => p.thawJoinSweepBuffer(z, 70_000, 100, `${prefix}:imp:`, 3, 12, 1)), [[]]);
  // Committed (offset 13 is past the claiming chunk 3..12) but not yet confirmed: never emitted again,
  // only returned for removal.
  assert.deepStrictEqual(await run((p) => p.thawJoinSweepBuffer(z, 70_000, 100, `${prefix}:imp:`, 13, 20, 0)), [[Buffer.from('B'), 1]]);
  await redis.zrem(z, 'B');
  // A click on B after its label 0 is late.
  assert.equal(status((await run((p) => p.thawJoinClickBuffer(h('B'), 3000, 'clk:0:9', 600_000, 60_000)))[0]), 'late');

  // Early click then impression: the impression emits; a click past the window is 'outside'.
  assert.equal(status((await run((p) => p.thawJoinClickBuffer(h('C'), 9000, 'clk:0:10', 600_000, 60_000)))[0]), 'early');
  assert.deepStrictEqual(await run((p) => p.thawJoinImpression(h('C'), z, imp, 8000, 68_000, 'C', 'imp:0:3', 60_000)), ['emit']);
  await run((p) => p.thawJoinImpression(h('D'), z, imp, 8000, 68_000, 'D', 'imp:0:4', 60_000));
  assert.equal(status((await run((p) => p.thawJoinClickBuffer(h('D'), 68_001, 'clk:0:11', 600_000, 60_000)))[0]), 'outside');
  assert.equal(await redis.pttl(h('D')), -1, 'no TTL before the impression is committed');
  await run((p) => p.thawJoinArm(h('D'), 600_000));
  assert.ok((await redis.pttl(h('D'))) > 0, 'armed after the commit');
});

// The duplicate the join's kill -9 drill found: a click claims an impression whose own chunk is then
// lost in a crash; the restarted join reads that chunk again after longer than the TTL. Before, the
// TTL ran from the impression's first processing, the hash was gone, the impression started over and
// was swept to a second label (0 after 1).
void test('join scripts: a claimed impression outlives its TTL until its chunk is committed', { timeout: 30_000 }, async (t) => {
  const { redis, prefix, h, z, run } = scriptsOn(t, 'join-ttl');
  const imp = Buffer.from([1, 2]);
  const one = async (fill: Fill): Promise<unknown> => (await run(fill))[0];
  const ttlMs = 50;
  // An early click (its own TTL), then the impression: the impression removes that TTL.
  assert.equal(String(((await one((p) => p.thawJoinClickBuffer(h('E'), 1500, 'clk:1:1', ttlMs, 5000))) as Buffer[])[0]), 'early');
  assert.equal(await one((p) => p.thawJoinImpression(h('E'), z, imp, 1000, 6000, 'E', 'imp:0:19', 5000)), 'emit');
  // X pending, then claimed by a click whose chunk is committed; X's chunk (and E's) is not.
  assert.equal(await one((p) => p.thawJoinImpression(h('X'), z, imp, 1000, 6000, 'X', 'imp:0:20', 5000)), 'pending');
  assert.equal(String(((await one((p) => p.thawJoinClickBuffer(h('X'), 3000, 'clk:0:30', ttlMs, 5000))) as Buffer[])[0]), 'emit');
  await sleep(4 * ttlMs);
  // The restarted join reads the chunk again: X is a duplicate, E emits again (its label was lost with the chunk).
  assert.equal(await one((p) => p.thawJoinImpression(h('X'), z, imp, 1000, 6000, 'X', 'imp:0:20', 5000)), 'dup');
  assert.equal(await one((p) => p.thawJoinImpression(h('E'), z, imp, 1000, 6000, 'E', 'imp:0:19', 5000)), 'emit');
  // The sweep past X's deadline does not label it again.
  assert.deepStrictEqual(await one((p) => p.thawJoinSweepBuffer(z, 7000, 100, `${prefix}:imp:`, 19, 25, 0)), [Buffer.from('X'), 1]);
  // Committed: the TTLs are armed and the hashes go.
  await one((p) => p.thawJoinArm(h('X'), ttlMs));
  await one((p) => p.thawJoinArm(h('E'), ttlMs));
  await sleep(4 * ttlMs);
  assert.deepStrictEqual(await redis.exists(h('X'), h('E')), 0);
});
