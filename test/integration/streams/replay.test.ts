import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../lib/errors.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { readRange, resolveRange, type PartitionRange } from '../../../streams/replay.js';
import type { RawMessage } from '../../../streams/message.js';
import { conn, uniqueName } from './helpers.js';

const N = 300;
const BASE = Date.now() - 3_600_000;

async function readAll(topic: string, ranges: PartitionRange[], onProgress?: (p: { done: number; total: number }) => void): Promise<RawMessage[]> {
  const out: RawMessage[] = [];
  for await (const b of readRange(conn, topic, ranges, { maxBatchMessages: 25, ...(onProgress ? { onProgress } : {}) })) {
    assert.ok(b.messages.length <= 25);
    assert.equal(b.topic, topic);
    out.push(...b.messages);
  }
  return out;
}

void test('replay: ranges by offset and by time read exactly the records in range', { timeout: 120_000 }, async (t) => {
  const topic = uniqueName('replay');
  await ensureTopics(conn, [{ topic, partitions: 2 }]);
  t.after(() => deleteTopics(conn, [topic]));
  const producer = new EventProducer({ kafka: conn });
  await producer.connect();
  await producer.send(
    topic,
    Array.from({ length: N }, (_, i) => ({ key: `key-${i % 11}`, value: Buffer.from(String(i)), timestampMs: BASE + i * 1000 })),
  );
  await producer.close();

  // Everything: each record exactly once, with its timestamp.
  const whole = await resolveRange(conn, topic, { offset: 0 }, { offset: Number.MAX_SAFE_INTEGER });
  assert.equal(whole.length, 2);
  assert.equal(
    whole.reduce((s, r) => s + r.end - r.start, 0),
    N,
  );
  const all = await readAll(topic, whole);
  assert.deepStrictEqual(
    all.map((m) => Number(m.value?.toString())).sort((a, b) => a - b),
    Array.from({ length: N }, (_, i) => i),
  );
  for (const m of all) assert.equal(m.timestampMs, BASE + Number(m.value?.toString()) * 1000);

  // By offset: [10, 50) in every partition.
  const byOffset = await resolveRange(conn, topic, { offset: 10 }, { offset: 50 });
  for (const r of byOffset) {
    const high = whole.find((w) => w.partition === r.partition)?.end ?? 0;
    assert.deepStrictEqual(r, { partition: r.partition, start: Math.min(10, high), end: Math.min(50, high) });
  }
  const expectedByOffset = all
    .filter((m) => m.offset >= 10 && m.offset < 50)
    .map((m) => `${m.partition}:${m.offset}`)
    .sort();
  const gotByOffset = (await readAll(topic, byOffset)).map((m) => `${m.partition}:${m.offset}`).sort();
  assert.deepStrictEqual(gotByOffset, expectedByOffset);

  // By time: [BASE + 100 s, BASE + 200 s) = values 100..199.
  const byTime = await resolveRange(conn, topic, { timeMs: BASE + 100_000 }, { timeMs: BASE + 200_000 });
  const progress: { done: number; total: number }[] = [];
  const timed = await readAll(topic, byTime, (p) => progress.push(p));
  assert.deepStrictEqual(
    timed.map((m) => Number(m.value?.toString())).sort((a, b) => a - b),
    Array.from({ length: 100 }, (_, i) => 100 + i),
  );
  assert.deepStrictEqual(progress.at(-1), { done: 100, total: 100 });
  assert.ok(progress.every((p, i) => i === 0 || p.done > (progress[i - 1]?.done ?? 0)));

  // Past the end: empty range, nothing read.
  const empty = await resolveRange(conn, topic, { timeMs: BASE + 10_000_000 }, { timeMs: BASE + 20_000_000 });
  assert.ok(empty.every((r) => r.start === r.end));
  assert.deepStrictEqual(await readAll(topic, empty), []);
  await assert.rejects(resolveRange(conn, topic, { offset: -1 }, { offset: 5 }), ConfigError);
});
