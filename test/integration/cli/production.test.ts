/**
 * The production commands end to end against the real services (scripts/services.sh):
 * train fm → produce → run item (SIGTERM drains) → curves → replay into a namespace → promote/drop.
 * Everything this test touches is its own: topic, consumer group, Redis key prefix, ClickHouse table.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { deleteTopics } from '../../../streams/admin.js';
import { createRedis } from '../../../model-store/redis.js';
import { cliHarness, KAFKA, REDIS } from './cli-harness.js';

const { id, topic, dir, start, thaw, chQuery } = cliHarness('cli');

async function rows(namespace: string): Promise<number> {
  const t = await chQuery(`SELECT count() FROM thaw.pred_${id} WHERE namespace = '${namespace}'`).catch(() => '0');
  return Number(t);
}

describe('thaw production commands', () => {
  after(async () => {
    await deleteTopics({ brokers: [KAFKA] }, [topic]).catch(() => undefined);
    await chQuery(`DROP TABLE IF EXISTS thaw.pred_${id}`).catch(() => undefined);
    const redis = createRedis({ url: REDIS });
    const keys = await redis.keys(`t${id}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  it('train, produce, run (drains on SIGTERM), curves, replay, promote, drop', async () => {
    const train = await thaw('train', 'fm', '--source', 'synthetic:events=6000,seed=5', '--history-events', '2000', '--min-events', '5', '--epochs', '2');
    assert.equal(train.code, 0, train.stderr);
    assert.match(train.stdout.trim(), /^\d{8}T\d{9}Z$/);

    // One partition keeps offsets increasing per entity without a rekeyer.
    const produce = await thaw('produce', '--source', 'synthetic:events=6000,seed=5', '--topic', topic, '--partitions', '1', '--limit', '3000');
    assert.equal(produce.code, 0, produce.stderr);
    assert.equal(produce.stdout, '');

    const worker = start(['run', 'item', '--topic', topic, '--namespace', `n${id}`, '--group-id', `g-${id}`, '--metrics-port', '0']);
    const deadline = Date.now() + 60_000;
    while ((await rows(`n${id}`)) < 3000 && Date.now() < deadline) await sleep(500);
    assert.equal(await rows(`n${id}`), 3000);
    worker.child.kill('SIGTERM');
    const w = await worker.done;
    assert.equal(w.code, 0, w.stderr);

    const curves = await thaw('curves', '--namespace', `n${id}`, '--json');
    assert.equal(curves.code, 0, curves.stderr);
    const parsed = JSON.parse(curves.stdout) as { curves: { side: string; adapter: string; n: number }[] };
    assert.equal(
      parsed.curves.reduce((s, c) => s + c.n, 0),
      3000,
    );
    assert.ok(parsed.curves.every((c) => c.side === 'item' && c.adapter === 'fm-adagrad'));

    const replay = await thaw('replay', '--topic', topic, '--namespace', `r${id}`, '--from', '0', '--to', '1000', '--adapter', 'none');
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /replayed 1000 events/);
    assert.equal(await rows(`r${id}`), 1000);
    assert.equal(await rows(`n${id}`), 3000); // the other namespace is untouched

    const refused = await thaw('replay', '--topic', topic, '--namespace', 'live', '--from', '0', '--to', '10');
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /"namespace"/);

    const redis = createRedis({ url: REDIS });
    try {
      const replayKeys = (await redis.keys(`t${id}:r${id}:*`)).length;
      assert.ok(replayKeys > 0);
      const promote = await thaw('replay', '--namespace', `r${id}`, '--promote');
      assert.equal(promote.code, 0, promote.stderr);
      assert.equal((await redis.keys(`t${id}:live:*`)).length, replayKeys);
      assert.equal((await redis.keys(`t${id}:r${id}:*`)).length, 0);

      const again = await thaw('replay', '--topic', topic, '--namespace', `r${id}`, '--from', '0', '--to', '500', '--adapter', 'none');
      assert.equal(again.code, 0, again.stderr);
      const drop = await thaw('replay', '--namespace', `r${id}`, '--drop');
      assert.equal(drop.code, 0, drop.stderr);
      assert.equal((await redis.keys(`t${id}:r${id}:*`)).length, 0);
      assert.equal(await rows(`r${id}`), 0);
      assert.equal(await rows(`n${id}`), 3000);
    } finally {
      redis.disconnect();
    }
  });
});
