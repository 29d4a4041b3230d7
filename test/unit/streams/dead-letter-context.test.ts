/**
 * Issue 11 item 7: a dead letter says which consumer gave up on it (group, namespace, adapter), and a
 * tombstone (null value) is marked as one instead of becoming an indistinguishable 0-byte record.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PoisonEventError } from '../../../lib/errors.js';
import { DeadLetterWriter, DLQ_HEADERS, deadLetterOf } from '../../../streams/dead-letters.js';
import type { EventProducer, OutMessage } from '../../../streams/producer.js';

const msg = { topic: 'src', partition: 1, offset: 7, key: Buffer.from('k'), value: Buffer.from([9]), headers: {}, timestampMs: 5 };
const context = { consumerGroup: 'thaw-item-fm-adagrad-live', namespace: 'live', adapter: 'fm-adagrad' };

test('dead-letter headers name the consumer group, namespace and adapter', () => {
  const h = deadLetterOf(msg, new PoisonEventError('DECODE_FAILED', 'bad'), context).headers ?? {};
  assert.equal(h[DLQ_HEADERS.group], 'thaw-item-fm-adagrad-live');
  assert.equal(h[DLQ_HEADERS.namespace], 'live');
  assert.equal(h[DLQ_HEADERS.adapter], 'fm-adagrad');
  assert.equal(h[DLQ_HEADERS.tombstone], undefined, 'a record with a value is no tombstone');
});

test('a tombstone is marked by a header; an empty value is not', () => {
  const tomb = deadLetterOf({ ...msg, value: null }, new PoisonEventError('DECODE_FAILED', 'message has no value (tombstone)'));
  assert.equal(tomb.headers?.[DLQ_HEADERS.tombstone], 'true');
  assert.equal(tomb.value.length, 0);
  const empty = deadLetterOf({ ...msg, value: Buffer.alloc(0) }, new PoisonEventError('DECODE_FAILED', 'truncated'));
  assert.equal(empty.headers?.[DLQ_HEADERS.tombstone], undefined);
});

test('DeadLetterWriter.sendMany passes the context to every record', async () => {
  const sent: OutMessage[] = [];
  const producer = { send: (_topic: string, msgs: OutMessage[]) => (sent.push(...msgs), Promise.resolve()) } as unknown as EventProducer;
  await new DeadLetterWriter(producer, 'dlq').sendMany(
    [
      { msg, err: 'x' },
      { msg: { ...msg, offset: 8, value: null }, err: 'y' },
    ],
    context,
  );
  assert.equal(sent.length, 2);
  assert.ok(sent.every((m) => m.headers?.[DLQ_HEADERS.group] === context.consumerGroup && m.headers[DLQ_HEADERS.adapter] === 'fm-adagrad'));
  assert.equal(sent[1]?.headers?.[DLQ_HEADERS.tombstone], 'true');
});
