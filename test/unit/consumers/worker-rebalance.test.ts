/**
 * Issue 11 in process: two workers with their own cache tiers in front of one store, a partition
 * moving A → B → A. Without the assignment hook A applies events to the states it cached before the
 * partition left it (lost updates, accepted by the store's CAS); with it, both end exactly where one
 * uninterrupted worker does. Also: the start offset a worker chooses from the stored progress, and
 * an entity whose state recorded another partition (re-based, counted, logged, never skipped).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdaptationWorker, type BatchSource } from '../../../consumers/worker.js';
import { createLogger } from '../../../lib/log.js';
import { CachedEntityStore } from '../../../model-store/cached-store.js';
import { MemoryEntityStore } from '../../../model-store/memory-store.js';
import type { EntityState, EntityStore } from '../../../model-store/types.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { assignmentChange, type GroupAssignment, type PartitionListener, type TopicPartition } from '../../../streams/assignment.js';
import type { MessageBatch } from '../../../streams/message.js';
import { encodeLabelled } from '../../../streams/serde.js';
import { RecordingSink, ToyAdapter, toyEvents } from './fakes.js';

const NOW = 1_700_000_100_000;
const TOPIC = 't';

/** Plays a group member: hands batches over, and tells the listener of its assignments if `hooks`. */
class MemberSource implements BatchSource {
  handler: ((b: MessageBatch) => Promise<void>) | undefined;
  listener: PartitionListener | undefined;
  private membership: GroupAssignment | undefined;
  constructor(private readonly hooks: boolean) {}
  start(handler: (b: MessageBatch) => Promise<void>, listener?: PartitionListener): Promise<void> {
    this.handler = handler;
    this.listener = listener;
    return Promise.resolve();
  }
  join(partitions: TopicPartition[]): void {
    const next = { memberId: 'm', partitions };
    const change = assignmentChange(this.membership, next);
    this.membership = next;
    if (this.hooks) this.listener?.onAssignment?.(change);
  }
  deliver(batch: MessageBatch): Promise<void> {
    return (this.handler as (b: MessageBatch) => Promise<void>)(batch);
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  lag(): Promise<number> {
    return Promise.resolve(0);
  }
}

function events(n: number): LabelledEvent[] {
  return toyEvents(n, 4).map((e, i) => ({ ...e, timeMs: NOW - 1_000_000 + i }));
}

function batchOf(evs: readonly LabelledEvent[], from: number, to: number, partition = 0): MessageBatch {
  const messages = evs.slice(from, to).map((e, i) => ({ topic: TOPIC, partition, offset: from + i, key: null, value: encodeLabelled(e), headers: {}, timestampMs: NOW }));
  return { topic: TOPIC, partition, messages, highWatermark: evs.length };
}

function worker(store: EntityStore, source: BatchSource, lines: Record<string, unknown>[] = []): AdaptationWorker {
  return new AdaptationWorker({
    kafka: { brokers: ['127.0.0.1:1'] },
    side: 'item',
    adapter: new ToyAdapter('item'),
    store,
    sink: new RecordingSink(),
    deadLetters: { sendMany: () => Promise.resolve() },
    source,
    topic: TOPIC,
    clock: () => NOW,
    metricsPort: 0,
    logger: createLogger('debug', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>)),
  });
}

const scope = { namespace: 'live', side: 'item', adapter: 'toy' } as const;

async function statesOf(store: EntityStore, evs: readonly LabelledEvent[]): Promise<Map<string, { count: number; lastOffset: number; params: number[] }>> {
  const ids = [...new Set(evs.map((e) => e.itemId))].sort();
  const got = await store.getMany(scope, ids);
  const out = new Map<string, { count: number; lastOffset: number; params: number[] }>();
  ids.forEach((id, i) => {
    const s: EntityState | undefined = got[i];
    if (s !== undefined) out.set(id, { count: s.count, lastOffset: s.lastOffset, params: [...s.params] });
  });
  return out;
}

/** A → B → A over one partition, 3 × 20 events; returns the shared store's states. */
async function handOver(hooks: boolean, evs: readonly LabelledEvent[]): Promise<MemoryEntityStore> {
  const redis = new MemoryEntityStore();
  const srcA = new MemberSource(hooks);
  const srcB = new MemberSource(hooks);
  const a = worker(new CachedEntityStore(redis), srcA);
  const b = worker(new CachedEntityStore(redis), srcB);
  await a.start();
  await b.start();
  const p0 = [{ topic: TOPIC, partition: 0 }];
  srcA.join(p0);
  await srcA.deliver(batchOf(evs, 0, 20));
  srcA.join([]);
  srcB.join(p0);
  await srcB.deliver(batchOf(evs, 20, 40));
  srcB.join([]);
  srcA.join(p0);
  await srcA.deliver(batchOf(evs, 40, 60));
  await a.stop();
  await b.stop();
  return redis;
}

