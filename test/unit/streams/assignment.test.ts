import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assignmentChange, partitionsOf, type TopicPartition } from '../../../streams/assignment.js';

const tp = (partition: number, topic = 't'): TopicPartition => ({ topic, partition });
const keys = (ps: readonly TopicPartition[]): string[] => ps.map((p) => `${p.topic}:${p.partition}`).sort();

describe('assignmentChange (what a group join moved)', () => {
  it('first join: everything assigned has moved (nothing cached can be trusted)', () => {
    const c = assignmentChange(undefined, { memberId: 'm1', partitions: [tp(0), tp(1)] });
    assert.deepEqual(keys(c.assigned), ['t:0', 't:1']);
    assert.deepEqual(c.revoked, []);
    assert.deepEqual(keys(c.moved), ['t:0', 't:1']);
  });

  it('same member: revoked and gained partitions moved, kept ones did not', () => {
    const c = assignmentChange({ memberId: 'm1', partitions: [tp(0), tp(1), tp(2)] }, { memberId: 'm1', partitions: [tp(1), tp(2), tp(3)] });
    assert.deepEqual(keys(c.revoked), ['t:0']);
    assert.deepEqual(keys(c.moved), ['t:0', 't:3']);
  });

  it('a partition that left and came back in one step of the same member was gained: moved', () => {
    const lost = assignmentChange({ memberId: 'm1', partitions: [tp(0), tp(1)] }, { memberId: 'm1', partitions: [tp(1)] });
    assert.deepEqual(keys(lost.moved), ['t:0']);
    const back = assignmentChange({ memberId: 'm1', partitions: [tp(1)] }, { memberId: 'm1', partitions: [tp(0), tp(1)] });
    assert.deepEqual(keys(back.moved), ['t:0']);
  });

  it('a new member id (removed and rejoined: generations may have been missed): every old and new partition moved', () => {
    const c = assignmentChange({ memberId: 'm1', partitions: [tp(0), tp(1)] }, { memberId: 'm2', partitions: [tp(1), tp(2)] });
    assert.deepEqual(keys(c.revoked), ['t:0']);
    assert.deepEqual(keys(c.moved), ['t:0', 't:1', 't:2']);
  });

  it('topics are told apart', () => {
    const c = assignmentChange({ memberId: 'm', partitions: [tp(0, 'a')] }, { memberId: 'm', partitions: [tp(0, 'b')] });
    assert.deepEqual(keys(c.moved), ['a:0', 'b:0']);
  });

  it("partitionsOf reads kafkajs' memberAssignment, sorted", () => {
    assert.deepEqual(keys(partitionsOf({ b: [1], a: [2, 0] })), ['a:0', 'a:2', 'b:1']);
  });
});
