/**
 * Pipelining within a partition (worker `pipelineDepth` > 1, BatchConsumer `pipelineDepth`):
 * chunk N+1 is prepared while chunk N is persisted, commits stay in order, and a failure of N
 * discards what was prepared after it and retries from N. Every run must end exactly where the
 * serial run (one chunk at a time) ends: same states, same rows.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { PredictionRow } from '../../../analytics/types.js';
import { AdaptationWorker, DiscardedChunkError, type BatchSource } from '../../../consumers/worker.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import type { EntityState, StateScope } from '../../../model-store/types.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { BatchConsumer, resolveBatchConsumerOptions } from '../../../streams/batch-consumer.js';
import type { MessageBatch, RawMessage } from '../../../streams/message.js';
import { encodeLabelled } from '../../../streams/serde.js';
import { RecordingSink, SharingStore, ToyAdapter, toyEvents } from './fakes.js';

const NOW = 1_700_000_100_000;
const CHUNK = 50;
type Handler = (b: MessageBatch) => Promise<void>;

/** Captures the worker's handler; the test calls it directly (overlapping calls included). */
class CaptureSource implements BatchSource {
  handler: Handler | undefined;
  start(handler: Handler): Promise<void> {
    this.handler = handler;
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  lag(): Promise<number> {
    return Promise.resolve(0);
  }
}

const noDlq = { sendMany: (): Promise<void> => Promise.resolve() };

function chunkOf(evs: readonly LabelledEvent[], first: number): MessageBatch {
  const messages: RawMessage[] = evs.map((e, i) => ({ topic: 't', partition: 0, offset: first + i, key: null, value: encodeLabelled(e), headers: {}, timestampMs: NOW }));
  return { topic: 't', partition: 0, messages, highWatermark: first + evs.length };
}

function chunks(evs: readonly LabelledEvent[]): MessageBatch[] {
  const out: MessageBatch[] = [];
  for (let at = 0; at < evs.length; at += CHUNK) out.push(chunkOf(evs.slice(at, at + CHUNK), at));
  return out;
}

async function started(store: SharingStore, sink: RecordingSink, pipelineDepth?: number): Promise<{ worker: AdaptationWorker; handler: Handler; adapter: ToyAdapter }> {
  const source = new CaptureSource();
  const adapter = new ToyAdapter('item');
  const worker = new AdaptationWorker({
    kafka: { brokers: ['127.0.0.1:1'] },
    side: 'item',
    adapter,
    store,
    sink,
    deadLetters: noDlq,
    source,
    clock: () => NOW,
    metricsPort: 0,
    ...(pipelineDepth === undefined ? {} : { pipelineDepth }),
  });
  await worker.start();
  return { worker, handler: source.handler as Handler, adapter };
}

/** The serial run: each chunk handled to the end before the next. */
async function serialRun(evs: readonly LabelledEvent[]): Promise<{ store: SharingStore; sink: RecordingSink }> {
  const store = new SharingStore();
  const sink = new RecordingSink();
  const { worker, handler } = await started(store, sink, 1);
  for (const c of chunks(evs)) await handler(c);
  await worker.stop();
  return { store, sink };
}

function rowsById(rows: readonly PredictionRow[]): Map<string, PredictionRow> {
  const m = new Map<string, PredictionRow>();
  for (const r of rows) {
    const prev = m.get(r.eventId);
    if (prev !== undefined) assert.deepEqual(r, prev, `duplicate rows of ${r.eventId} differ`);
    m.set(r.eventId, r);
  }
  return m;
}

function assertSameOutcome(got: { store: SharingStore; sink: RecordingSink }, want: { store: SharingStore; sink: RecordingSink }, events: number): void {
  assert.deepEqual(got.store.snapshot(), want.store.snapshot());
  const g = rowsById(got.sink.rows);
  assert.equal(g.size, events);
  assert.deepEqual(g, rowsById(want.sink.rows));
}

/** A sink whose next write can be held open until `release()`. */
class GatedSink extends RecordingSink {
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  entered = 0;
  /** Called when a write starts (before it waits at the gate). */
  onEnter: (() => void) | undefined;
  hold(): void {
    this.gate = new Promise<void>((r) => (this.open = r));
  }
  release(): void {
    this.open?.();
    this.gate = undefined;
  }
  override async write(rows: readonly PredictionRow[]): Promise<void> {
    this.entered++;
    this.onEnter?.();
    if (this.gate !== undefined) await this.gate;
    return super.write(rows);
  }
}

/**
 * A sink failing (once) the write that carries `eventId`, after a few ms: long enough for the next
 * chunk to be prepared (reading the failing chunk's states) meanwhile.
 */
class FailOnceSink extends RecordingSink {
  failed = 0;
  constructor(private readonly eventId: string) {
    super();
  }
  override async write(rows: readonly PredictionRow[]): Promise<void> {
    if (this.failed === 0 && rows.some((r) => r.eventId === this.eventId)) {
      this.failed++;
      await new Promise((r) => setTimeout(r, 20));
      throw new ThawError('CLICKHOUSE_ERROR', 'sink down');
    }
    return super.write(rows);
  }
}

/** A store failing (once) the putMany that carries an entity with lastOffset `offset`. */
class FailPutOnceStore extends SharingStore {
  failed = 0;
  constructor(private readonly offset: number) {
    super();
  }
  override putMany(scope: StateScope, entries: readonly { entityId: string; state: EntityState }[]): Promise<{ written: number; skipped: number }> {
    if (this.failed === 0 && entries.some((e) => e.state.lastOffset >= this.offset)) {
      this.failed++;
      // Fail late, so the next chunk is prepared meanwhile.
      return new Promise((_, reject) => setTimeout(() => reject(new ThawError('REDIS_ERROR', 'store down')), 20));
    }
    return super.putMany(scope, entries);
  }
}

/** A store whose first `failuresLeft` reads asking for `entityId` fail (as an outage). */
class FlakyReadStore extends SharingStore {
  constructor(
    private readonly entityId: string,
    public failuresLeft: number,
  ) {
    super();
  }
  override getMany(scope: StateScope, ids: readonly string[]): Promise<(EntityState | undefined)[]> {
    if (this.failuresLeft > 0 && ids.includes(this.entityId)) {
      this.failuresLeft--;
      return Promise.reject(new ThawError('REDIS_ERROR', 'store down'));
    }
    return super.getMany(scope, ids);
  }
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`never happened: ${what}`);
}

