// The join's Lua scripts against a real Redis: claims survive redelivery (crash between the Redis
// claim and the Kafka ack re-emits), other messages never emit twice, unconfirmed sweeps re-emit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { installJoinScripts } from '../../../streams/join-scripts.js';
import { REDIS_URL } from './helpers.js';

void test('join scripts: claim by source message, duplicate and late clicks, sweep re-emits until confirmed', { timeout: 30_000 }, async (t) => {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  const prefix = `test:join-scripts:${randomUUID()}`;
  t.after(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });
  const pipeline = installJoinScripts(redis);
  const h = (id: string): string => `${prefix}:imp:{${id}}`;
  const z = `${prefix}:deadlines:t:0`;
  const run = async (fill: (p: ReturnType<typeof pipeline>) => void): Promise<unknown[]> => {
    const p = pipeline();
    fill(p);
    const res = (await p.exec()) ?? [];
    return res.map(([err, v]) => {
      if (err) throw err;
      return v;
    });
  };
  const status = (v: unknown): string => String((v as Buffer[])[0]);

  // Two impressions pending, a click on one: emitted; the same click message again (redelivery) emits again;
  // another click message does not.
  const imp = Buffer.from([0, 1, 2, 255]);
  const [a, b] = await run((p) => {
    p.thawJoinImpression(h('A'), z, imp, 1000, 61_000, 'A', 600_000, 'imp:0:1', 60_000);
    p.thawJoinImpression(h('B'), z, imp, 2000, 62_000, 'B', 600_000, 'imp:0:2', 60_000);
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
  assert.deepStrictEqual(await run((p) => p.thawJoinImpression(h('B'), z, imp, 2000, 62_000, 'B', 600_000, 'imp:0:2', 60_000)), ['dup']);

  // Sweep below B's deadline: nothing; past it: B (A is clicked and just leaves the set).
  // The sweeping chunk covers impressions offsets 5..9.
  assert.deepStrictEqual(await run((p) => p.thawJoinSweepBuffer(z, 50_000, 100, `${prefix}:imp:`, 5, 9, 0)), [[]]);
  const [swept] = await run((p) => p.thawJoinSweepBuffer(z, 70_000, 100, `${prefix}:imp:`, 5, 9, 0));
  assert.deepStrictEqual((swept as Buffer[]).map((x) => x.toString('latin1')), ['B', imp.toString('latin1')]);
  assert.deepStrictEqual(await redis.zrange(z, 0, -1), ['B'], 'A removed, B kept until confirmed');
  // Its transaction not committed (crash, or retried): the chunk again, or one that starts at or
  // before offset 9 after a restart, sweeps B again.
  const [again] = await run((p) => p.thawJoinSweepBuffer(z, 70_000, 100, `${prefix}:imp:`, 5, 9, 0));
  assert.equal((again as Buffer[])[0]?.toString(), 'B');
  const [afterRestart] = await run((p) => p.thawJoinSweepBuffer(z, 70_000, 100, `${prefix}:imp:`, 3, 12, 0));
  assert.equal((afterRestart as Buffer[])[0]?.toString(), 'B');
  // A round that skips what this chunk already claimed does not see B twice.
  assert.deepStrictEqual(await run((p) => p.thawJoinSweepBuffer(z, 70_000, 100, `${prefix}:imp:`, 3, 12, 1)), [[]]);
  // Committed (offset 13 is past the claiming chunk 3..12) but not yet confirmed: never emitted again.
  assert.deepStrictEqual(await run((p) => p.thawJoinSweepBuffer(z, 70_000, 100, `${prefix}:imp:`, 13, 20, 0)), [[]]);
  assert.deepStrictEqual(await redis.zrange(z, 0, -1), [], 'a committed claim leaves the set');
  // A click on B after its label 0 is late.
  assert.equal(status((await run((p) => p.thawJoinClickBuffer(h('B'), 3000, 'clk:0:9', 600_000, 60_000)))[0]), 'late');

  // Early click then impression: the impression emits; a click past the window is 'outside'.
  assert.equal(status((await run((p) => p.thawJoinClickBuffer(h('C'), 9000, 'clk:0:10', 600_000, 60_000)))[0]), 'early');
  assert.deepStrictEqual(await run((p) => p.thawJoinImpression(h('C'), z, imp, 8000, 68_000, 'C', 600_000, 'imp:0:3', 60_000)), ['emit']);
  await run((p) => p.thawJoinImpression(h('D'), z, imp, 8000, 68_000, 'D', 600_000, 'imp:0:4', 60_000));
  assert.equal(status((await run((p) => p.thawJoinClickBuffer(h('D'), 68_001, 'clk:0:11', 600_000, 60_000)))[0]), 'outside');
  assert.ok((await redis.pttl(h('D'))) > 0, 'pending impressions have a TTL');
});
