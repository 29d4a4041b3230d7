/**
 * AheadPartition (streams/fetch-ahead.ts): chunks of a partition in flight across kafkajs batches.
 * Commits only in hand-over order and only after durability; the first failure seeks back to the
 * failed chunk and the chunks after it neither commit nor seek; a chunk of an older generation is
 * never committed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../lib/log.js';
import { RewindPartition } from '../../../streams/assignment.js';
import { AheadPartition, type AheadHost, type Outcome } from '../../../streams/fetch-ahead.js';
import type { MessageBatch } from '../../../streams/message.js';
import { PartitionCommitter, type CommitPayload } from '../../../streams/partition-committer.js';

interface Rig {
  ahead: AheadPartition;
  commits: PartitionCommitter;
  payload: CommitPayload;
  committed: number[];
  seeks: number[];
  failures: string[];
  /** Settles the handler call of the chunk starting at `first`. */
  settle(first: number, outcome: Outcome): void;
  join(): void;
}

function rig(): Rig {
  const committed: number[] = [];
  const seeks: number[] = [];
  const failures: string[] = [];
  const pending = new Map<number, (o: Outcome) => void>();
  let joins = 0;
  const host: AheadHost = {
    call: (chunk) => new Promise<Outcome>((resolve) => pending.set(chunk.messages[0]?.offset ?? -1, resolve)),
    seek: (_t, _p, offset) => seeks.push(offset),
    joins: () => joins,
    onFailure: (kind) => failures.push(kind),
    logger: silentLogger,
    retryInitialMs: 100,
    retryMaxMs: 300,
  };
  const commits = new PartitionCommitter('t', 0, silentLogger);
  const payload: CommitPayload = {
    commitOffsetsIfNecessary: async (offsets) => {
      await new Promise((r) => setImmediate(r));
      for (const t of offsets?.topics ?? []) for (const p of t.partitions) committed.push(Number(p.offset));
    },
  };
  return {
    ahead: new AheadPartition('t', 0, host, commits),
    commits,
    payload,
    committed,
    seeks,
    failures,
    settle: (first, outcome) => {
      const r = pending.get(first);
      assert.ok(r !== undefined, `no call for chunk ${first}`);
      r(outcome);
    },
    join: () => joins++,
  };
}

function chunk(first: number, n: number): MessageBatch {
  const messages = Array.from({ length: n }, (_, i) => ({ topic: 't', partition: 0, offset: first + i, key: null, value: null, headers: {}, timestampMs: 0 }));
  return { topic: 't', partition: 0, messages, highWatermark: first + n };
}

const ok: Outcome = { ok: true };

describe('AheadPartition', { timeout: 10_000 }, () => {
  it('commits in hand-over order, each chunk only after it and every earlier one resolved', async () => {
    const r = rig();
    r.ahead.hand(chunk(0, 10), 9, r.payload);
    r.ahead.hand(chunk(10, 10), 19, r.payload);
    assert.equal(r.ahead.size, 2);
    r.settle(10, ok); // the later chunk first: nothing may be committed yet
    await new Promise((res) => setImmediate(res));
    await r.commits.settled();
    assert.deepEqual(r.committed, []);
    assert.equal(r.ahead.size, 2);
    r.settle(0, ok);
    await r.ahead.settled();
    await r.commits.settled();
    assert.equal(r.ahead.size, 0);
    assert.equal(r.committed.at(-1), 20);
    assert.ok(r.committed.every((o) => o === 10 || o === 20));
  });

  it('below(n) waits until fewer than n chunks are in flight', async () => {
    const r = rig();
    r.ahead.hand(chunk(0, 5), 4, r.payload);
    let done = false;
    const waiting = r.ahead.below(1).then(() => (done = true));
    await new Promise((res) => setImmediate(res));
    assert.equal(done, false);
    r.settle(0, ok);
    await waiting;
    assert.equal(done, true);
  });

  it('a failure seeks back to the failed chunk; the chunks after it neither commit nor seek; backoff doubles, success clears', async () => {
    const r = rig();
    r.ahead.hand(chunk(0, 10), 9, r.payload);
    r.ahead.hand(chunk(10, 10), 19, r.payload);
    r.settle(0, { ok: false, err: new Error('redis down') });
    r.settle(10, { ok: false, err: new Error('discarded') });
    await r.ahead.settled();
    await r.commits.settled();
    assert.deepEqual(r.seeks, [0]);
    assert.deepEqual(r.committed, []);
    assert.deepEqual(r.failures, ['retry']);
    assert.deepEqual({ offset: r.ahead.failed?.offset, attempt: r.ahead.failed?.attempt, delayMs: r.ahead.failed?.delayMs }, { offset: 0, attempt: 1, delayMs: 100 });
    // A batch fetched before the seek back (past the failed chunk) is not handed over.
    assert.equal(r.ahead.mayHand(20), false);
    assert.equal(r.ahead.mayHand(0), true);
    r.ahead.hand(chunk(0, 10), 9, r.payload);
    assert.equal(r.ahead.mayHand(20), true);
    r.settle(0, { ok: false, err: new Error('still down') });
    await r.ahead.settled();
    assert.deepEqual({ attempt: r.ahead.failed?.attempt, delayMs: r.ahead.failed?.delayMs }, { attempt: 2, delayMs: 200 });
    r.ahead.hand(chunk(0, 10), 9, r.payload);
    r.settle(0, { ok: false, err: new Error('still down') });
    await r.ahead.settled();
    assert.equal(r.ahead.failed?.delayMs, 300); // capped at retryMaxMs
    r.ahead.hand(chunk(0, 20), 19, r.payload);
    r.settle(0, ok);
    await r.ahead.settled();
    await r.commits.settled();
    assert.equal(r.ahead.failed, undefined);
    assert.deepEqual(r.committed, [20]);
    assert.deepEqual(r.seeks, [0, 0, 0]);
  });

  it('a chunk handed over under an older generation is neither committed nor sought back', async () => {
    const r = rig();
    r.ahead.hand(chunk(0, 10), 9, r.payload);
    r.ahead.hand(chunk(10, 10), 19, r.payload);
    r.join();
    r.settle(0, ok);
    r.settle(10, { ok: false, err: new Error('redis down') });
    await r.ahead.settled();
    await r.commits.settled();
    assert.deepEqual(r.committed, []);
    assert.deepEqual(r.seeks, []);
  });

  it('a RewindPartition seeks where it says and is not retried with backoff', async () => {
    const r = rig();
    r.ahead.hand(chunk(50, 10), 59, r.payload);
    r.settle(50, { ok: false, err: new RewindPartition(30, 'store lost writes') });
    await r.ahead.settled();
    assert.deepEqual(r.seeks, [30]);
    assert.deepEqual(r.failures, ['rewind']);
    assert.equal(r.ahead.failed, undefined);
  });
});
