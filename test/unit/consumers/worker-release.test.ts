import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { AdaptationWorker, type BatchSource } from '../../../consumers/worker.js';
import { parseWorkerMainOptions } from '../../../consumers/worker-main.js';
import { createAdapterReleaseWatcher, epochAdapterSegment, stateEpochOf, type ReleasedAdapter } from '../../../consumers/release-adapter.js';
import type { PredictionRow } from '../../../analytics/types.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { createLogger } from '../../../lib/log.js';
import type { ReleaseWatcher } from '../../../model-store/release-sync.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { fmStateSize } from '../../../models/fm-entity.js';
import { bundleFm, WEIGHTS_FILE, type EntityStatePolicy } from '../../../models/onnx/bundle.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import type { MessageBatch, RawMessage } from '../../../streams/message.js';
import { encodeLabelled } from '../../../streams/serde.js';
import { RecordingSink, SharingStore, toyEvents } from './fakes.js';

const NOW = 1_700_000_100_000;
const MODEL = 'fm';

/** Plays the BatchConsumer's contract for one partition: one handler call per batch, in order. */
class FakeSource implements BatchSource {
  handler: ((b: MessageBatch) => Promise<void>) | undefined;
  next = 0;
  start(handler: (b: MessageBatch) => Promise<void>): Promise<void> {
    this.handler = handler;
    return Promise.resolve();
  }
  /** Delivers the next `evs` as one batch (consecutive offsets). */
  deliver(evs: readonly LabelledEvent[]): Promise<void> {
    const messages: RawMessage[] = evs.map((e) => ({ topic: 't', partition: 0, offset: this.next++, key: null, value: encodeLabelled(e), headers: {}, timestampMs: NOW }));
    return (this.handler as (b: MessageBatch) => Promise<void>)({ topic: 't', partition: 0, messages, highWatermark: this.next });
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  lag(): Promise<number> {
    return Promise.resolve(0);
  }
}

/** A sink whose writes can be held open, to publish a release while a batch is in flight. */
class GatedSink extends RecordingSink {
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  entered: (() => void) | undefined;
  hold(): Promise<void> {
    this.gate = new Promise<void>((r) => (this.open = r));
    return new Promise<void>((r) => (this.entered = r));
  }
  release(): void {
    this.open?.();
    this.gate = undefined;
  }
  override async write(rows: readonly PredictionRow[]): Promise<void> {
    if (this.gate !== undefined) {
      this.entered?.();
      await this.gate;
    }
    return super.write(rows);
  }
}

function fm(seed: number, k = 3): FactorizationMachine {
  const m = FactorizationMachine.create({ buckets: 128, k, seed, initStd: 0.3 });
  m.w0 = seed / 10; // releases score differently, so a wrong release shows in the scores
  return m;
}

async function publish(store: ReleaseStore, model: FactorizationMachine, policy: EntityStatePolicy = 'keep', promote = true): Promise<string> {
  const parent = (await store.current(MODEL)) ?? null;
  const b = bundleFm(model, { entityStatePolicy: policy });
  const m = await store.publish({ model: MODEL, parent, architecture: b.architecture, files: b.files });
  if (promote) await store.promote(MODEL, m.version);
  return m.version;
}

function events(n: number, seed: number): LabelledEvent[] {
  return toyEvents(n, 6, seed).map((e, i) => ({ ...e, eventId: `s${seed}-${i}`, timeMs: NOW - 1_000_000 + i }));
}

describe('AdaptationWorker with a release watcher', () => {
  let root: string;
  let store: ReleaseStore;
  let watcher: ReleaseWatcher<ReleasedAdapter> | undefined;
  let lines: Record<string, unknown>[];
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'thaw-worker-release-'));
    store = new ReleaseStore({ root });
    lines = [];
  });
  afterEach(async () => {
    await watcher?.stop();
    watcher = undefined;
    await rm(root, { recursive: true, force: true });
  });

  async function setup(sink = new RecordingSink(), states = new SharingStore()) {
    const logger = createLogger('debug', {}, (l) => lines.push(JSON.parse(l) as Record<string, unknown>));
    // Polls far apart: the test triggers checks itself (checkNow stands for an announcement).
    watcher = await createAdapterReleaseWatcher({ store, model: MODEL, adapter: 'fm-adagrad', side: 'item', pollIntervalMs: 600_000, logger, now: () => NOW });
    await watcher.start();
    const source = new FakeSource();
    const worker = new AdaptationWorker({
      kafka: { brokers: ['127.0.0.1:1'] },
      side: 'item',
      releaseWatcher: watcher,
      store: states,
      sink,
      deadLetters: { sendMany: () => Promise.resolve() },
      source,
      clock: () => NOW,
      metricsPort: 0,
      logger,
    });
    await worker.start();
    return { worker, source, sink, states, watcher };
  }

  it('takes a release published mid-batch at the next batch boundary, with keep-states', async () => {
    const vA = await publish(store, fm(1));
    const sink = new GatedSink();
    const t = await setup(sink);
    assert.equal(t.worker.stats().release.version, vA);
    const evs = events(90, 1);
    await t.source.deliver(evs.slice(0, 30));

    // Batch 2 is in flight (held in the sink) when B is published, promoted and announced.
    const entered = sink.hold();
    const inFlight = t.source.deliver(evs.slice(30, 60));
    await entered;
    const vB = await publish(store, fm(2));
    await t.watcher.checkNow();
    assert.equal(t.worker.stats().release.version, vA, 'not switched inside a batch');
    sink.release();
    await inFlight;
    await t.source.deliver(evs.slice(60, 90));

    const rows = sink.rows;
    assert.equal(rows.length, 90);
    assert.deepEqual(
      rows.map((r) => r.eventId),
      evs.map((e) => e.eventId),
      'every event once, in order',
    );
    assert.ok(
      rows.slice(0, 60).every((r) => r.release === `${MODEL}/${vA}`),
      'rows up to the boundary carry the old release',
    );
    assert.ok(
      rows.slice(60).every((r) => r.release === `${MODEL}/${vB}`),
      'rows after it carry the new one',
    );
    assert.ok(
      rows.every((r) => r.namespace === 'live' && r.adapter === 'fm-adagrad'),
      'rows keep the namespace and adapter',
    );

    // keep: the same state keys continue, so per-entity counts add up over both releases.
    const counts = new Map<string, number>();
    for (const e of evs) counts.set(e.itemId, (counts.get(e.itemId) ?? 0) + 1);
    assert.equal([...t.states.data.keys()].filter((k) => k.startsWith('live:item:fm-adagrad:')).length, counts.size);
    // Beside them, the safeguard's state of the one partition.
    assert.deepEqual(
      [...t.states.data.keys()].filter((k) => !k.startsWith('live:item:fm-adagrad:')),
      ['live:item:fm-adagrad.sg:p0'],
    );
    for (const [id, n] of counts) assert.equal(t.states.data.get(`live:item:fm-adagrad:${id}`)?.count, n, id);
    const after = rows.slice(60);
    assert.ok(
      after.some((r) => r.priorCount > 0),
      'states carried over into the new release',
    );

    const s = t.worker.stats().release;
    assert.deepEqual([s.id, s.version, s.switches], [`${MODEL}/${vB}`, vB, 1]);
    const created = (await store.list(MODEL)).find((m) => m.version === vB)?.createdAtMs as number;
    assert.equal(s.createdAtMs, created);
    assert.equal(s.ageMs, NOW - created);
    const text = await t.worker.metrics.text();
    assert.match(text, new RegExp(`thaw_release_info\\{release="${MODEL}/${vB}"[^}]*\\} 1`));
    assert.doesNotMatch(text, new RegExp(`release="${MODEL}/${vA}"`));
    assert.match(text, new RegExp(`thaw_release_age_seconds\\{[^}]*\\} ${(NOW - created) / 1000}`));
    assert.ok(
      lines.some((l) => l.msg === 'release taken' && l.version === vB && l.entityStates === 'keep'),
      'switch logged',
    );
    await t.worker.drain();
  });

  it('refuses a corrupt and an incompatible release, logs why, and keeps serving the old one', async () => {
    const vA = await publish(store, fm(1));
    const t = await setup();
    const evs = events(60, 2);
    await t.source.deliver(evs.slice(0, 20));

    const vC = await publish(store, fm(3));
    await writeFile(join(root, MODEL, vC, WEIGHTS_FILE), Buffer.from('not the weights')); // corrupted after promotion
    await t.watcher.checkNow();
    await t.source.deliver(evs.slice(20, 30));
    const vD = await publish(store, fm(4, 5)); // k = 5: other state size, but declares keep
    await t.watcher.checkNow();
    await t.source.deliver(evs.slice(30, 40));

    assert.ok(
      t.sink.rows.every((r) => r.release === `${MODEL}/${vA}`),
      'old release kept',
    );
    assert.equal(t.worker.stats().release.version, vA);
    assert.equal(t.worker.stats().release.switches, 0);
    assert.equal(t.worker.state, 'RUNNING');
    const refused = lines.filter((l) => l.msg === 'release refused; keeping the release in use');
    assert.deepEqual(
      refused.map((l) => [l.version, l.code, l.inUse]),
      [
        [vC, 'RELEASE_CORRUPT', vA],
        [vD, 'RELEASE_INCOMPATIBLE', vA],
      ],
    );
    assert.equal(refused[0]?.level, 'error');
    assert.match(String(refused[0]?.error), /checksum/);
    assert.match(String(refused[1]?.error), /keeps entity states but builds 16 floats per state, the states in use have 12/);

    // A good release afterwards is still taken: refusals do not wedge the watcher.
    const vE = await publish(store, fm(5));
    await t.watcher.checkNow();
    await t.source.deliver(evs.slice(40, 60));
    assert.ok(
      t.sink.rows.slice(40).every((r) => r.release === `${MODEL}/${vE}`),
      'good release taken after refusals',
    );
    assert.equal(t.sink.rows.length, 60);
    await t.worker.drain();
  });

  it('reinit: the new release starts entities afresh in its own state epoch; rollback resumes the old states', async () => {
    const vA = await publish(store, fm(1));
    const t = await setup();
    const evs = events(90, 3);
    await t.source.deliver(evs.slice(0, 30));
    const before = t.states.snapshot();

    // Same state size: the watcher checks a keep release (A, on rollback) against the layout in use.
    const vB = await publish(store, fm(2), 'reinit');
    await t.watcher.checkNow();
    await t.source.deliver(evs.slice(30, 60));
    const rowsB = t.sink.rows.slice(30, 60);
    assert.ok(
      rowsB.every((r) => r.release === `${MODEL}/${vB}` && r.namespace === 'live'),
      'analytics namespace unchanged',
    );
    // Each entity's first event under B is scored with a fresh state.
    const firstSeen = new Set<string>();
    for (const r of rowsB) {
      if (!firstSeen.has(r.entityId)) assert.equal(r.priorCount, 0, r.entityId);
      firstSeen.add(r.entityId);
    }
    const seg = epochAdapterSegment('fm-adagrad', vB);
    assert.equal(seg, `fm-adagrad.r${vB}`);
    const bKeys = [...t.states.data.keys()].filter((k) => k.startsWith(`live:item:${seg}:`));
    assert.equal(bKeys.length, firstSeen.size);
    assert.ok(
      [...t.states.data.entries()].filter(([k]) => bKeys.includes(k)).every(([, s]) => s.params.length === fmStateSize(3) && s.count > 0),
      'new-epoch states',
    );
    for (const [k, s] of before) assert.deepEqual(t.states.snapshot().get(k), s, `old epoch state ${k} untouched`);

    // Rollback to A: A's epoch is the base one, so A's states continue where A left them.
    assert.equal(await store.rollback(MODEL), vA);
    await t.watcher.checkNow();
    await t.source.deliver(evs.slice(60, 90));
    const rowsA2 = t.sink.rows.slice(60);
    assert.ok(
      rowsA2.every((r) => r.release === `${MODEL}/${vA}`),
      'rolled back to A',
    );
    const countA = new Map<string, number>();
    for (const e of evs.slice(0, 30)) countA.set(e.itemId, (countA.get(e.itemId) ?? 0) + 1);
    const seen = new Set<string>();
    for (const r of rowsA2) {
      if (!seen.has(r.entityId)) assert.equal(r.priorCount, countA.get(r.entityId) ?? 0, r.entityId);
      seen.add(r.entityId);
    }
    assert.equal(t.worker.stats().release.switches, 2);
    assert.ok(
      lines.some((l) => l.msg === 'release taken' && l.version === vB && l.entityStates === 'reinit' && l.stateEpoch === vB),
      'reinit switch logged',
    );
    await t.worker.drain();
  });

  it('reinit may change the state size: the new epoch holds states of the new size', async () => {
    await publish(store, fm(1));
    const t = await setup();
    const evs = events(40, 4);
    await t.source.deliver(evs.slice(0, 20));
    const vB = await publish(store, fm(2, 5), 'reinit');
    await t.watcher.checkNow();
    await t.source.deliver(evs.slice(20, 40));
    assert.ok(
      t.sink.rows.slice(20).every((r) => r.release === `${MODEL}/${vB}`),
      'B taken',
    );
    const seg = `live:item:${epochAdapterSegment('fm-adagrad', vB)}:`;
    const fresh = [...t.states.data.entries()].filter(([k]) => k.startsWith(seg));
    assert.ok(fresh.length > 0 && fresh.every(([, st]) => st.params.length === fmStateSize(5)), 'new-size states in the new epoch');
    // Old entity states untouched (the safeguards of the two epochs hold their own layout).
    assert.ok(
      [...t.states.data.entries()].filter(([k]) => !k.startsWith(seg) && !k.includes('.sg')).every(([, st]) => st.params.length === fmStateSize(3)),
      'old states untouched',
    );
    await t.worker.drain();
  });

  it('derives the state epoch from the lineage: keep children inherit their reinit ancestor', async () => {
    const vA = await publish(store, fm(1));
    const vB = await publish(store, fm(2), 'reinit');
    const vC = await publish(store, fm(3), 'keep');
    const byVersion = new Map((await store.list(MODEL)).map((m) => [m.version, m]));
    assert.equal(await stateEpochOf(store, byVersion.get(vA)!), undefined);
    assert.equal(await stateEpochOf(store, byVersion.get(vB)!), vB);
    assert.equal(await stateEpochOf(store, byVersion.get(vC)!), vB);
    assert.match(epochAdapterSegment('fm-adagrad', 'x'.repeat(100)), /^fm-adagrad\.h[0-9a-f]{16}$/);
  });

  it('checks its options: a watcher must be started, and an explicit adapter must be the active one', async () => {
    await publish(store, fm(1));
    const w = await createAdapterReleaseWatcher({ store, model: MODEL, adapter: 'fm-adagrad', side: 'item' });
    watcher = w;
    const base = {
      kafka: { brokers: ['127.0.0.1:1'] },
      side: 'item' as const,
      store: new SharingStore(),
      sink: new RecordingSink(),
      deadLetters: { sendMany: () => Promise.resolve() },
      source: new FakeSource(),
      metricsPort: 0,
    };
    assert.throws(
      () => new AdaptationWorker({ ...base, releaseWatcher: w }),
      (e: unknown) => e instanceof ConfigError && e.key === 'releaseWatcher',
    );
    await w.start();
    const other = await createAdapterReleaseWatcher({ store, model: MODEL, adapter: 'fm-adagrad', side: 'item' });
    const otherAdapter = (await other.start()).value.adapter;
    await other.stop();
    assert.throws(
      () => new AdaptationWorker({ ...base, releaseWatcher: w, adapter: otherAdapter }),
      (e: unknown) => e instanceof ConfigError && e.key === 'adapter',
    );
    assert.throws(
      () => new AdaptationWorker({ ...base }),
      (e: unknown) => e instanceof ConfigError && e.key === 'adapter',
    );
    await assert.rejects(createAdapterReleaseWatcher({ store, model: 'nothing', adapter: 'fm-adagrad', side: 'item' }), (e: unknown) => e instanceof ThawError && e.code === 'RELEASE_NOT_FOUND');
    await assert.rejects(createAdapterReleaseWatcher({ store, model: MODEL, adapter: 'emerg', side: 'item' }), (e: unknown) => e instanceof ThawError && e.code === 'RELEASE_INCOMPATIBLE');
  });
});

