/**
 * Every model kind survives a release round trip bit for bit (weights.bin → same predictions),
 * and the manifest records its architecture, state layout, policy and searched structure.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { FieldLayout, RowBatch } from '../../../models/ctr-model.js';
import { ColdNas } from '../../../models/coldnas.js';
import { DeepFm } from '../../../models/deepfm.js';
import { Emerg } from '../../../models/emerg.js';
import { FixedAdaptive } from '../../../models/fixed-adaptive.js';
import { mulberry32 } from '../../../models/fm.js';
import { architectureOf, bundleCtr, bundleUser, ctrFromRelease, userModelFromRelease, type UserArchitecture } from '../../../models/onnx/bundle.js';
import { ThawError } from '../../../lib/errors.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { OnnxRunner } from '../../../serving/onnx-runner.js';
import { tempDir } from './helpers.js';

const LAYOUT: FieldLayout = { fieldNames: ['item', 'user', 'genre', 'year'], slotField: Int32Array.from([1, 2, 2, 3]), itemFields: [2, 3] };
const rand = mulberry32(9);

function batch(n: number, entities: number): RowBatch {
  return {
    n,
    featIdx: Int32Array.from({ length: n * 4 }, () => Math.floor(rand() * 30)),
    featW: Float32Array.from({ length: n * 4 }, (_, j) => (j % 4 === 1 || j % 4 === 2 ? 0.5 : 1)),
    label: new Float32Array(n),
    entity: Int32Array.from({ length: n }, () => Math.floor(rand() * entities)),
  };
}

describe('release bundles of the meta-learned models', () => {
  let cleanup: () => Promise<void>;
  let store: ReleaseStore;
  beforeEach(async () => {
    const t = await tempDir();
    cleanup = t.cleanup;
    store = new ReleaseStore({ root: t.dir });
  });
  afterEach(async () => cleanup());

  it('deepfm, metaemb and emerg round-trip exactly', async () => {
    const models = [
      new DeepFm({ layout: LAYOUT, vocab: 30, dim: 4, hidden: [8] }),
      new DeepFm({ layout: LAYOUT, vocab: 30, dim: 4, hidden: [8], withGenerator: true }),
      new Emerg({ layout: LAYOUT, vocab: 30, dim: 4, layers: 2, genHidden: 4 }),
    ];
    for (const m of models) {
      const b = batch(16, 4);
      const ent = { count: 4, idEmb: Float32Array.from({ length: 4 * m.width }, () => rand() - 0.5), graph: Float32Array.from({ length: 4 * m.graphSize }, () => rand()) };
      const { architecture, files } = bundleCtr(m);
      // emerg: [b, s, e (W), A (F²), e0, A0, two accumulators]; DeepFM: its ID row.
      assert.equal(architecture.stateLayout.stateSize, m instanceof Emerg ? 2 + 2 * m.width + 2 * 16 + 2 : m.width, architecture.type);
      const man = await store.publish({ model: architecture.type, architecture, files });
      const back = ctrFromRelease(await store.load(man.model, man.version));
      assert.equal(back.kind, m.kind);
      assert.deepEqual(back.predict(b, ent), m.predict(b, ent), architecture.type);
    }
  });

  it('a model loaded from its release holds every parameter of the release (the table is not drawn at random and then overwritten)', async () => {
    const sources = [new DeepFm({ layout: LAYOUT, vocab: 30, dim: 4, hidden: [8], seed: 5 }), new Emerg({ layout: LAYOUT, vocab: 30, dim: 4, layers: 2, genHidden: 4, seed: 5 })];
    for (const m of sources) {
      const { architecture, files } = bundleCtr(m);
      const man = await store.publish({ model: architecture.type, architecture, files });
      const back = ctrFromRelease(await store.load(man.model, man.version));
      assert.deepEqual(back.table.data, m.table.data, `${architecture.type} table`);
      for (const name of m.dense.names()) assert.deepEqual(back.dense.get(name).data, m.dense.get(name).data, `${architecture.type} ${name}`);
    }
    const cn = new ColdNas({ layout: LAYOUT, vocab: 30, dim: 4, hidden: [8, 6, 4], contextDim: 6, seed: 5, structure: { ops: ['min', 'add', 'multiply', 'max'] } });
    const fa = new FixedAdaptive({ layout: LAYOUT, vocab: 30, dim: 4, hidden: [8, 6], seed: 5 });
    for (const [name, m] of [
      ['coldnas', cn],
      ['fa', fa],
    ] as const) {
      const b = bundleUser(m);
      const man = await store.publish({ model: name, architecture: b.architecture, files: b.files });
      const back = userModelFromRelease(await store.load(name, man.version));
      assert.deepEqual(back.table.data, m.table.data, `${name} table`);
    }
  });

  it('randomTable: false leaves the feature table at zero; the default draws it as before', () => {
    const drawn = new Emerg({ layout: LAYOUT, vocab: 30, dim: 4, layers: 2, genHidden: 4, seed: 5 });
    const again = new Emerg({ layout: LAYOUT, vocab: 30, dim: 4, layers: 2, genHidden: 4, seed: 5, randomTable: true });
    const zero = new Emerg({ layout: LAYOUT, vocab: 30, dim: 4, layers: 2, genHidden: 4, seed: 5, randomTable: false });
    assert.deepEqual(again.table.data, drawn.table.data);
    assert.ok(drawn.table.data.some((x) => x !== 0));
    assert.ok(zero.table.data.every((x) => x === 0));
    assert.deepEqual(zero.dense.names(), drawn.dense.names());
    assert.ok(new DeepFm({ layout: LAYOUT, vocab: 30, dim: 4, randomTable: false }).table.data.every((x) => x === 0));
    assert.ok(new FixedAdaptive({ layout: LAYOUT, vocab: 30, dim: 4, randomTable: false }).table.data.every((x) => x === 0));
  });

  it('coldnas records its searched structure and defaults to reinit; fixed-adaptive records its partition', async () => {
    const cn = new ColdNas({ layout: LAYOUT, vocab: 30, dim: 4, hidden: [8, 6, 4], contextDim: 6, structure: { ops: ['min', 'add', 'multiply', 'max'] } });
    const { architecture, files } = bundleUser(cn);
    const a = architecture as UserArchitecture;
    assert.equal(a.entityStatePolicy, 'reinit');
    // [b, s, count, mean (C = 6)]
    assert.deepEqual(a.stateLayout, { adapter: 'coldnas', stateSize: 9 });
    assert.deepEqual(
      (a.structure as { positions: { op: string }[] }).positions.map((p) => p.op),
      ['min', 'add', 'multiply', 'max'],
    );
    const man = await store.publish({ model: 'coldnas', architecture, files });
    const rel = await store.load('coldnas', man.version);
    const back = userModelFromRelease(rel) as ColdNas;
    const b = batch(12, 3);
    const states = [0, 1, 2].map(() => ({ count: 2, mean: Float32Array.from({ length: 6 }, () => rand() - 0.5) }));
    assert.deepEqual(back.predict(b, states), cn.predict(b, states));
    const runner = await OnnxRunner.load(rel.files['model.onnx']!);
    assert.deepEqual([...runner.inputNames].sort(), ['feat_idx', 'feat_w', 'user_state']);
    await runner.close();

    const fa = new FixedAdaptive({ layout: LAYOUT, vocab: 30, dim: 4, hidden: [8, 6] });
    // Meta params away from their defaults, so the round trip must carry them.
    fa.meta.get('fa.init').data.set(Float32Array.from({ length: fa.adaptiveSize }, () => rand() - 0.5));
    fa.meta.get('fa.lr').data.set(Float32Array.from({ length: fa.adaptiveSize }, () => rand()));
    const fb = bundleUser(fa);
    const fArch = fb.architecture as UserArchitecture;
    assert.equal(fArch.entityStatePolicy, 'keep');
    // [b, s, θ (D + 1 = 5)]
    assert.deepEqual(fArch.stateLayout, { adapter: 'fixed-adaptive', stateSize: 7 });
    assert.deepEqual(fArch.hidden, [8, 6]);
    assert.deepEqual(fArch.structure, fa.partitionJson());
    const fman = await store.publish({ model: 'fa', architecture: fb.architecture, files: fb.files });
    const frel = await store.load('fa', fman.version);
    const fback = userModelFromRelease(frel) as FixedAdaptive;
    assert.ok(fback instanceof FixedAdaptive);
    assert.deepEqual(fback.meta.get('fa.init').data, fa.meta.get('fa.init').data);
    assert.deepEqual(fback.meta.get('fa.lr').data, fa.meta.get('fa.lr').data);
    const theta = fa.initUsers(3);
    assert.deepEqual(fback.initUsers(3), theta);
    assert.deepEqual(fback.predict(b, theta), fa.predict(b, theta));
    const frunner = await OnnxRunner.load(frel.files['model.onnx']!);
    assert.deepEqual([...frunner.inputNames].sort(), ['feat_idx', 'feat_w', 'user_adaptive']);
    await frunner.close();
  });

  it('a meta release records the bias filter prior it is given, and refuses a bad one', async () => {
    const prior = { user: { variance: 0.5, drift: 0.003 }, item: { variance: 0.25, drift: 0 } };
    const m = new Emerg({ layout: LAYOUT, vocab: 30, dim: 4, layers: 2, genHidden: 4 });
    const b = bundleCtr(m, { biasFilter: prior });
    assert.deepEqual(b.architecture.biasFilter, prior);
    const man = await store.publish({ model: 'emerg', architecture: b.architecture, files: b.files });
    assert.deepEqual(architectureOf(await store.load('emerg', man.version)).biasFilter, prior);
    assert.equal(bundleCtr(m).architecture.biasFilter, undefined, 'none given: none recorded');
    const fa = new FixedAdaptive({ layout: LAYOUT, vocab: 30, dim: 4, hidden: [8] });
    assert.deepEqual(bundleUser(fa, { biasFilter: prior }).architecture.biasFilter, prior);
    const modelError = (e: unknown): boolean => e instanceof ThawError && e.code === 'MODEL_ERROR' && /biasFilter/.test(e.message);
    assert.throws(() => bundleCtr(m, { biasFilter: { ...prior, user: { variance: -1, drift: 0 } } }), modelError);
    assert.throws(() => bundleUser(fa, { biasFilter: { item: prior.item } as never }), modelError);
    // A release whose manifest carries a bad one is refused when loaded.
    const bad = { manifest: { ...man, architecture: { ...b.architecture, biasFilter: { user: { variance: 'x' } } } }, files: b.files };
    assert.throws(
      () => architectureOf(bad),
      (e: unknown) => e instanceof ThawError && e.code === 'RELEASE_INCOMPATIBLE',
    );
  });
});
