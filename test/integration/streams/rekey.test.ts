import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PoisonEventError } from '../../../lib/errors.js';
import { catalogRegistry, SCHEMA_NAMES } from '../../../schemas/catalog.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { deleteTopics, ensureTopics, groupLag, withAdmin } from '../../../streams/admin.js';
import { DeadLetterWriter, DLQ_HEADERS } from '../../../streams/dead-letters.js';
import { EventProducer } from '../../../streams/producer.js';
import { Rekeyer } from '../../../streams/rekey.js';
import { AvroCodec, decodeLabelled, encodeLabelled } from '../../../streams/serde.js';
import { conn, readTopic, uniqueName, waitFor } from './helpers.js';

const N = 400;

function event(i: number): LabelledEvent {
  return {
    eventId: `e${i}`,
    timeMs: Date.now() - 60_000 + i,
    userId: `u${i % 13}`,
    itemId: `i${i % 29}`,
    label: i % 3 === 0 ? 1 : 0,
    userFeatures: { g: [String(i % 2)] },
    itemFeatures: {},
  };
}

void test('dead-letter writer: garbage and an invalid record land in the DLQ with reason headers', { timeout: 60_000 }, async (t) => {
  const dlq = uniqueName('dlq');
  await ensureTopics(conn, [{ topic: dlq, partitions: 1 }]);
  t.after(() => deleteTopics(conn, [dlq]));
  const producer = new EventProducer({ kafka: conn });
  await producer.connect();
  const writer = new DeadLetterWriter(producer, dlq);
  const garbage = Buffer.from('garbage!');
  const invalid = new AvroCodec(catalogRegistry(), SCHEMA_NAMES.labelled).encode({ ...event(1), label: 7 });
  try {
    const src = { topic: 'thaw.labelled', partition: 1, key: null, headers: { h: 'v' }, timestampMs: 5 };
    for (const [offset, value] of [
      [10, garbage],
      [11, invalid],
    ] as const) {
      try {
        decodeLabelled(value);
        assert.fail('should not decode');
      } catch (err) {
        assert.ok(err instanceof PoisonEventError);
        await writer.send({ ...src, offset, value }, err);
      }
    }
  } finally {
    await producer.close();
  }
  const got = await readTopic(dlq, 2);
  assert.equal(got.length, 2);
  assert.deepStrictEqual(got[0]?.value, garbage);
  assert.deepStrictEqual(got[1]?.value, invalid);
  assert.equal(got[0]?.headers[DLQ_HEADERS.code], 'DECODE_FAILED');
  assert.match(got[0]?.headers[DLQ_HEADERS.reason] ?? '', /magic byte is 103/);
  assert.equal(got[1]?.headers[DLQ_HEADERS.code], 'VALIDATION_FAILED');
  assert.match(got[1]?.headers[DLQ_HEADERS.reason] ?? '', /label must be 0 or 1, got 7/);
  assert.equal(got[1]?.headers[DLQ_HEADERS.topic], 'thaw.labelled');
  assert.equal(got[1]?.headers[DLQ_HEADERS.partition], '1');
  assert.equal(got[1]?.headers[DLQ_HEADERS.offset], '11');
  assert.equal(got[1]?.headers.h, 'v');
  assert.equal(writer.count, 2);
});

void test('rekey: every labelled event to by-user and by-item keyed by entity; bad records to dead letters', { timeout: 120_000 }, async (t) => {
  const source = uniqueName('labelled');
  const byUser = uniqueName('by-user');
  const byItem = uniqueName('by-item');
  const dlq = uniqueName('dlq');
  const groupId = uniqueName('rekey');
  await ensureTopics(conn, [
    { topic: source, partitions: 2 },
    { topic: byUser, partitions: 3 },
    { topic: byItem, partitions: 3 },
    { topic: dlq, partitions: 1 },
  ]);
  t.after(() => deleteTopics(conn, [source, byUser, byItem, dlq]));

  const producer = new EventProducer({ kafka: conn });
  await producer.connect();
  const events = Array.from({ length: N }, (_, i) => event(i));
  const invalid = new AvroCodec(catalogRegistry(), SCHEMA_NAMES.labelled).encode({ ...event(9999), userId: '' });
  await producer.send(source, [
    ...events.slice(0, N / 2).map((e) => ({ key: e.eventId, value: encodeLabelled(e) })),
    { key: 'bad-1', value: Buffer.from([0, 0, 0, 0]) },
    { key: 'bad-2', value: invalid },
    ...events.slice(N / 2).map((e) => ({ key: e.eventId, value: encodeLabelled(e) })),
  ]);
  await producer.close();

  const rekey = new Rekeyer({ kafka: conn, groupId, sourceTopic: source, byUserTopic: byUser, byItemTopic: byItem, deadLetterTopic: dlq, consumer: { maxBatchMessages: 64 } });
  await rekey.start();
  try {
    await waitFor('rekey to consume everything', () => rekey.stats.consumed === N + 2, 60_000);
  } finally {
    await rekey.stop();
  }
  assert.deepStrictEqual(rekey.stats, { consumed: N + 2, rekeyed: N, deadLettered: 2 });

  for (const [topic, idOf] of [
    [byUser, (e: LabelledEvent) => e.userId],
    [byItem, (e: LabelledEvent) => e.itemId],
  ] as const) {
    const msgs = await readTopic(topic, N);
    assert.equal(msgs.length, N);
    const partitionOf = new Map<string, number>();
    const ids = new Set<string>();
    for (const m of msgs) {
      const e = decodeLabelled(m.value ?? Buffer.alloc(0));
      ids.add(e.eventId);
      assert.equal(m.key?.toString(), idOf(e), 'keyed by the entity id');
      assert.equal(m.timestampMs, e.timeMs, 'timestamp is the event time');
      const p = partitionOf.get(idOf(e));
      assert.ok(p === undefined || p === m.partition, 'one entity, one partition');
      partitionOf.set(idOf(e), m.partition);
    }
    assert.equal(ids.size, N);
    assert.ok(new Set(partitionOf.values()).size > 1, 'entities spread over partitions');
  }
  const dead = await readTopic(dlq, 2);
  assert.deepStrictEqual(dead.map((m) => m.headers[DLQ_HEADERS.code]).sort(), ['DECODE_FAILED', 'VALIDATION_FAILED']);
  assert.ok(dead.some((m) => /shorter than the 5-byte/.test(m.headers[DLQ_HEADERS.reason] ?? '')));
  assert.ok(dead.some((m) => /userId must be a non-empty string/.test(m.headers[DLQ_HEADERS.reason] ?? '')));
  assert.ok(dead.every((m) => m.headers[DLQ_HEADERS.topic] === source));
  assert.equal(await withAdmin(conn, (admin) => groupLag(admin, groupId, [source])), 0, 'input committed to its end');
});
