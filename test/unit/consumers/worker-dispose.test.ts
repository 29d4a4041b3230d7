/**
 * Adapters replaced by a release are disposed (their frozen model's kept tensors released) once no
 * micro-batch runs on them any more; a release superseded before it was taken is discarded.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { Adapter, AdapterBatch } from '../../../adapters/types.js';
import type { PredictionRow } from '../../../analytics/types.js';
import { createAdapterReleaseWatcher, type ReleasedAdapter } from '../../../consumers/release-adapter.js';
import { AdaptationWorker, type AdapterReleaseSource, type BatchSource } from '../../../consumers/worker.js';
import type { ActiveRelease, ReleaseStatus } from '../../../model-store/release-sync.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { initBackend } from '../../../models/backend.js';
import { Emerg } from '../../../models/emerg.js';
import { fieldLayoutOf, inferEventLayout } from '../../../models/event-layout.js';
import { bundleCtr } from '../../../models/onnx/bundle.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import type { MessageBatch, RawMessage } from '../../../streams/message.js';
import { encodeLabelled } from '../../../streams/serde.js';
import { streamEvents } from '../adapters/emerg-fixture.js';
import { RecordingSink, SharingStore, toyEvents, ToyAdapter } from './fakes.js';

await initBackend('wasm');
const NOW = 1_700_000_100_000;

/** Plays the BatchConsumer for several partitions: one handler call per delivered batch. */
class FakeSource implements BatchSource {
  handler: ((b: MessageBatch) => Promise<void>) | undefined;
  private readonly next = new Map<number, number>();
  start(handler: (b: MessageBatch) => Promise<void>): Promise<void> {
    this.handler = handler;
    return Promise.resolve();
  }
  deliver(partition: number, evs: readonly LabelledEvent[]): Promise<void> {
    // Offsets far apart per partition: the shared toy states dedup by offset.
    let off = this.next.get(partition) ?? partition * 1000;
    const messages: RawMessage[] = evs.map((e) => ({ topic: 't', partition, offset: off++, key: null, value: encodeLabelled(e), headers: {}, timestampMs: NOW }));
    this.next.set(partition, off);
    return (this.handler as (b: MessageBatch) => Promise<void>)({ topic: 't', partition, messages, highWatermark: off });
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  lag(): Promise<number> {
    return Promise.resolve(0);
  }
}

/** A sink whose next write can be held open (a batch in flight). */
class GatedSink extends RecordingSink {
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  private entered: (() => void) | undefined;
  hold(): Promise<void> {
    this.gate = new Promise<void>((r) => (this.open = r));
    return new Promise<void>((r) => (this.entered = r));
  }
  release(): void {
    this.open?.();
    this.gate = undefined;
  }
  override async write(rows: readonly PredictionRow[]): Promise<void> {
    const g = this.gate;
    if (g !== undefined) {
      this.gate = undefined;
      this.entered?.();
      await g;
    }
    return super.write(rows);
  }
}

/** A toy adapter with its own release id that counts dispose() calls. */
class CountingAdapter implements Adapter {
  readonly name = 'toy';
  readonly side = 'item' as const;
  readonly stateSize: number;
  readonly viewSize = 0;
  readonly hasBaseline = false;
  disposed = 0;
  private readonly toy = new ToyAdapter('item');
  constructor(readonly release: string) {
    this.stateSize = this.toy.stateSize;
  }
  initialState(e: LabelledEvent): Float32Array {
    return this.toy.initialState(e);
  }
  predict(b: AdapterBatch): Float32Array {
    return this.toy.predict(b);
  }
  predictThenAdapt(b: AdapterBatch): Float32Array {
    return this.toy.predictThenAdapt(b);
  }
  dispose(): void {
    this.disposed++;
  }
}

/** A release source handing out prepared releases (what ReleaseWatcher.take does). */
class FakeReleases implements AdapterReleaseSource {
  active: ActiveRelease<ReleasedAdapter>;
  pending: ActiveRelease<ReleasedAdapter> | undefined;
  constructor(a: CountingAdapter) {
    this.active = FakeReleases.rel(a);
  }
  static rel(a: CountingAdapter): ActiveRelease<ReleasedAdapter> {
    return {
      model: 'toy',
      version: a.release,
      createdAtMs: NOW,
      loadedAtMs: NOW,
      manifest: {} as never,
      architecture: {} as never,
      value: { adapter: a, stateEpoch: undefined, crossEpoch: undefined },
      reinitStates: false,
    };
  }
  activeRelease(): ActiveRelease<ReleasedAdapter> {
    return this.active;
  }
  take(): ActiveRelease<ReleasedAdapter> | undefined {
    const p = this.pending;
    this.pending = undefined;
    if (p !== undefined) this.active = p;
    return p;
  }
  current(): ReleaseStatus {
    return { version: this.active.version, createdAtMs: NOW, loadedAtMs: NOW, ageMs: 0 };
  }
}

function worker(source: BatchSource, releases: AdapterReleaseSource, sink: RecordingSink): AdaptationWorker {
  return new AdaptationWorker({
    kafka: { brokers: ['127.0.0.1:1'] },
    side: 'item',
    releaseWatcher: releases,
    store: new SharingStore(),
    sink,
    deadLetters: { sendMany: () => Promise.resolve() },
    source,
    clock: () => NOW,
    metricsPort: 0,
  });
}

test('a replaced adapter is disposed only after the batches still running on it finish', async () => {
  const a = new CountingAdapter('a');
  const b = new CountingAdapter('b');
  const c = new CountingAdapter('c');
  const releases = new FakeReleases(a);
  const source = new FakeSource();
  const sink = new GatedSink();
  const w = worker(source, releases, sink);
  await w.start();
  const evs = toyEvents(60, 5).map((e, i) => ({ ...e, eventId: `e${i}`, timeMs: NOW - 1000 + i }));
  await source.deliver(0, evs.slice(0, 10));

  // Partition 0's batch runs on A and is held in the sink while partition 1 takes release B.
  const entered = sink.hold();
  const inFlight = source.deliver(0, evs.slice(10, 20));
  await entered;
  releases.pending = FakeReleases.rel(b);
  await source.deliver(1, evs.slice(20, 30));
  assert.equal(w.adapter, b);
  assert.equal(a.disposed, 0, 'A still runs a batch: not disposed yet');
  sink.release();
  await inFlight;
  assert.equal(a.disposed, 1, 'disposed once its last batch finished');

  // No batch in flight: C replaces B and B goes at once; the adapter in use is never disposed.
  releases.pending = FakeReleases.rel(c);
  await source.deliver(0, evs.slice(30, 40));
  assert.deepEqual([a.disposed, b.disposed, c.disposed], [1, 1, 0]);
  assert.deepEqual(new Set(sink.rows.map((r) => r.release)), new Set(['a', 'b', 'c']));
  await w.drain();
});

test('emerg releases: the tensor count does not grow across release swaps, nor for a release superseded before it was taken', async () => {
  const root = await mkdtemp(join(tmpdir(), 'thaw-worker-dispose-'));
  try {
    const events = streamEvents(300);
    const layout = inferEventLayout('item', events, { vocab: 1024, maxSlots: 3 });
    const store = new ReleaseStore({ root });
    const publish = async (seed: number): Promise<void> => {
      const model = new Emerg({ layout: fieldLayoutOf(layout), vocab: layout.vocab, dim: 4, layers: 2, genHidden: 8, seed });
      const b = bundleCtr(model, { eventLayout: layout });
      const m = await store.publish({ model: 'm', architecture: b.architecture, files: b.files });
      await store.promote('m', m.version);
    };
    await publish(1);
    const base = tf.memory().numTensors;
    const watcher = await createAdapterReleaseWatcher({ store, model: 'm', adapter: 'emerg', side: 'item', pollIntervalMs: 600_000 });
    await watcher.start();
    const source = new FakeSource();
    const sink = new RecordingSink();
    const w = worker(source, watcher, sink);
    await w.start();
    const evs = events.map((e, i) => ({ ...e, eventId: `e${i}`, timeMs: NOW - 10_000 + i }));
    await source.deliver(0, evs.slice(0, 40));
    const running = tf.memory().numTensors;
    assert.ok(running > base, 'the frozen release keeps its weight tensors');
    for (let k = 0; k < 3; k++) {
      await publish(10 + k);
      await watcher.checkNow();
      await source.deliver(0, evs.slice(40 + 40 * k, 80 + 40 * k));
      assert.equal(tf.memory().numTensors, running, `after swap ${k + 1}`);
    }
    // Two releases ready before the next batch: the first is never taken (discarded by the watcher;
    // its weight tensors are created lazily, so a release that never ran holds none anyway).
    await publish(20);
    await watcher.checkNow();
    await publish(21);
    await watcher.checkNow();
    await source.deliver(0, evs.slice(200, 240));
    assert.equal(tf.memory().numTensors, running, 'after the jump to the latest release');
    assert.equal(w.stats().release.switches, 4);
    await w.drain();
    await watcher.stop();
    w.adapter.dispose?.();
    assert.equal(tf.memory().numTensors, base);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
