import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ColdNasAdapter } from '../../../adapters/coldnas.js';
import { EmergAdapter } from '../../../adapters/emerg.js';
import { FixedAdaptiveAdapter } from '../../../adapters/fixed-adaptive.js';
import { FmAdagradAdapter } from '../../../adapters/fm-adagrad.js';
import { FrozenAdapter } from '../../../adapters/frozen.js';
import { NoneAdapter } from '../../../adapters/none.js';
import { ADAPTER_NAMES, createAdapter, createAdapterFromRelease } from '../../../adapters/registry.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { initBackend } from '../../../models/backend.js';
import { ColdNas } from '../../../models/coldnas.js';
import { fieldLayoutOf, inferEventLayout } from '../../../models/event-layout.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { FixedAdaptive } from '../../../models/fixed-adaptive.js';
import { bundleFm, bundleUser } from '../../../models/onnx/bundle.js';
import { emergFixture, emergRelease, loadedRelease } from './emerg-fixture.js';

await initBackend('cpu');

const { model, layout, events } = emergFixture();
const incompatible = (e: unknown): boolean => e instanceof ThawError && e.code === 'RELEASE_INCOMPATIBLE';

test('ADAPTER_NAMES lists every adapter', () => {
  assert.deepEqual([...ADAPTER_NAMES], ['none', 'fm-adagrad', 'emerg', 'coldnas', 'fixed-adaptive']);
});

test('fm releases: none and fm-adagrad; meta-learned adapter names are refused', () => {
  const fm = FactorizationMachine.create({ buckets: 256, k: 4, seed: 1 });
  const rel = loadedRelease(bundleFm(fm), 'fm', 'v3');
  const ada = createAdapterFromRelease('fm-adagrad', 'item', rel, { 'fm-adagrad': { learningRate: 0.05 } });
  assert.ok(ada instanceof FmAdagradAdapter);
  assert.equal(ada.release, 'fm/v3');
  assert.ok(createAdapterFromRelease('none', 'item', rel) instanceof NoneAdapter);
  assert.throws(
    () => createAdapterFromRelease('emerg', 'item', rel),
    (e: unknown) => incompatible(e) && /fm release.*emerg.*none or fm-adagrad/.test((e as Error).message),
  );
  // Two-sided: the same release runs the user worker too.
  assert.equal(createAdapterFromRelease('fm-adagrad', 'user', rel).side, 'user');
  assert.throws(
    () => createAdapterFromRelease('fm-adagrad', 'item', rel, { 'fm-adagrad': { learningRate: -1 } }),
    (e: unknown) => e instanceof ConfigError && e.key === 'fm-adagrad.learningRate',
  );
  // The FM-in-hand form stays, and says where the meta-learned names run.
  assert.ok(createAdapter('fm-adagrad', 'item', fm) instanceof FmAdagradAdapter);
  assert.throws(
    () => createAdapter('emerg', 'item', fm),
    (e: unknown) => e instanceof ConfigError && e.key === 'adapter' && /emerg releases/.test((e as Error).message),
  );
});

test('emerg releases: emerg and its frozen none baseline over the same model', () => {
  const rel = emergRelease(model, layout);
  const ad = createAdapterFromRelease('emerg', 'item', rel, { emerg: { learningRate: 0.2 } });
  assert.ok(ad instanceof EmergAdapter);
  assert.equal(ad.options.learningRate, 0.2);
  assert.equal(ad.release, 'emerg/v1');
  const none = createAdapterFromRelease('none', 'item', rel);
  assert.ok(none instanceof FrozenAdapter);
  assert.equal(none.stateSize, ad.stateSize);
  const ev = events.slice(0, 4);
  const st = ad.initialStates(ev);
  assert.deepEqual(none.predict({ events: ev, states: st }), ad.predict({ events: ev, states: st }));
  assert.throws(() => createAdapterFromRelease('fm-adagrad', 'item', rel), incompatible);
  assert.throws(() => createAdapterFromRelease('coldnas', 'item', rel), incompatible);
  assert.throws(
    () => createAdapterFromRelease('emerg', 'user', rel),
    (e: unknown) => incompatible(e) && /adapts item entities/.test((e as Error).message),
  );
  assert.throws(
    () => createAdapterFromRelease('emerg', 'item', emergRelease(model, undefined)),
    (e: unknown) => incompatible(e) && /eventLayout/.test((e as Error).message),
  );
  assert.throws(
    () => createAdapterFromRelease('emerg', 'item', rel, { emerg: { l2: -1 } }),
    (e: unknown) => e instanceof ConfigError && e.key === 'emerg.l2',
  );
  // The release's bias filter prior reaches the adapter; options override it; none recorded = biases frozen.
  const prior = { user: { variance: 0.4, drift: 0.01 }, item: { variance: 0.7, drift: 0.02 } };
  const withPrior = createAdapterFromRelease('emerg', 'item', emergRelease(model, layout, { biasFilter: prior }), { emerg: { biasDrift: 0.5, crossSide: 'off' } }) as EmergAdapter;
  assert.deepEqual([withPrior.bias.variance, withPrior.bias.drift, withPrior.bias.otherVariance, withPrior.bias.crossSide], [0.7, 0.5, 0.4, 'off']);
  assert.deepEqual([ad.bias.variance, ad.bias.drift, ad.bias.otherVariance, ad.bias.crossSide], [0, 0, 0, 'bias']);
  assert.throws(
    () => createAdapterFromRelease('vw', 'item', rel),
    (e: unknown) => e instanceof ConfigError && e.key === 'adapter',
  );
});

test('coldnas and fixed-adaptive releases: their adapter or none, user side only', () => {
  const userLayout = inferEventLayout('user', events, { vocab: 1024, maxSlots: 3 });
  const fl = fieldLayoutOf(userLayout);
  const cn = new ColdNas({ layout: fl, vocab: userLayout.vocab, dim: 4, hidden: [8, 8, 4], contextDim: 8, structure: { ops: ['add', 'multiply', 'max', 'min'] } });
  const cnRel = loadedRelease(bundleUser(cn, { eventLayout: userLayout }), 'coldnas', 'v1');
  assert.ok(createAdapterFromRelease('coldnas', 'user', cnRel) instanceof ColdNasAdapter);
  const cnNone = createAdapterFromRelease('none', 'user', cnRel);
  assert.ok(cnNone instanceof FrozenAdapter && cnNone.inner instanceof ColdNasAdapter);
  assert.throws(() => createAdapterFromRelease('coldnas', 'item', cnRel), incompatible);
  assert.throws(() => createAdapterFromRelease('emerg', 'user', cnRel), incompatible);
  const fa = new FixedAdaptive({ layout: fl, vocab: userLayout.vocab, dim: 4, hidden: [8] });
  const faRel = loadedRelease(bundleUser(fa, { eventLayout: userLayout }), 'fa', 'v1');
  assert.ok(createAdapterFromRelease('fixed-adaptive', 'user', faRel) instanceof FixedAdaptiveAdapter);
  assert.ok(createAdapterFromRelease('none', 'user', faRel) instanceof FrozenAdapter);
  assert.throws(() => createAdapterFromRelease('coldnas', 'user', faRel), incompatible);
});

test('thaw run accepts exactly the registry adapters', async () => {
  const { RUN_ADAPTERS } = await import('../../../config/commands/run.js');
  assert.deepEqual([...RUN_ADAPTERS], [...ADAPTER_NAMES]);
});
