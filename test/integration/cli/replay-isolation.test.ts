/**
 * "A replay into a namespace leaves every live key and row untouched" (issue 2, faults): a live item
 * worker processes a topic; then a replay of part of that topic runs into its own namespace with the
 * same adapter, and is dropped. Live Redis states (byte for byte), live prediction rows (every column
 * that matters) and the live consumer group's committed offsets must be identical before and after.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { deleteTopics } from '../../../streams/admin.js';
import { createRedis } from '../../../model-store/redis.js';
import { cliHarness, KAFKA, REDIS } from './cli-harness.js';

const h = cliHarness('replay-iso');
const group = `g-${h.id}`;
const EVENTS = 2000;

async function liveSnapshot(): Promise<{ keys: number; states: string; rows: string; offsets: string }> {
  const redis = createRedis({ url: REDIS });
  try {
    const keys = (await redis.keys(`${h.prefix}:live:*`)).sort();
    const hash = createHash('sha256');
    for (const k of keys) {
      hash.update(k);
      hash.update((await redis.getBuffer(k)) ?? Buffer.alloc(0));
    }
    const rows = await h.chQuery(`SELECT count(), sum(cityHash64(event_id, side, entity_id, prior_count, score, label, adapter, release)) FROM thaw.${h.table} WHERE namespace = 'live'`);
    const admin = new Kafka({ brokers: [KAFKA], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchOffsets({ groupId: group, topics: [h.topic] });
      return { keys: keys.length, states: hash.digest('hex'), rows, offsets: JSON.stringify(offsets) };
    } finally {
      await admin.disconnect();
    }
  } finally {
    redis.disconnect();
  }
}

describe('replay isolation', () => {
  after(async () => {
    await deleteTopics({ brokers: [KAFKA] }, [h.topic]).catch(() => undefined);
    await h.chQuery(`DROP TABLE IF EXISTS thaw.${h.table}`).catch(() => undefined);
    const redis = createRedis({ url: REDIS });
    const keys = await redis.keys(`${h.prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    rmSync(h.dir, { recursive: true, force: true });
  });

  it('leaves live states, live rows and live offsets untouched', async () => {
    const train = await h.thaw('train', 'fm', '--source', 'synthetic:events=6000,seed=9', '--history-events', '2000', '--min-events', '5', '--epochs', '1');
    assert.equal(train.code, 0, train.stderr);
    const produce = await h.thaw('produce', '--source', 'synthetic:events=6000,seed=9', '--topic', h.topic, '--partitions', '1', '--limit', String(EVENTS));
    assert.equal(produce.code, 0, produce.stderr);

    const worker = h.start(['run', 'item', '--topic', h.topic, '--group-id', group, '--metrics-port', '0']);
    const deadline = Date.now() + 60_000;
    const liveRows = async (): Promise<number> => Number(await h.chQuery(`SELECT count() FROM thaw.${h.table} WHERE namespace = 'live'`).catch(() => '0'));
    while ((await liveRows()) < EVENTS && Date.now() < deadline) await sleep(300);
    worker.child.kill('SIGTERM');
    const w = await worker.done;
    assert.equal(w.code, 0, w.stderr);

    const before = await liveSnapshot();
    assert.ok(before.keys > 0, 'the live worker wrote states');
    assert.match(before.rows, new RegExp(`^${EVENTS}\\t`));

    const ns = `r${h.id}`;
    const replay = await h.thaw('replay', '--topic', h.topic, '--namespace', ns, '--from', '0', '--to', String(EVENTS / 2), '--side', 'item', '--adapter', 'fm-adagrad');
    assert.equal(replay.code, 0, replay.stderr);
    const redis = createRedis({ url: REDIS });
    try {
      assert.ok((await redis.keys(`${h.prefix}:${ns}:*`)).length > 0, 'the replay wrote its own states');
    } finally {
      redis.disconnect();
    }
    assert.equal(Number(await h.chQuery(`SELECT count() FROM thaw.${h.table} WHERE namespace = '${ns}'`)), EVENTS / 2);
    assert.deepEqual(await liveSnapshot(), before);

    const drop = await h.thaw('replay', '--namespace', ns, '--drop');
    assert.equal(drop.code, 0, drop.stderr);
    assert.deepEqual(await liveSnapshot(), before);
  });
});
