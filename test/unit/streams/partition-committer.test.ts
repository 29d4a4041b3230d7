/**
 * PartitionCommitter (streams/partition-committer.ts). The bug: an ask that wanted nothing new (an
 * offset at or below the last one sent, as after a RewindPartition refetch) ran the send loop to
 * its end synchronously, so its `finally` cleared `running` before `running ??= loop()` stored the
 * settled promise; every later ask then found a loop "running" and the partition never committed
 * again (the worker's lag stayed at the rewind point for ever).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../lib/log.js';
import { PartitionCommitter, type CommitPayload } from '../../../streams/partition-committer.js';

function fakePayload(): { payload: CommitPayload; sent: number[] } {
  const sent: number[] = [];
  const payload: CommitPayload = {
    commitOffsetsIfNecessary: async (offsets) => {
      await new Promise((r) => setImmediate(r));
      for (const t of offsets?.topics ?? []) for (const p of t.partitions) sent.push(Number(p.offset));
    },
  };
  return { payload, sent };
}

describe('PartitionCommitter', { timeout: 10_000 }, () => {
  it('merges asks while a commit is in flight and sends them in order', async () => {
    const c = new PartitionCommitter('t', 0, silentLogger);
    const { payload, sent } = fakePayload();
    c.upTo(10, payload);
    c.upTo(20, payload);
    c.upTo(30, payload);
    await c.settled();
    assert.deepEqual(sent, [10, 30]);
  });

  it('keeps committing after an ask behind the last commit (a rewind)', async () => {
    const c = new PartitionCommitter('t', 0, silentLogger);
    const { payload, sent } = fakePayload();
    c.upTo(100, payload);
    await c.settled();
    c.upTo(50, payload); // refetched from before the last commit: nothing to send
    await c.settled();
    c.upTo(120, payload);
    await c.settled();
    assert.deepEqual(sent, [100, 120]);
  });

  it('upToLater after a rewind ask sends too', async () => {
    const c = new PartitionCommitter('t', 0, silentLogger);
    const { payload, sent } = fakePayload();
    c.upTo(100, payload);
    await c.settled();
    c.upTo(100, payload);
    assert.equal(c.upToLater(101), true);
    await c.settled();
    assert.deepEqual(sent, [100, 101]);
  });
});
