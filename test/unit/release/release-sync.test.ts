/**
 * ReleaseWatcher against a real release directory (no Kafka/Redis: polls and checkNow): switching,
 * refusing corrupt and incompatible releases while keeping the old one, reinit policy, and rollback
 * restoring the previous release's predictions exactly (TS forward and the release's model.onnx).
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createAdapter } from '../../../adapters/registry.js';
import type { Adapter } from '../../../adapters/types.js';
import { ThawError } from '../../../lib/errors.js';
import { fmStateSize } from '../../../models/fm-entity.js';
import { fmFromRelease } from '../../../models/onnx/bundle.js';
import { sigmoid, type FactorizationMachine } from '../../../models/fm.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { ReleaseWatcher } from '../../../model-store/release-sync.js';
import { OnnxRunner, padRows } from '../../../serving/onnx-runner.js';
import { cli, fmFile, publishedVersion, tempDir } from './helpers.js';

interface Built {
  fm: FactorizationMachine;
  onnx: Buffer;
}

const K = 4;
const ROWS = [Int32Array.of(1, 5, 9), Int32Array.of(2, 200), Int32Array.of(17, 18, 19, 20), Int32Array.of(255)];
const W = K + 2;
const USERS = Float32Array.from({ length: ROWS.length * W }, (_, i) => Math.cos(i) * 0.3);
const ITEMS = Float32Array.from({ length: ROWS.length * W }, (_, i) => Math.sin(i) * 0.2);

function scoreTs(fm: FactorizationMachine): Float32Array {
  return Float32Array.from(ROWS, (r, i) => sigmoid(fm.logit(r, r.length, r.length, USERS.subarray(i * W, (i + 1) * W), ITEMS.subarray(i * W, (i + 1) * W))));
}

async function scoreOnnx(onnx: Buffer): Promise<Float32Array> {
  const runner = await OnnxRunner.load(onnx);
  try {
    return await runner.scoreFm(padRows(ROWS), USERS, ITEMS);
  } finally {
    await runner.close();
  }
}

describe('ReleaseWatcher', () => {
  let dir: string;
  let root: string;
  let cleanup: () => Promise<void>;
  let store: ReleaseStore;
  const watchers: ReleaseWatcher<Built>[] = [];
  const stops: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    root = join(dir, 'releases');
    store = new ReleaseStore({ root });
  });
  afterEach(async () => {
    for (const w of watchers.splice(0)) await w.stop();
    for (const s of stops.splice(0)) await s();
    await cleanup();
  });

  async function publish(seed: number, extra: string[] = [], k = K): Promise<string> {
    const r = await cli(['publish', '--release-dir', root, '--model', 'fm', '--from', (await fmFile(dir, seed, { k })).path, ...extra]);
    assert.equal(r.code, 0, r.err);
    return publishedVersion(r.out);
  }

  function watcher(pollIntervalMs = 60_000, refusals: string[] = []): ReleaseWatcher<Built> {
    const w = new ReleaseWatcher<Built>({
      store,
      model: 'fm',
      expect: { type: 'fm', stateLayout: { adapter: 'fm-adagrad', stateSize: fmStateSize(K) } },
      build: (rel) => ({ fm: fmFromRelease(rel), onnx: rel.files['model.onnx']! }),
      pollIntervalMs,
      onRefused: (e) => refusals.push(e.code),
    });
    watchers.push(w);
    return w;
  }

  it('start fails without a current release', async () => {
    await assert.rejects(watcher().start(), (e: unknown) => e instanceof ThawError && e.code === 'RELEASE_NOT_FOUND');
  });

  it('rollback restores the previous release predictions exactly (TS and ONNX)', async () => {
    const v1 = await publish(1);
    const w = watcher();
    const first = await w.start();
    assert.equal(first.version, v1);
    const ts1 = scoreTs(first.value.fm);
    const ox1 = await scoreOnnx(first.value.onnx);
    assert.equal(w.take(), undefined);

    const v2 = await publish(2);
    await w.checkNow();
    const second = w.take();
    assert.equal(second?.version, v2);
    assert.equal(w.current()?.version, v2);
    const ts2 = scoreTs(second.value.fm);
    assert.notDeepEqual(ts2, ts1);
    assert.notDeepEqual(await scoreOnnx(second.value.onnx), ox1);

    assert.equal((await cli(['rollback', '--release-dir', root, '--model', 'fm'])).code, 0);
    await w.checkNow();
    const back = w.take();
    assert.equal(back?.version, v1);
    assert.deepEqual(scoreTs(back.value.fm), ts1);
    assert.deepEqual(await scoreOnnx(back.value.onnx), ox1);
    assert.equal(w.take(), undefined, 'a release is handed out once');
  });

  it('refuses a release whose weights have a flipped byte and keeps the old one', async () => {
    const v1 = await publish(1);
    const refusals: string[] = [];
    const w = watcher(60_000, refusals);
    await w.start();
    const v2 = await publish(2);
    const file = join(root, 'fm', v2, 'weights.bin');
    const bytes = await readFile(file);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0x01;
    await writeFile(file, bytes);
    await w.checkNow();
    assert.equal(w.take(), undefined);
    assert.equal(w.current()?.version, v1);
    assert.deepEqual(refusals, ['RELEASE_CORRUPT']);
    assert.equal(w.refusal(v2)?.code, 'RELEASE_CORRUPT');
    await w.checkNow(); // refused once, not re-read on every poll
    assert.deepEqual(refusals, ['RELEASE_CORRUPT']);
    // A good release after it is picked up.
    const v3 = await publish(3);
    await w.checkNow();
    assert.equal(w.take()?.version, v3);
  });

  it('refuses incompatible releases (state layout, adapter) and keeps the old one; accepts a declared reinit', async () => {
    const v1 = await publish(1);
    const refusals: string[] = [];
    const w = watcher(60_000, refusals);
    await w.start();
    // k=6 changes the state size, but the release claims entity states stay valid.
    const bad = await publish(2, [], 6);
    await w.checkNow();
    assert.equal(w.take(), undefined);
    assert.equal(w.current()?.version, v1);
    assert.match(w.refusal(bad)?.message ?? '', /keeps entity states but declares 18 floats.*have 14/);
    const other = await publish(3, ['--adapter', 'emerg', '--state-size', String(fmStateSize(K))]);
    await w.checkNow();
    assert.equal(w.take(), undefined);
    assert.match(w.refusal(other)?.message ?? '', /adapter emerg/);
    assert.deepEqual(refusals, ['RELEASE_INCOMPATIBLE', 'RELEASE_INCOMPATIBLE']);
    assert.equal(w.current()?.version, v1);

    const reinit = await publish(4, ['--entity-state-policy', 'reinit'], 6);
    await w.checkNow();
    const r = w.take();
    assert.equal(r?.version, reinit);
    assert.equal(r?.reinitStates, true);
    assert.equal(r?.architecture.stateLayout.stateSize, fmStateSize(6));
  });

  it('polls the directory every pollIntervalMs and reports the age of the release in use', async () => {
    await publish(1);
    const ready: string[] = [];
    const w = new ReleaseWatcher<Built>({
      store,
      model: 'fm',
      expect: { stateLayout: { adapter: 'fm-adagrad', stateSize: fmStateSize(K) } },
      build: (rel) => ({ fm: fmFromRelease(rel), onnx: rel.files['model.onnx']! }),
      pollIntervalMs: 50,
      onRelease: (r) => ready.push(r.version),
    });
    watchers.push(w);
    const first = await w.start();
    const st = w.current()!;
    assert.equal(st.createdAtMs, first.manifest.createdAtMs);
    assert.ok(st.ageMs >= 0 && st.ageMs < 60_000);
    const v2 = await publish(2);
    for (let i = 0; i < 100 && ready.length === 0; i++) await sleep(20);
    assert.deepEqual(ready, [v2]);
    assert.equal(w.take()?.version, v2);
  });

  it('with layoutOf, checks the adapter the worker builds (real adapters): none accepted, a layout mismatch refused', async () => {
    const v1 = await publish(1);
    const w = new ReleaseWatcher<Adapter>({
      store,
      model: 'fm',
      expect: { type: 'fm', stateLayout: { adapter: 'none', stateSize: 0 } },
      build: (rel) => createAdapter('none', 'item', fmFromRelease(rel)),
      layoutOf: (a) => ({ adapter: a.name, stateSize: a.stateSize }),
    });
    stops.push(() => w.stop());
    assert.equal((await w.start()).value.release, `fm/${v1}`);
    const side = new ReleaseWatcher<Adapter>({
      store,
      model: 'fm',
      expect: { stateLayout: { adapter: 'fm-adagrad', stateSize: fmStateSize(K) + 1 } },
      // The adapter the release builds holds fmStateSize(K) floats, not the layout the worker's states have.
      build: (rel) => createAdapter('fm-adagrad', 'user', fmFromRelease(rel)),
      layoutOf: (a) => ({ adapter: a.name, stateSize: a.stateSize }),
    });
    stops.push(() => side.stop());
    await assert.rejects(side.start(), (e: unknown) => e instanceof ThawError && e.code === 'RELEASE_INCOMPATIBLE');
    // A running worker keeps its release when the next one builds a different state size.
    const k6 = await publish(2, [], 6);
    const ok = new ReleaseWatcher<Adapter>({
      store,
      model: 'fm',
      expect: { stateLayout: { adapter: 'fm-adagrad', stateSize: fmStateSize(6) } },
      build: (rel) => createAdapter('fm-adagrad', 'item', fmFromRelease(rel)),
      layoutOf: (a) => ({ adapter: a.name, stateSize: a.stateSize }),
    });
    stops.push(() => ok.stop());
    assert.equal((await ok.start()).version, k6);
    assert.equal((await cli(['rollback', '--release-dir', root, '--model', 'fm'])).code, 0);
    await ok.checkNow();
    assert.equal(ok.take(), undefined);
    assert.match(ok.refusal(v1)?.message ?? '', /builds 14 floats per state, the states in use have 18/);
  });

  it('rejects bad options with ConfigError', () => {
    assert.throws(
      () => watcher(0),
      (e: unknown) => e instanceof ThawError && e.code === 'CONFIG_INVALID',
    );
  });
});
