/**
 * Issue 11 items 6 and 7 at the worker: a consumer that is gone for good (kafkajs gave up restarting
 * it) makes the worker FAILED, with /healthz answering 503 meanwhile and whenStopped() saying FAILED
 * (thaw run exits 1); dead letters carry the worker's group, namespace and adapter.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdaptationWorker, type BatchSource } from '../../../consumers/worker.js';
import { ThawError } from '../../../lib/errors.js';
import type { DeadLetterContext } from '../../../streams/dead-letters.js';
import type { MessageBatch, RawMessage } from '../../../streams/message.js';
import { RecordingSink, SharingStore, ToyAdapter } from './fakes.js';

class FailingSource implements BatchSource {
  handler: ((b: MessageBatch) => Promise<void>) | undefined;
  private listener: ((err: unknown) => void) | undefined;
  stopped = 0;
  start(handler: (b: MessageBatch) => Promise<void>): Promise<void> {
    this.handler = handler;
    return Promise.resolve();
  }
  onFailed(listener: (err: unknown) => void): void {
    this.listener = listener;
  }
  crash(err: unknown): void {
    this.listener?.(err);
  }
  stop(): Promise<void> {
    this.stopped++;
    return Promise.resolve();
  }
  lag(): Promise<number> {
    return Promise.resolve(0);
  }
}

class ContextDlq {
  readonly contexts: (DeadLetterContext | undefined)[] = [];
  sendMany(_items: readonly { msg: RawMessage; err: unknown }[], context?: DeadLetterContext): Promise<void> {
    this.contexts.push(context);
    return Promise.resolve();
  }
}

function worker(source: BatchSource, dlq = new ContextDlq(), metricsPort = 0): AdaptationWorker {
  return new AdaptationWorker({
    kafka: { brokers: ['127.0.0.1:1'] },
    side: 'item',
    adapter: new ToyAdapter('item'),
    store: new SharingStore(),
    sink: new RecordingSink(),
    deadLetters: dlq,
    source,
    namespace: 'ns1',
    metricsPort,
  });
}

async function healthz(port: number): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
}

describe('AdaptationWorker and a consumer gone for good', () => {
  it('goes FAILED, stops, and whenStopped() says FAILED', async () => {
    const source = new FailingSource();
    const w = worker(source);
    await w.start();
    assert.equal(w.state, 'RUNNING');
    source.crash(new Error('The group coordinator is not available (not retried)'));
    assert.equal(await w.whenStopped(), 'FAILED');
    assert.ok(w.error instanceof ThawError && w.error.code === 'KAFKA_ERROR');
    assert.match(String((w.error as Error).message), /stopped for good/);
    assert.equal(source.stopped, 1);
  });

  it('answers /healthz 503 once the consumer is gone', async () => {
    const source = new FailingSource();
    // A fixed free-ish port: the worker's metrics server needs one to be asked.
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const w = worker(source, new ContextDlq(), port);
    await w.start();
    assert.equal(await healthz(port), 200);
    // Hold the stop (metrics close) until /healthz was asked.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    source.stop = async () => {
      await held;
    };
    source.crash(new Error('gone'));
    assert.equal(w.state, 'FAILED');
    assert.equal(await healthz(port), 503);
    release();
    assert.equal(await w.whenStopped(), 'FAILED');
  });
});

describe('AdaptationWorker dead letters', () => {
  it('name the consumer group, namespace and adapter', async () => {
    const source = new FailingSource();
    const dlq = new ContextDlq();
    const w = worker(source, dlq);
    await w.start();
    const poison: RawMessage = { topic: 't', partition: 0, offset: 0, key: null, value: null, headers: {}, timestampMs: 1 };
    await (source.handler as (b: MessageBatch) => Promise<void>)({ topic: 't', partition: 0, messages: [poison], highWatermark: 1 });
    assert.deepEqual(dlq.contexts, [{ consumerGroup: 'thaw-item-toy-ns1', namespace: 'ns1', adapter: 'toy' }]);
    await w.stop();
  });
});