describe('worker-main release options', () => {
  const base = {
    kafka: { brokers: ['127.0.0.1:19092'] },
    redis: { url: 'redis://127.0.0.1:16379' },
    clickhouse: { url: 'http://127.0.0.1:18123', spoolDir: '/tmp/spool' },
    side: 'item',
  };
  it('runs from a release directory with defaults, announcements optional', () => {
    const o = parseWorkerMainOptions(JSON.stringify({ ...base, releaseDir: '/r' }), {});
    assert.deepEqual([o.releaseDir, o.releaseModel, o.releasePollMs, o.releaseTopic, o.releaseRedisPrefix, o.model], ['/r', 'fm', 60_000, undefined, undefined, undefined]);
    const p = parseWorkerMainOptions(JSON.stringify({ ...base, releaseDir: '/r', releaseModel: 'fm-item', releasePollMs: 500, releaseTopic: 'thaw.releases', releaseRedisPrefix: 'thaw' }), {});
    assert.deepEqual([p.releaseModel, p.releasePollMs, p.releaseTopic, p.releaseRedisPrefix], ['fm-item', 500, 'thaw.releases', 'thaw']);
  });
  it('needs exactly one of model and releaseDir, and a releaseDir for announcements', () => {
    const bad = (o: object, key: string): void =>
      assert.throws(
        () => parseWorkerMainOptions(JSON.stringify({ ...base, ...o }), {}),
        (e: unknown) => e instanceof ConfigError && e.key === key,
        key,
      );
    bad({}, 'model');
    bad({ releaseDir: '/r', model: { buckets: 8, k: 2 } }, 'model');
    bad({ model: { buckets: 8, k: 2 }, releaseTopic: 't' }, 'releaseDir');
    bad({ releaseDir: '/r', releasePollMs: 5 }, 'releasePollMs');
    bad({ releaseDir: '/r', releaseModel: '../x' }, 'releaseModel');
  });
});
