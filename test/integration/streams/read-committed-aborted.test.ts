/**
 * read_committed must never hand over a record of an aborted transaction. kafkajs 2.2.4 filters them
 * with the Fetch response's aborted-transaction list, but walked it as if it were sorted by first
 * offset and activated at most one entry per record. The broker lists aborted transactions in the
 * order they were aborted, so when several overlap (a re-keyer killed with one open transaction per
 * input partition, all writing the same output partition, then fenced one by one), the records of
 * the ones listed late were delivered as if committed: the exactly-once drills saw whole batches
 * twice. The fix is a patch of kafkajs (patches/kafkajs+2.2.4.patch, applied by postinstall).
 *
 * Both readers of the project are checked: replay's range reader and the BatchConsumer the workers
 * run, from the start of the topic and from an offset inside the aborted transactions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { BatchConsumer } from '../../../streams/batch-consumer.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import type { RawMessage } from '../../../streams/message.js';
import { readRange, resolveRange } from '../../../streams/replay.js';
import { conn, uniqueName, waitFor } from './helpers.js';

const values = (ms: readonly RawMessage[]): string[] => ms.map((m) => m.value?.toString() ?? '<null>');

void test('read_committed readers skip every record of overlapping aborted transactions', { timeout: 120_000 }, async (t) => {
  const topic = uniqueName('aborted');
  await ensureTopics(conn, [{ topic, partitions: 1 }]);
  t.after(() => deleteTopics(conn, [topic]));

  const kafka = new Kafka({ brokers: conn.brokers, clientId: 'thaw-aborted-test', logLevel: logLevel.NOTHING });
  const producers: Producer[] = [];
  const transactional = async (id: string): Promise<Producer> => {
    const p = kafka.producer({ transactionalId: `${topic}.${id}`, idempotent: true, maxInFlightRequests: 1 });
    producers.push(p);
    await p.connect();
    return p;
  };
  try {
    const committed = await transactional('committed');
    const send = async (tx: Awaited<ReturnType<Producer['transaction']>>, what: string, n: number): Promise<void> => {
      await tx.send({ topic, acks: -1, messages: Array.from({ length: n }, (_, i) => ({ value: `${what}-${i}` })) });
    };
    const first = await committed.transaction();
    await send(first, 'kept-a', 3);
    await first.commit();

    // Three transactions open at once, interleaved in the partition, aborted last-opened first: the
    // broker's list then runs against their first offsets.
    const opened = await Promise.all(['x', 'y', 'z'].map(async (id) => ({ id, tx: await (await transactional(id)).transaction() })));
    for (let round = 0; round < 3; round++) for (const o of opened) await send(o.tx, `aborted-${o.id}${round}`, 2);
    for (const o of [...opened].reverse()) await o.tx.abort();

    const last = await committed.transaction();
    await send(last, 'kept-b', 3);
    await last.commit();
    const kept = ['kept-a-0', 'kept-a-1', 'kept-a-2', 'kept-b-0', 'kept-b-1', 'kept-b-2'];

    // replay's reader, from the start and from inside the aborted transactions (offset 8: the fetch
    // starts after the first record of every one of them).
    for (const from of [0, 8]) {
      const ranges = await resolveRange(conn, topic, { offset: from }, { offset: Number.MAX_SAFE_INTEGER });
      const got: RawMessage[] = [];
      for await (const b of readRange(conn, topic, ranges)) got.push(...b.messages);
      assert.deepEqual(values(got), from === 0 ? kept : kept.slice(3), `replay from offset ${from}`);
    }

    // The workers' consumer.
    const got: RawMessage[] = [];
    const consumer = new BatchConsumer({ kafka: conn, groupId: uniqueName('aborted-group'), topics: [topic], fromBeginning: true });
    await consumer.start(async (b) => {
      got.push(...b.messages);
      return Promise.resolve();
    });
    try {
      await waitFor('the consumer at the end of the topic', async () => (await consumer.lag()) === 0, 60_000);
    } finally {
      await consumer.stop();
    }
    assert.deepEqual(values(got), kept, 'BatchConsumer from the beginning');
  } finally {
    await Promise.all(producers.map((p) => p.disconnect().catch(() => undefined)));
  }
});