function kafkaMessage(m: RawMessage): KafkaMessage {
  return { key: m.key, value: m.value, headers: {}, offset: String(m.offset), timestamp: String(m.timestampMs), attributes: 0 };
}

/**
 * Runs the BatchConsumer's per-fetch logic (its private eachBatch) on one fetched batch of all the
 * events, with a payload that records commits, and the worker's handler behind it.
 */
async function consumeFetch(consumer: BatchConsumer, handler: Handler, evs: readonly LabelledEvent[]): Promise<number[]> {
  const commits: number[] = [];
  const all = chunkOf(evs, 0).messages.map(kafkaMessage);
  const payload = {
    // lastOffset: the fetch's last offset, a record here (a commit marker after it would be larger).
    batch: { topic: 't', partition: 0, messages: all, highWatermark: String(evs.length), lastOffset: () => all[all.length - 1]?.offset ?? '-1' },
    isRunning: () => true,
    isStale: () => false,
    resolveOffset: () => undefined,
    heartbeat: () => Promise.resolve(),
    commitOffsetsIfNecessary: (o: { topics: { partitions: { offset: string }[] }[] }) => {
      commits.push(Number(o.topics[0]?.partitions[0]?.offset));
      return Promise.resolve();
    },
  } as unknown as EachBatchPayload;
  // The consumer's Kafka side is not started here: set what start() would have set.
  Object.assign(consumer as unknown as Record<string, unknown>, { handler, lifecycle: 'running' });
  await (consumer as unknown as { eachBatch(p: EachBatchPayload): Promise<void> }).eachBatch(payload);
  return commits;
}

function consumer(pipelineDepth: number): BatchConsumer {
  return new BatchConsumer({ kafka: { brokers: ['127.0.0.1:1'] }, groupId: 'g', topics: ['t'], maxBatchMessages: CHUNK, retryInitialMs: 1, retryMaxMs: 2, pipelineDepth });
}

