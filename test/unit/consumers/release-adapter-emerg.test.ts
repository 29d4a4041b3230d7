import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EmergAdapter } from '../../../adapters/emerg.js';
import { FrozenAdapter } from '../../../adapters/frozen.js';
import { createAdapterReleaseWatcher } from '../../../consumers/release-adapter.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { initBackend } from '../../../models/backend.js';
import { ColdNas } from '../../../models/coldnas.js';
import { Emerg } from '../../../models/emerg.js';
import { fieldLayoutOf, inferEventLayout } from '../../../models/event-layout.js';
import { bundleCtr, bundleFm, bundleUser } from '../../../models/onnx/bundle.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { streamEvents } from '../adapters/emerg-fixture.js';

await initBackend('cpu');

const events = streamEvents(300);
const itemLayout = inferEventLayout('item', events, { vocab: 1024, maxSlots: 3 });
const userLayout = inferEventLayout('user', events, { vocab: 1024, maxSlots: 3 });
const emerg = (seed: number): Emerg => new Emerg({ layout: fieldLayoutOf(itemLayout), vocab: itemLayout.vocab, dim: 4, layers: 2, genHidden: 8, seed });

async function publish(store: ReleaseStore, b: { architecture: unknown; files: Record<string, Buffer> }): Promise<string> {
  const m = await store.publish({ model: 'm', architecture: b.architecture, files: b.files });
  await store.promote('m', m.version);
  return m.version;
}

test('an emerg worker takes a new emerg release, refuses a coldnas or fm one and keeps the release in use', async () => {
  const root = await mkdtemp(join(tmpdir(), 'thaw-rel-emerg-'));
  try {
    const store = new ReleaseStore({ root });
    const v1 = await publish(store, bundleCtr(emerg(1), { eventLayout: itemLayout }));
    const refused: string[] = [];
    const watcher = await createAdapterReleaseWatcher({ store, model: 'm', adapter: 'emerg', side: 'item', pollIntervalMs: 60_000, onRefused: (e) => refused.push(e.message) });
    const first = await watcher.start();
    assert.ok(first.value.adapter instanceof EmergAdapter);
    assert.equal(first.value.adapter.release, `m/${v1}`);
    assert.equal(first.value.stateEpoch, undefined);

    const cn = new ColdNas({ layout: fieldLayoutOf(userLayout), vocab: userLayout.vocab, dim: 4, hidden: [8, 8, 4], contextDim: 8, structure: { ops: ['add', 'add', 'add', 'add'] } });
    const vc = await publish(store, bundleUser(cn, { eventLayout: userLayout }));
    await watcher.checkNow();
    assert.equal(watcher.take(), undefined);
    assert.equal(watcher.refusal(vc)?.code, 'RELEASE_INCOMPATIBLE');
    assert.match(refused.at(-1) ?? '', /is a coldnas model, this worker runs emerg/);
    assert.equal(watcher.current()?.version, v1);

    const vf = await publish(store, bundleFm(FactorizationMachine.create({ buckets: 64, k: 2, seed: 1 })));
    await watcher.checkNow();
    assert.equal(watcher.take(), undefined);
    assert.match(watcher.refusal(vf)?.message ?? '', /is a fm model, this worker runs emerg/);

    // A reinit emerg release is taken, under a new state epoch.
    const v2 = await publish(store, bundleCtr(emerg(2), { eventLayout: itemLayout, entityStatePolicy: 'reinit' }));
    await watcher.checkNow();
    const next = watcher.take();
    assert.equal(next?.version, v2);
    assert.ok(next.value.adapter instanceof EmergAdapter);
    assert.equal(next.value.stateEpoch, v2);
    await watcher.stop();

    // The none baseline over the same release type; an emerg release without an event layout cannot start a worker.
    const none = await createAdapterReleaseWatcher({ store, model: 'm', adapter: 'none', side: 'item' });
    assert.ok((await none.start()).value.adapter instanceof FrozenAdapter);
    await none.stop();
    await publish(store, bundleCtr(emerg(3)));
    await assert.rejects(
      createAdapterReleaseWatcher({ store, model: 'm', adapter: 'emerg', side: 'item' }),
      (e: unknown) => (e as { code?: string }).code === 'RELEASE_INCOMPATIBLE' && /eventLayout/.test((e as Error).message),
    );
    await assert.rejects(createAdapterReleaseWatcher({ store, model: 'm', adapter: 'fm-adagrad', side: 'item' }), (e: unknown) => (e as { code?: string }).code === 'RELEASE_INCOMPATIBLE');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
