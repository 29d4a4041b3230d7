/**
 * `adapterOptions` of `thaw run` / `thaw replay` (config/adapter-options.ts): documented defaults
 * equal the adapters' own, flags and config file reach the adapter the worker builds, and bad or
 * unread options refuse to start with the key named.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { COLDNAS_FAST_MAX_ROWS, COLDNAS_HISTORY_WINDOW, ColdNasAdapter } from '../../../adapters/coldnas.js';
import { EMERG_ADAPTER_DEFAULTS, EmergAdapter } from '../../../adapters/emerg.js';
import { META_CROSS_SIDE } from '../../../adapters/entity-bias.js';
import { FIXED_ADAPTIVE_FAST_MAX_ROWS, FIXED_ADAPTIVE_LR_SCALE } from '../../../adapters/fixed-adaptive.js';
import { FM_ADAGRAD_DEFAULTS } from '../../../adapters/fm-adagrad.js';
import { createAdapterFromRelease } from '../../../adapters/registry.js';
import { DEFAULT_CHUNK_ROWS } from '../../../adapters/user-common.js';
import { adapterOptionsSchema } from '../../../config/adapter-options.js';
import { replaySpec } from '../../../config/commands/replay.js';
import { runSpec } from '../../../config/commands/run.js';
import { fieldAt, leafKeys } from '../../../config/describe.js';
import { loadConfig } from '../../../config/load.js';
import { ConfigError } from '../../../lib/errors.js';
import { initBackend } from '../../../models/backend.js';
import { ColdNas } from '../../../models/coldnas.js';
import { fieldLayoutOf, inferEventLayout } from '../../../models/event-layout.js';
import { bundleUser } from '../../../models/onnx/bundle.js';
import { emergFixture, emergRelease, loadedRelease } from '../adapters/emerg-fixture.js';

await initBackend('wasm');

const noFile = (): string => {
  throw Object.assign(new Error('no'), { code: 'ENOENT' });
};
const load = (argv: string[], file?: object): ReturnType<typeof loadConfig<typeof runSpec.schema>>['config'] =>
  loadConfig(runSpec, file === undefined ? argv : [...argv, '--config', 'c.json'], { env: {}, readFile: file === undefined ? noFile : () => JSON.stringify(file) }).config;
const keyError =
  (key: string, re?: RegExp) =>
  (e: unknown): boolean =>
    e instanceof ConfigError && e.key === key && (re === undefined || re.test(e.message));

test("the documented defaults are the adapters' defaults", () => {
  const expected: Record<string, unknown> = {
    'fm-adagrad.learningRate': FM_ADAGRAD_DEFAULTS.learningRate,
    'fm-adagrad.l2': FM_ADAGRAD_DEFAULTS.l2,
    'fm-adagrad.biasVariance': 'release',
    'fm-adagrad.biasDrift': 'release',
    'fm-adagrad.sessionDecay': 'release',
    'fm-adagrad.sessionVariance': 'release',
    'fm-adagrad.initialAccumulator': FM_ADAGRAD_DEFAULTS.initialAccumulator,
    'fm-adagrad.init': FM_ADAGRAD_DEFAULTS.init,
    'emerg.learningRate': EMERG_ADAPTER_DEFAULTS.learningRate,
    'emerg.graphLrScale': EMERG_ADAPTER_DEFAULTS.graphLrScale,
    'emerg.l2': EMERG_ADAPTER_DEFAULTS.l2,
    'emerg.optimizer': EMERG_ADAPTER_DEFAULTS.optimizer,
    'emerg.initialAccumulator': EMERG_ADAPTER_DEFAULTS.initialAccumulator,
    'emerg.fastMaxRows': EMERG_ADAPTER_DEFAULTS.fastMaxRows,
    'emerg.biasVariance': 'release',
    'emerg.biasDrift': 'release',
    'emerg.crossSide': META_CROSS_SIDE,
    'coldnas.historyWindow': COLDNAS_HISTORY_WINDOW,
    'coldnas.chunkRows': DEFAULT_CHUNK_ROWS,
    'coldnas.fastMaxRows': COLDNAS_FAST_MAX_ROWS,
    'coldnas.biasVariance': 'release',
    'coldnas.biasDrift': 'release',
    'coldnas.crossSide': META_CROSS_SIDE,
    'fixed-adaptive.lrScale': FIXED_ADAPTIVE_LR_SCALE,
    'fixed-adaptive.chunkRows': DEFAULT_CHUNK_ROWS,
    'fixed-adaptive.fastMaxRows': FIXED_ADAPTIVE_FAST_MAX_ROWS,
    'fixed-adaptive.biasVariance': 'release',
    'fixed-adaptive.biasDrift': 'release',
    'fixed-adaptive.crossSide': META_CROSS_SIDE,
  };
  const keys = leafKeys(adapterOptionsSchema);
  assert.deepEqual([...keys].sort(), Object.keys(expected).sort());
  for (const key of keys) {
    const text = (fieldAt(adapterOptionsSchema, key) as z.ZodTypeAny).description ?? '';
    const documented = /@default (\S+)/.exec(text)?.[1];
    assert.equal(documented, String(expected[key]), `${key}: documents ${documented}`);
  }
});

test('flags and the config file reach the adapter the worker builds', () => {
  const cfg = load(['user', '--adapter', 'coldnas', '--coldnas-history-window', '20']);
  assert.deepEqual(cfg.adapterOptions, { coldnas: { historyWindow: 20 } });
  const { model, layout, events } = emergFixture();
  const userLayout = inferEventLayout('user', events, { vocab: 1024, maxSlots: 3 });
  const cn = new ColdNas({ layout: fieldLayoutOf(userLayout), vocab: userLayout.vocab, dim: 4, hidden: [8, 8, 4], contextDim: 8, structure: { ops: ['add', 'multiply', 'max', 'min'] } });
  const cnRel = loadedRelease(bundleUser(cn, { eventLayout: userLayout }), 'coldnas', 'v1');
  const ad = createAdapterFromRelease(cfg.adapter, cfg.side, cnRel, cfg.adapterOptions);
  assert.ok(ad instanceof ColdNasAdapter);
  assert.equal(ad.historyWindow, 20);
  // Nothing given: the adapter's defaults.
  const plain = load(['user', '--adapter', 'coldnas']);
  assert.deepEqual(plain.adapterOptions, {});
  assert.equal((createAdapterFromRelease('coldnas', 'user', cnRel, plain.adapterOptions) as ColdNasAdapter).historyWindow, COLDNAS_HISTORY_WINDOW);
  // A config file section; the flag wins over the file.
  const fromFile = load(['item', '--adapter', 'emerg', '--emerg-learning-rate', '0.25'], { adapterOptions: { emerg: { learningRate: 2, l2: 0, optimizer: 'sgd' } } });
  const em = createAdapterFromRelease('emerg', 'item', emergRelease(model, layout), fromFile.adapterOptions);
  assert.ok(em instanceof EmergAdapter);
  assert.deepEqual([em.options.learningRate, em.options.l2, em.options.optimizer], [0.25, 0, 'sgd']);
  // none reads its release adapter's section.
  assert.deepEqual(load(['user', '--adapter', 'none', '--coldnas-history-window', '0']).adapterOptions, { coldnas: { historyWindow: 0 } });
});

test('bad or unread adapter options refuse to start, naming the key', () => {
  assert.throws(() => load(['user', '--adapter', 'coldnas', '--coldnas-history-window=-1']), keyError('adapterOptions.coldnas.historyWindow', />= 0/));
  assert.throws(() => load(['user', '--adapter', 'coldnas', '--coldnas-history-window', '2.5']), keyError('adapterOptions.coldnas.historyWindow'));
  assert.throws(() => load(['user', '--adapter', 'fixed-adaptive'], { adapterOptions: { 'fixed-adaptive': { lrscale: 2 } } }), keyError('adapterOptions.fixed-adaptive.lrscale', /unknown key/));
  assert.throws(() => load(['item', '--adapter', 'emerg'], { adapterOptions: { emerg: { optimizer: 'adam' } } }), keyError('adapterOptions.emerg.optimizer'));
  assert.throws(() => load(['item', '--adapter', 'emerg'], { adapterOptions: { vw: {} } }), keyError('adapterOptions.vw', /unknown key/));
  // Options of another adapter than the one run would be ignored: refused instead.
  assert.throws(() => load(['user', '--adapter', 'coldnas', '--fixed-adaptive-lr-scale', '0.5']), keyError('adapterOptions.fixed-adaptive', /reads adapterOptions.coldnas only/));
  assert.throws(() => load(['user', '--adapter', 'none', '--fixed-adaptive-lr-scale', '0.5', '--coldnas-history-window', '3']), keyError('adapterOptions.fixed-adaptive', /keep one/));
  // thaw replay runs FM adapters only.
  const replay = (file: object): unknown => loadConfig(replaySpec, ['--namespace', 'bf', '--from', '0', '--to', '10', '--config', 'c.json'], { env: {}, readFile: () => JSON.stringify(file) }).config;
  assert.throws(() => replay({ adapterOptions: { coldnas: { historyWindow: 3 } } }), keyError('adapterOptions.coldnas', /unknown key/));
  assert.deepEqual((replay({ adapterOptions: { 'fm-adagrad': { learningRate: 0.3 } } }) as { adapterOptions: unknown }).adapterOptions, { 'fm-adagrad': { learningRate: 0.3 } });
});
