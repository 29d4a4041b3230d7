import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdaptationWorker, installSignalHandlers, type BatchSource } from '../../../consumers/worker.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { createLogger } from '../../../lib/log.js';
import type { MessageBatch, RawMessage } from '../../../streams/message.js';
import { encodeLabelled } from '../../../streams/serde.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { RecordingSink, SharingStore, ToyAdapter, toyEvents } from './fakes.js';

/** Plays the BatchConsumer's contract: retry a throwing handler, commit only after it resolves. */
class FakeSource implements BatchSource {
  handler: ((b: MessageBatch) => Promise<void>) | undefined;
  committed = -1;
  stopped = 0;
  attempts = 0;
  start(handler: (b: MessageBatch) => Promise<void>): Promise<void> {
    this.handler = handler;
    return Promise.resolve();
  }
  async deliver(batch: MessageBatch, maxAttempts = 10): Promise<void> {
    for (let a = 0; a < maxAttempts; a++) {
      this.attempts++;
      try {
        await (this.handler as (b: MessageBatch) => Promise<void>)(batch);
        this.committed = (batch.messages.at(-1)?.offset ?? this.committed) + 1;
        return;
      } catch (err) {
        if (a === maxAttempts - 1) throw err;
      }
    }
  }
  stop(): Promise<void> {
    this.stopped++;
    return Promise.resolve();
  }
  lag(): Promise<number> {
    return Promise.resolve(0);
  }
}

class FakeDlq {
  readonly sent: { msg: RawMessage; err: unknown }[] = [];
  sendMany(items: readonly { msg: RawMessage; err: unknown }[]): Promise<void> {
    this.sent.push(...items);
    return Promise.resolve();
  }
}

const NOW = 1_700_000_100_000;

function message(offset: number, value: Buffer | null): RawMessage {
  return { topic: 't', partition: 0, offset, key: null, value, headers: {}, timestampMs: NOW };
}

function batchOf(values: (Buffer | null)[], firstOffset = 0): MessageBatch {
  return { topic: 't', partition: 0, messages: values.map((v, i) => message(firstOffset + i, v)), highWatermark: firstOffset + values.length };
}