describe('pipelining within a partition', () => {
  const evs = toyEvents(400, 25, 3);

  it("prepares chunk N+1 while chunk N is persisted, reading N's not-yet-durable states", async () => {
    const want = await serialRun(evs);
    const store = new SharingStore();
    const sink = new GatedSink();
    const { worker, handler, adapter } = await started(store, sink, 2);
    assert.equal(worker.pipelineDepth, 2);
    const cs = chunks(evs);
    sink.hold();
    let callsAtFirstWrite = -1;
    sink.onEnter = () => {
      if (callsAtFirstWrite < 0) callsAtFirstWrite = adapter.predictCalls;
    };
    const first = handler(cs[0] as MessageBatch);
    const second = handler(cs[1] as MessageBatch);
    await until('chunk 0 reaches the sink', () => sink.entered === 1);
    await until('chunk 1 is prepared', () => adapter.predictCalls > callsAtFirstWrite);
    assert.equal(store.puts, 0, 'nothing durable yet');
    assert.equal(sink.entered, 1, 'chunk 1 waits for chunk 0 to be durable before its own write');
    sink.release();
    await Promise.all([first, second]);
    // The rest two at a time.
    for (let i = 2; i < cs.length; i += 2) await Promise.all(cs.slice(i, i + 2).map((c) => handler(c)));
    await worker.stop();
    assertSameOutcome({ store, sink }, want, evs.length);
  });

  it('commits in order and ends equal to the serial run (BatchConsumer depth 3)', async () => {
    const want = await serialRun(evs);
    const store = new SharingStore();
    const sink = new RecordingSink();
    const { worker, handler } = await started(store, sink, 3);
    const commits = await consumeFetch(consumer(3), handler, evs);
    await worker.stop();
    assert.deepEqual(
      commits,
      chunks(evs).map((c) => (c.messages.at(-1)?.offset as number) + 1),
    );
    assertSameOutcome({ store, sink }, want, evs.length);
  });

  it('a failed sink write discards the chunks prepared after it and retries from it', async () => {
    const want = await serialRun(evs);
    const store = new SharingStore();
    const sink = new FailOnceSink((evs[3 * CHUNK + 7] as LabelledEvent).eventId);
    const { worker, handler } = await started(store, sink, 2);
    let discarded = 0;
    const counted: Handler = (b) =>
      handler(b).catch((err: unknown) => {
        if (err instanceof DiscardedChunkError) discarded++;
        throw err;
      });
    const commits = await consumeFetch(consumer(2), counted, evs);
    await worker.stop();
    assert.equal(sink.failed, 1);
    assert.equal(discarded, 1, 'the chunk after the failed one was discarded');
    assert.deepEqual(
      commits,
      chunks(evs).map((c) => (c.messages.at(-1)?.offset as number) + 1),
    );
    assert.equal(worker.state, 'STOPPED');
    assertSameOutcome({ store, sink }, want, evs.length);
  });

  it('a failed state write (rows already durable) is retried from that chunk; rows repeat identically', async () => {
    const want = await serialRun(evs);
    const store = new FailPutOnceStore(5 * CHUNK);
    const sink = new RecordingSink();
    const { worker, handler } = await started(store, sink, 2);
    const commits = await consumeFetch(consumer(2), handler, evs);
    await worker.stop();
    assert.equal(store.failed, 1);
    assert.ok(sink.rows.length > evs.length, "the failed chunk's rows were written twice");
    assert.deepEqual(
      commits,
      chunks(evs).map((c) => (c.messages.at(-1)?.offset as number) + 1),
    );
    assertSameOutcome({ store, sink }, want, evs.length);
  });

  it('a chunk whose prepare fails (store read) discards the later ones, and nothing is committed past it', async () => {
    // An item first seen in chunk 4: chunk 4's store read is the first to ask for it.
    const mixed = evs.map((e, i) => (i === 4 * CHUNK + 10 ? { ...e, itemId: 'fresh-item' } : e));
    const want = await serialRun(mixed);
    const store = new FlakyReadStore('fresh-item', 2);
    const sink = new RecordingSink();
    const { worker, handler } = await started(store, sink, 3);
    const commits = await consumeFetch(consumer(3), handler, mixed);
    await worker.stop();
    assert.equal(store.failuresLeft, 0);
    assert.deepEqual(
      commits,
      chunks(mixed).map((c) => (c.messages.at(-1)?.offset as number) + 1),
    );
    assertSameOutcome({ store, sink }, want, mixed.length);
  });

  it('validates pipelineDepth', async () => {
    await assert.rejects(async () => started(new SharingStore(), new RecordingSink(), 0), ConfigError);
    await assert.rejects(async () => started(new SharingStore(), new RecordingSink(), 17), ConfigError);
    assert.equal(resolveBatchConsumerOptions({ kafka: { brokers: ['h:1'] }, groupId: 'g', topics: ['t'] }).pipelineDepth, 1);
    assert.throws(() => resolveBatchConsumerOptions({ kafka: { brokers: ['h:1'] }, groupId: 'g', topics: ['t'], pipelineDepth: 17 }), ConfigError);
  });
});
