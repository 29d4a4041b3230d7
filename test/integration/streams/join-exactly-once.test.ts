/**
 * Issue 11, exactly-once upstream: `thaw join` as users run it (a real process) is `kill -9`ed twice
 * mid-stream and restarted; every impression must then be in the labelled topic exactly once (label
 * 1 or 0), read with read_committed. At least once fails this: the labels of the chunk in flight at
 * the kill were produced, and the restarted join, which finds that chunk's claims in Redis, emits
 * them again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedis } from '../../../model-store/redis.js';
import type { Impression } from '../../../schemas/types.js';
import { deleteTopics, ensureTopics, topicOffsets, withAdmin } from '../../../streams/admin.js';
import { EventProducer, partitionOfKey } from '../../../streams/producer.js';
import { decodeLabelled, encodeClick, encodeImpression } from '../../../streams/serde.js';
import { conn, REDIS_URL, uniqueName, waitFor } from './helpers.js';
import { duplicates, killHard, readCommitted, startThaw, type ThawProcess } from './kill-drill.js';

const N = 3000;
const PARTITIONS = 3;
const CHUNK = 40;
const CHUNK_EVERY_MS = 60;
const BASE_MS = Date.now() - 6 * 3_600_000;

function impression(id: string, timeMs: number): Impression {
  return { impressionId: id, timeMs, userId: `u${timeMs % 89}`, itemId: `i${timeMs % 173}`, userFeatures: {}, itemFeatures: { c: ['x'] } };
}

async function written(topic: string): Promise<number> {
  return withAdmin(conn, async (admin) => (await topicOffsets(admin, topic)).reduce((s, p) => s + p.high - p.low, 0));
}

void test('thaw join killed with -9 twice mid-stream: every impression labelled exactly once', { timeout: 300_000 }, async (t) => {
  const impressions = uniqueName('eo-join-imp');
  const clicks = uniqueName('eo-join-clk');
  const output = uniqueName('eo-join-out');
  const group = uniqueName('eo-join-group');
  const prefix = `tjeo${Date.now()}`;
  await ensureTopics(
    conn,
    [impressions, clicks, output].map((topic) => ({ topic, partitions: PARTITIONS })),
  );
  const redis = createRedis({ url: REDIS_URL });
  t.after(async () => {
    await deleteTopics(conn, [impressions, clicks, output]);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  const args = [
    'join',
    '--redis',
    REDIS_URL,
    '--impressions-topic',
    impressions,
    '--clicks-topic',
    clicks,
    '--output-topic',
    output,
    '--group-id',
    group,
    '--join-key-prefix',
    prefix,
    '--attribution-window-ms',
    '5000',
    '--allowed-lateness-ms',
    '1000',
    '--session-timeout-ms',
    '6000',
    // Longer than a restart takes: an impression left pending across one keeps its label. What the TTL
    // does to a claim across a restart is join-scripts.test.ts's second test.
    '--pending-ttl-ms',
    '120000',
  ];
  let join: ThawProcess = startThaw(args);
  t.after(() => join.child.kill('SIGKILL'));

  // Impressions 1 s of event time apart, a third of them clicked 2 s later, arriving in small chunks.
  const producer = new EventProducer({ kafka: conn });
  await producer.connect();
  const feeding = (async () => {
    for (let i = 0; i < N; i += CHUNK) {
      const ids = Array.from({ length: Math.min(CHUNK, N - i) }, (_, j) => i + j);
      await producer.send(
        impressions,
        ids.map((k) => ({ key: `imp${k}`, value: encodeImpression(impression(`imp${k}`, BASE_MS + k * 1000)) })),
      );
      await producer.send(
        clicks,
        ids.filter((k) => k % 3 === 0).map((k) => ({ key: `imp${k}`, value: encodeClick({ impressionId: `imp${k}`, timeMs: BASE_MS + k * 1000 + 2000 }) })),
      );
      await sleep(CHUNK_EVERY_MS);
    }
    // One late impression per partition moves every partition's watermark past all windows.
    for (let p = 0; p < PARTITIONS; p++) {
      let k = 0;
      while (partitionOfKey(`flush${p}-${k}`, PARTITIONS) !== p) k++;
      await producer.send(impressions, [{ key: `flush${p}-${k}`, value: encodeImpression(impression(`flush${p}-${k}`, BASE_MS + N * 1000 + 3_600_000)) }]);
    }
  })();
  try {
    for (const at of [N * 0.25, N * 0.55]) {
      await waitFor(`labelled output past ${at}`, async () => (await written(output)) >= at, 120_000);
      await killHard(join);
      join = startThaw(args);
    }
    await feeding;
  } finally {
    await producer.close();
  }

  let ids: string[] = [];
  let positives = 0;
  await waitFor(
    `${N} committed labelled events`,
    async () => {
      const events = (await readCommitted(output)).map((m) => {
        assert.ok(m.value !== null);
        return decodeLabelled(m.value, Number.POSITIVE_INFINITY);
      });
      ids = events.map((e) => e.eventId);
      positives = events.filter((e) => e.label === 1).length;
      return ids.length >= N;
    },
    120_000,
  ).catch(() => undefined);
  const dup = duplicates(ids);
  assert.equal(dup.size, 0, `${dup.size} impressions labelled more than once, e.g. ${[...dup].slice(0, 5).join(' ')}\n${join.stderr().slice(-2000)}`);
  assert.deepStrictEqual([...ids].sort(), Array.from({ length: N }, (_, k) => `imp${k}`).sort(), 'every impression once');
  assert.ok(positives <= N / 3, `at most the clicked third is positive, got ${positives}`);
});