function setup(extra: { store?: SharingStore; sink?: RecordingSink } = {}) {
  const store = extra.store ?? new SharingStore();
  const sink = extra.sink ?? new RecordingSink();
  const source = new FakeSource();
  const dlq = new FakeDlq();
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('debug', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
  const worker = new AdaptationWorker({
    kafka: { brokers: ['127.0.0.1:1'] },
    side: 'item',
    adapter: new ToyAdapter('item'),
    store,
    sink,
    deadLetters: dlq,
    source,
    clock: () => NOW,
    metricsPort: 0,
    logger,
  });
  return { store, sink, source, dlq, lines, worker };
}

function events(n: number): LabelledEvent[] {
  return toyEvents(n, 5).map((e, i) => ({ ...e, timeMs: NOW - 1_000_000 + i }));
}

describe('AdaptationWorker', () => {
  it('defaults its group and topic from side, adapter and namespace', () => {
    const { worker } = setup();
    assert.equal(worker.groupId, 'thaw-item-toy-live');
    assert.equal(worker.topic, 'thaw.labelled.by-item');
    assert.equal(worker.state, 'INITIALIZED');
  });

  it('refuses bad options naming the key', () => {
    const base = { kafka: { brokers: ['127.0.0.1:1'] }, store: new SharingStore(), sink: new RecordingSink(), deadLetters: new FakeDlq(), source: new FakeSource(), metricsPort: 0 };
    const bad = (opts: Partial<ConstructorParameters<typeof AdaptationWorker>[0]>, key: string): void =>
      assert.throws(
        () => new AdaptationWorker({ ...base, side: 'item', adapter: new ToyAdapter('item'), ...opts }),
        (e: unknown) => e instanceof ConfigError && e.key === key,
        key,
      );
    bad({ adapter: new ToyAdapter('user') }, 'side');
    bad({ namespace: 'Bad:Name' }, 'namespace');
    bad({ maxBatchMessages: 0 }, 'maxBatchMessages');
    bad({ metricsPort: -1 }, 'metrics.port');
  });

  it('processes valid events and dead-letters poison ones before the batch is committed', async () => {
    const t = setup();
    await t.worker.start();
    assert.equal(t.worker.state, 'RUNNING');
    const evs = events(6);
    const bad: LabelledEvent = { ...(evs[0] as LabelledEvent), eventId: 'future', timeMs: NOW + 365 * 86_400_000 };
    const values = [encodeLabelled(evs[0] as LabelledEvent), Buffer.from('garbage bytes'), encodeLabelled(evs[1] as LabelledEvent), null, encodeLabelled(bad), encodeLabelled(evs[2] as LabelledEvent)];
    await t.source.deliver(batchOf(values, 10));
    assert.equal(t.source.committed, 16);
    assert.deepEqual(
      t.sink.rows.map((r) => r.eventId),
      [evs[0]?.eventId, evs[1]?.eventId, evs[2]?.eventId],
    );
    assert.deepEqual(
      t.dlq.sent.map((d) => d.msg.offset),
      [11, 13, 14],
    );
    assert.ok(t.dlq.sent.every((d) => d.err instanceof ThawError && (d.err.code === 'DECODE_FAILED' || d.err.code === 'VALIDATION_FAILED')));
    assert.equal((t.dlq.sent[2]?.err as ThawError).code, 'VALIDATION_FAILED');
    const s = t.worker.stats();
    assert.deepEqual([s.batches, s.processed, s.skipped, s.deadLetters], [1, 3, 0, 3]);
    const text = await t.worker.metrics.text();
    assert.match(text, /thaw_events_total\{[^}]*outcome="dead_letter"[^}]*\} 3/);
    assert.match(text, /thaw_dead_letters_total\{reason="DECODE_FAILED"[^}]*\} 2/);
    await t.worker.drain();
  });

  it('pauses on a retryable outage without committing, logs it once, and resumes exactly', async () => {
    const t = setup();
    await t.worker.start();
    const evs = events(20);
    await t.source.deliver(
      batchOf(
        evs.slice(0, 10).map((e) => encodeLabelled(e)),
        0,
      ),
    );
    let failures = 4;
    const realGet = t.store.getMany.bind(t.store);
    t.store.getMany = (scope, ids) => (failures-- > 0 ? Promise.reject(new ThawError('REDIS_ERROR', 'connection refused')) : realGet(scope, ids));
    const committedBefore = t.source.committed;
    await t.source.deliver(
      batchOf(
        evs.slice(10).map((e) => encodeLabelled(e)),
        10,
      ),
    );
    assert.equal(t.source.attempts, 6, '4 failed attempts, then success');
    assert.equal(committedBefore, 10);
    assert.equal(t.source.committed, 20);
    assert.equal(t.sink.rows.length, 20, 'nothing lost or doubled');
    assert.equal(t.lines.filter((l) => String(l.msg).startsWith('dependency outage')).length, 1);
    assert.equal(t.lines.filter((l) => String(l.msg).startsWith('dependency back')).length, 1);
    assert.equal(t.worker.stats().retries, 4);
    assert.equal(t.worker.stats().outageSinceMs, undefined);
    assert.equal(t.worker.state, 'RUNNING');
    await t.worker.drain();
  });

  it('waits out a full sink spool like an outage', async () => {
    const t = setup();
    await t.worker.start();
    t.sink.write = () => Promise.reject(new ThawError('SPOOL_ERROR', 'spool full'));
    await assert.rejects(t.source.deliver(batchOf([encodeLabelled(events(1)[0] as LabelledEvent)]), 3), /spool full/);
    assert.equal(t.worker.state, 'RUNNING');
    assert.equal(t.worker.stats().retries, 3);
    assert.equal(t.store.puts, 0);
    await t.worker.drain();
  });

  it('goes FAILED and stops on a non-retryable error', async () => {
    const t = setup();
    await t.worker.start();
    t.store.getMany = () => Promise.reject(new ThawError('STATE_CORRUPT', 'bad bytes'));
    await assert.rejects(t.source.deliver(batchOf([encodeLabelled(events(1)[0] as LabelledEvent)]), 2), /bad bytes|failed/);
    assert.equal(await t.worker.whenStopped(), 'FAILED');
    assert.equal(t.worker.state, 'FAILED');
    assert.equal((t.worker.error as ThawError).code, 'STATE_CORRUPT');
    assert.equal(t.source.stopped, 1);
    assert.equal(t.source.committed, -1);
  });

  it('drains: stops the source, flushes the sink, ends STOPPED; refuses a second start', async () => {
    const t = setup();
    let flushed = 0;
    t.sink.flush = () => {
      flushed++;
      return Promise.resolve();
    };
    await t.worker.start();
    await assert.rejects(t.worker.start(), (e: unknown) => e instanceof ThawError && e.code === 'LIFECYCLE');
    await Promise.all([t.worker.drain(), t.worker.drain()]);
    assert.equal(t.worker.state, 'STOPPED');
    assert.equal(await t.worker.whenStopped(), 'STOPPED');
    assert.deepEqual([t.source.stopped, flushed], [1, 1]);
  });

  it('installSignalHandlers drains on the signal and exits 0', async () => {
    const t = setup();
    await t.worker.start();
    const codes: number[] = [];
    let exited!: () => void;
    const done = new Promise<void>((r) => (exited = r));
    const remove = installSignalHandlers(t.worker, {
      signals: ['SIGUSR2'],
      exit: (c) => {
        codes.push(c);
        exited();
      },
    });
    process.emit('SIGUSR2', 'SIGUSR2');
    await done;
    remove();
    assert.deepEqual(codes, [0]);
    assert.equal(t.worker.state, 'STOPPED');
    assert.equal(process.listenerCount('SIGUSR2'), 0);
  });
});
