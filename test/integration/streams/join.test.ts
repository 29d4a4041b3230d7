import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Impression } from '../../../schemas/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { ImpressionClickJoin } from '../../../streams/join.js';
import { EventProducer } from '../../../streams/producer.js';
import { defaultSerde, encodeClick, encodeImpression } from '../../../streams/serde.js';
import { DLQ_HEADERS } from '../../../streams/dead-letters.js';
import { REDIS_URL, conn, readTopic, uniqueName, waitFor } from './helpers.js';

const WINDOW = 60_000;
const BASE = Date.now() - 30 * 60_000;

function impression(id: string, timeMs: number, k: number): Impression {
  return { impressionId: id, timeMs, userId: `u${k % 5}`, itemId: `i${k % 7}`, userFeatures: { age: [String(k % 4)] }, itemFeatures: { genre: ['g' + (k % 3)] } };
}

void test('join: clicks give label 1 once, expired windows give label 0, early/late/duplicate clicks handled', { timeout: 180_000 }, async (t) => {
  const impTopic = uniqueName('impressions');
  const clickTopic = uniqueName('clicks');
  const outTopic = uniqueName('labelled');
  const dlq = uniqueName('dlq');
  const keyPrefix = `test:join:${randomUUID()}`;
  await ensureTopics(conn, [
    { topic: impTopic, partitions: 2 },
    { topic: clickTopic, partitions: 2 },
    { topic: outTopic, partitions: 2 },
    { topic: dlq, partitions: 1 },
  ]);
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  const producer = new EventProducer({ kafka: conn });

  const join = new ImpressionClickJoin({
    kafka: conn,
    redis,
    groupId: uniqueName('join'),
    impressionsTopic: impTopic,
    clicksTopic: clickTopic,
    outputTopic: outTopic,
    deadLetterTopic: dlq,
    keyPrefix,
    attributionWindowMs: WINDOW,
    allowedLatenessMs: 0,
    consumer: { maxBatchMessages: 16 },
  });
  // One hook, in order: stop the join before its topics and keys disappear.
  t.after(async () => {
    await join.stop();
    await producer.close();
    await deleteTopics(conn, [impTopic, clickTopic, outTopic, dlq]);
    const keys = await redis.keys(`${keyPrefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });
  await producer.connect();
  await join.start();

  const imps = Array.from({ length: 30 }, (_, k) => impression(`imp${k}`, BASE + k * 1000, k));
  const early = impression('imp-early', BASE + 30_000, 30);
  const sendImps = (list: Impression[]) =>
    producer.send(
      impTopic,
      list.map((i) => ({ key: i.impressionId, value: encodeImpression(i) })),
    );
  const sendClicks = (list: { impressionId: string; timeMs: number }[]) =>
    producer.send(
      clickTopic,
      list.map((c) => ({ key: c.impressionId, value: encodeClick(c) })),
    );

  // 1. A click that arrives before its impression.
  await sendClicks([{ impressionId: early.impressionId, timeMs: early.timeMs + 2000 }]);
  await waitFor('early click', () => join.stats.earlyClicks === 1);

  // 2. Impressions (+ one undecodable record): nothing expires yet (watermark = newest impression).
  await sendImps([...imps, early]);
  await producer.send(impTopic, [{ key: 'junk', value: Buffer.from('junk') }]);
  await waitFor('impressions', () => join.stats.impressions === 31 && join.stats.deadLettered === 1);
  assert.equal(join.stats.negatives, 0);

  // 3. Clicks: every third impression, two of them clicked three times; imp1 clicked after its window.
  const clicked = imps.filter((_, k) => k % 3 === 0);
  const clicks = clicked.map((i) => ({ impressionId: i.impressionId, timeMs: i.timeMs + 5000 }));
  clicks.push(clicks[0]!, clicks[0]!, clicks[1]!, { ...clicks[1]!, timeMs: clicks[1]!.timeMs + 1 });
  clicks.push({ impressionId: 'imp1', timeMs: BASE + 1000 + WINDOW + 1 });
  await sendClicks(clicks);
  await waitFor('clicks', () => join.stats.clicks === 1 + clicks.length);
  assert.equal(join.stats.positives, clicked.length + 1);
  assert.equal(join.stats.duplicateClicks, 4);
  assert.equal(join.stats.outsideWindowClicks, 1);

  // 4. Newer impressions move both partitions' watermarks past every window: the rest become 0.
  const advancing = Array.from({ length: 10 }, (_, k) => impression(`adv${k}`, BASE + 10 * 60_000, k));
  await sendImps(advancing);
  const expectedTotal = imps.length + 1;
  const out = await readTopic(outTopic, expectedTotal, 60_000);
  await waitFor('no extra output', async () => (await readTopic(outTopic, 0)).length === expectedTotal);

  const labels = new Map<string, number>();
  for (const m of out) {
    const e = defaultSerde().decodeLabelledWithSource(m.value ?? Buffer.alloc(0));
    assert.ok(!labels.has(e.eventId), `${e.eventId} emitted once`);
    labels.set(e.eventId, e.label);
    assert.equal(e.source, 'join');
    assert.equal(m.key?.toString(), e.eventId);
    const src = e.eventId === early.impressionId ? early : imps.find((i) => i.impressionId === e.eventId);
    assert.ok(src, `unexpected event ${e.eventId}`);
    assert.deepStrictEqual(
      { timeMs: e.timeMs, userId: e.userId, itemId: e.itemId, userFeatures: e.userFeatures, itemFeatures: e.itemFeatures },
      { timeMs: src.timeMs, userId: src.userId, itemId: src.itemId, userFeatures: src.userFeatures, itemFeatures: src.itemFeatures },
    );
  }
  const expected = new Map<string, number>(imps.map((i, k) => [i.impressionId, k % 3 === 0 ? 1 : 0]));
  expected.set(early.impressionId, 1);
  assert.deepStrictEqual(new Map([...labels].sort()), new Map([...expected].sort()));
  assert.equal(join.stats.negatives, 20);

  // 5. A click after its window was swept does not change the label.
  const before = join.stats.clicks;
  await sendClicks([{ impressionId: 'imp2', timeMs: BASE + 2000 + 3000 }]);
  await waitFor('late click', () => join.stats.clicks === before + 1);
  assert.equal(join.stats.lateClicks, 1);
  assert.equal((await readTopic(outTopic, 0)).length, expectedTotal);

  // Only the advancing impressions are still pending in the deadline sets.
  const pending: string[] = [];
  for (const k of await redis.keys(`${keyPrefix}:deadlines:*`)) pending.push(...(await redis.zrange(k, 0, -1)));
  assert.deepStrictEqual(pending.sort(), advancing.map((a) => a.impressionId).sort());
  assert.ok((await redis.keys(`${keyPrefix}:deadlines:*`)).length === 2, 'advancing impressions reached both partitions');
  // Memory stays bounded: every impression hash has its TTL once its chunk is committed.
  const hashes = await redis.keys(`${keyPrefix}:imp:*`);
  assert.ok(hashes.length > 0);
  const ttls = await Promise.all(hashes.map((k) => redis.pttl(k)));
  assert.deepStrictEqual(
    hashes.filter((_, i) => (ttls[i] ?? -1) < 0),
    [],
    'hashes without a TTL',
  );

  const dead = await readTopic(dlq, 1);
  assert.equal(dead[0]?.headers[DLQ_HEADERS.code], 'DECODE_FAILED');
  assert.equal(dead[0]?.headers[DLQ_HEADERS.topic], impTopic);
});
