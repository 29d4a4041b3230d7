/**
 * streams/producer.ts `unacknowledged`: which messages of a send kafkajs resolved without an
 * acknowledgement for their partition (kafkajs 2.2.4 can skip a partition whose leader moved to a
 * broker that had already answered; the failover bench lost 23 acknowledged events so).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Message } from 'kafkajs';
import { unacknowledged } from '../../../streams/producer.js';

const msg = (key: string): Message => ({ key, value: Buffer.from(key) });

describe('unacknowledged', () => {
  const a0 = msg('a0');
  const a1 = msg('a1');
  const b0 = msg('b0');
  const pinned: Message = { ...msg('p'), partition: 1 };
  const chosen = new Map<Message, number>([
    [a0, 0],
    [a1, 1],
    [b0, 0],
  ]);
  const partitionOf = (m: Message): number | undefined => chosen.get(m);
  const sent = [
    { topic: 'a', messages: [a0, a1, pinned] },
    { topic: 'b', messages: [b0] },
  ];

  it('is empty when every partition that got messages answered without error', () => {
    const acked = [
      { topicName: 'a', partition: 0, errorCode: 0 },
      { topicName: 'a', partition: 1, errorCode: 0 },
      { topicName: 'b', partition: 0, errorCode: 0 },
    ];
    assert.deepEqual(unacknowledged(sent, acked, partitionOf), []);
  });

  it('returns the messages of a partition with no answer, pinned to it, per topic', () => {
    const acked = [
      { topicName: 'a', partition: 0, errorCode: 0 },
      { topicName: 'b', partition: 0, errorCode: 0 },
    ];
    const missing = unacknowledged(sent, acked, partitionOf);
    assert.deepEqual(
      missing.map((t) => ({ topic: t.topic, keys: t.messages.map((m) => m.key), partitions: t.messages.map((m) => m.partition) })),
      [{ topic: 'a', keys: ['a1', 'p'], partitions: [1, 1] }],
    );
  });

  it('counts an answer with an error code as no acknowledgement, and partition 0 of another topic as another partition', () => {
    const acked = [
      { topicName: 'a', partition: 0, errorCode: 6 },
      { topicName: 'a', partition: 1, errorCode: 0 },
      { topicName: 'c', partition: 0, errorCode: 0 },
    ];
    assert.deepEqual(
      unacknowledged(sent, acked, partitionOf).map((t) => [t.topic, t.messages.length]),
      [
        ['a', 1],
        ['b', 1],
      ],
    );
  });

  it('refuses a message whose partition was never recorded (an internal error, not a silent loss)', () => {
    assert.throws(() => unacknowledged([{ topic: 'a', messages: [msg('x')] }], [], partitionOf), { code: 'LIFECYCLE' });
  });
});