describe('a partition moving between workers with cache tiers (issue 11)', () => {
  it('ends where one uninterrupted worker does; without the assignment hook it loses updates', async () => {
    const evs = events(60);
    const reference = new MemoryEntityStore();
    const src = new MemberSource(true);
    const solo = worker(new CachedEntityStore(reference), src);
    await solo.start();
    src.join([{ topic: TOPIC, partition: 0 }]);
    for (const [from, to] of [
      [0, 20],
      [20, 40],
      [40, 60],
    ] as const)
      await src.deliver(batchOf(evs, from, to));
    await solo.stop();
    const want = await statesOf(reference, evs);

    assert.deepEqual(await statesOf(await handOver(true, evs), evs), want);
    // The bug, reproduced: A's cached states from before the hand-over are applied to and accepted.
    const stale = await statesOf(await handOver(false, evs), evs);
    const wrong = [...want].filter(([id, s]) => stale.get(id)?.count !== s.count);
    assert.ok(wrong.length > 0, 'without invalidation some entity misses the updates B made');
  });

  it('starts a newly assigned partition right after the progress stored with the states', async () => {
    const evs = events(60);
    const redis = new MemoryEntityStore();
    const src = new MemberSource(true);
    const w = worker(new CachedEntityStore(redis), src);
    await w.start();
    src.join([{ topic: TOPIC, partition: 0 }]);
    await src.deliver(batchOf(evs, 0, 20));
    await src.deliver(batchOf(evs, 20, 40));
    assert.equal(await redis.getProgress(scope, TOPIC, 0), 39, 'progress written with the states');
    const listener = src.listener as PartitionListener;
    const start = (fetchedFrom: number): Promise<number | undefined> | undefined => listener.startOffset?.({ topic: TOPIC, partition: 0 }, { fetchedFrom, highWatermark: 60 });
    assert.equal(await start(20), 40, 'committed offset behind the states (a crash before the commit): seek ahead');
    assert.equal(await start(40), undefined, 'in step');
    assert.equal(await start(55), 40, 'committed offset ahead of the states (the store lost writes): seek back');
    assert.equal(await listener.startOffset?.({ topic: TOPIC, partition: 1 }, { fetchedFrom: 0, highWatermark: 60 }), undefined, 'no progress');
    assert.equal(await listener.startOffset?.({ topic: TOPIC, partition: 0 }, { fetchedFrom: 0, highWatermark: 10 }), undefined, 'past the end: recreated topic');
    const text = await w.metrics.text();
    assert.match(text, /thaw_partition_starts_total\{decision="seek_ahead",namespace="live"\} 1/);
    assert.match(text, /thaw_partition_starts_total\{decision="beyond_end",namespace="live"\} 1/);
    await w.stop();
  });

  it('an entity whose state recorded another partition is re-based, counted and logged by name, not skipped', async () => {
    const evs = events(40);
    const redis = new MemoryEntityStore();
    const src = new MemberSource(true);
    const lines: Record<string, unknown>[] = [];
    const w = worker(new CachedEntityStore(redis), src, lines);
    await w.start();
    src.join([
      { topic: TOPIC, partition: 0 },
      { topic: TOPIC, partition: 1 },
    ]);
    await src.deliver(batchOf(evs, 0, 30, 0));
    // Partitions were added: the same items now arrive on partition 1, from its offset 0 on.
    const moved = batchOf(evs, 30, 40, 1);
    const renumbered = { ...moved, messages: moved.messages.map((m, i) => ({ ...m, offset: i })) };
    const before = await statesOf(redis, evs);
    await src.deliver(renumbered);
    const after = await statesOf(redis, evs);
    const ids = new Set(evs.slice(30, 40).map((e) => e.itemId));
    for (const id of ids) {
      const n = evs.slice(30, 40).filter((e) => e.itemId === id).length;
      assert.equal(after.get(id)?.count, (before.get(id)?.count ?? 0) + n, `every event of ${id} from partition 1 applied`);
    }
    const warned = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('entity state recorded another partition'));
    const known = [...ids].filter((id) => before.has(id));
    assert.deepEqual(warned.map((l) => l.entityId).sort(), known.sort(), 'one warning naming each re-based entity');
    assert.match(await w.metrics.text(), new RegExp(`thaw_state_origin_mismatches_total\\{namespace="live"\\} ${known.length}`));
    assert.equal(w.stats().skipped, 0);
    await w.stop();
  });
});
