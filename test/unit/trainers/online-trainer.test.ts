import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabelledEvent } from '../../../schemas/types.js';
import { initBackend } from '../../../models/backend.js';
import { FactorizationMachine, mulberry32 } from '../../../models/fm.js';
import { FixedAdaptive } from '../../../models/fixed-adaptive.js';
import { fieldLayoutOf, inferEventLayout } from '../../../models/event-layout.js';
import { architectureOf, bundleCtr, bundleFm } from '../../../models/onnx/bundle.js';
import { Emerg, GRAPH_GEN_PARAMS } from '../../../models/emerg.js';
import { idGeneratorParams } from '../../../models/meta-embedding.js';
import { EmergOnlineLearner } from '../../../trainers/online/emerg-learner.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { EntityWindows } from '../../../trainers/online/windows.js';
import { newestOwnRelease, onlineInfoOf, onlineVersion } from '../../../trainers/online/offsets.js';
import { FmOnlineLearner } from '../../../trainers/online/fm-learner.js';
import { FixedAdaptiveOnlineLearner } from '../../../trainers/online/fixed-adaptive-learner.js';
import { learnerFromRelease } from '../../../trainers/online/factory.js';
import { publishOnlineRelease } from '../../../trainers/online/publish.js';

await initBackend('cpu');

/** Events of `entities` new items, `per` each, interleaved; label 1 with probability `ctr`. */
function events(entities: number, per: number, ctr: number, seed = 1, prefix = 'i'): LabelledEvent[] {
  const rand = mulberry32(seed);
  const out: LabelledEvent[] = [];
  for (let r = 0; r < per; r++) {
    for (let e = 0; e < entities; e++) {
      const u = Math.floor(rand() * 50);
      out.push({
        eventId: `${prefix}-${e}-${r}`,
        timeMs: 1_700_000_000_000 + out.length,
        userId: `u${u}`,
        itemId: `${prefix}${e}`,
        label: rand() < ctr ? 1 : 0,
        userFeatures: { age: [String(u % 5)] },
        itemFeatures: { cat: [String(e % 7)] },
      });
    }
  }
  return out;
}

test('EntityWindows: bounded, splits support/query in time order, closes filled windows', () => {
  const w = new EntityWindows<number>({ size: 4, support: 1, maxEntities: 3 });
  for (const id of ['a', 'b', 'c', 'd', 'e']) w.openFor(id);
  assert.equal(w.openCount, 3);
  assert.equal(w.evicted, 2);
  assert.equal(w.isOpen('a'), false, 'the oldest windows are evicted first');
  assert.equal(w.add('a', 1), undefined, 'no window, nothing held');
  assert.equal(w.add('c', 1), undefined);
  assert.equal(w.add('c', 2), undefined);
  assert.equal(w.add('c', 3), undefined);
  assert.deepEqual(w.add('c', 4), { entityId: 'c', support: [1], query: [2, 3, 4] });
  assert.equal(w.isOpen('c'), false);
  assert.equal(w.add('c', 5), undefined, 'a closed window takes nothing more');
  assert.ok(w.heldEvents <= w.maxEntities * w.size);
  assert.throws(() => new EntityWindows({ size: 4, support: 4 }), /support/);
});

test('online versions: deterministic from the offsets, ordered by total, per lineage', () => {
  const a = onlineVersion('g', 't', { '1': 10, '0': 5 });
  assert.equal(a, onlineVersion('g', 't', { '0': 5, '1': 10 }), 'partition order does not matter');
  assert.match(a, /^on-0000000000015-[0-9a-f]{10}$/);
  assert.notEqual(a, onlineVersion('g', 't', { '0': 6, '1': 9 }), 'same total, other offsets: other version');
  assert.notEqual(a, onlineVersion('other', 't', { '0': 5, '1': 10 }));
  assert.ok(onlineVersion('g', 't', { '0': 5, '1': 11 }) > a, 'later positions sort later');
  const m = (version: string, groupId: string, offsets: Record<string, number>) => ({
    model: 'm',
    version,
    parent: null,
    createdAtMs: 0,
    metrics: {},
    files: {},
    architecture: { type: 'fm', online: { trainer: 'online', groupId, topic: 't', offsets, events: 0, metaTasks: 0, base: null } },
  });
  const list = [m('x', 'g', { '0': 5 }), m('y', 'g', { '0': 9 }), m('z', 'other', { '0': 99 }), { ...m('w', 'g', {}), architecture: { type: 'fm' } }];
  assert.equal(newestOwnRelease(list, 'g', 't')?.manifest.version, 'y');
  assert.equal(newestOwnRelease(list, 'nobody', 't'), undefined);
});

test("fm learner: trains the shared FM on every event and moves each side's prior toward its new entities", () => {
  const mk = () => FactorizationMachine.create({ buckets: 512, k: 4, seed: 3 });
  const on = new FmOnlineLearner(mk(), { metaLr: 0.05, entityDropout: 0 });
  const off = new FmOnlineLearner(mk(), { metaLr: 0, entityDropout: 0 });
  // Every new item is clicked: the best start for a new item has a high bias.
  const evs = events(80, 8, 0.95);
  on.observe(evs);
  off.observe(evs);
  assert.equal(on.stats().events, evs.length);
  assert.ok(on.stats().metaTasks > 0, 'first events of new entities were seen');
  assert.ok(on.fm.w0 > 0, 'shared bias learned from the stream');
  assert.ok(on.fm.priors.item.bias > 0.05, `item prior bias moved up: ${on.fm.priors.item.bias}`);
  assert.equal(off.fm.priors.item.bias, 0, 'metaLr 0 leaves the prior alone');
  // The learner's loss is prequential: its mean is reported and reset.
  const l = on.lossSince();
  assert.equal(l.n, evs.length);
  assert.ok(l.mean > 0 && l.mean < 0.7, `mean log loss ${l.mean}`);
  assert.equal(on.lossSince().n, 0);
});

test('fm learner: warm adapts the replicas only', () => {
  const l = new FmOnlineLearner(FactorizationMachine.create({ buckets: 256, k: 2, seed: 1 }));
  const w0 = l.fm.w0;
  const v0 = Float32Array.from(l.fm.v);
  l.warm(events(10, 3, 0.9));
  assert.equal(l.fm.w0, w0);
  assert.deepEqual(l.fm.v, v0);
  assert.equal(l.stats().events, 0);
  assert.ok(l.stats().trackedEntities > 0);
});

test('fm learner: entity replicas are bounded (LRU) per side', () => {
  const l = new FmOnlineLearner(FactorizationMachine.create({ buckets: 256, k: 2 }), { maxEntities: 10 });
  l.observe(events(50, 2, 0.5));
  assert.ok(l.stats().trackedEntities <= 20, `${l.stats().trackedEntities} replicas`);
});

test('fixed-adaptive learner: fa.init and fa.lr move toward warming users, the trunk trains', () => {
  // User side: entity = the user.
  const evs = events(40, 10, 0.9, 5, 'x').map((e, i) => ({ ...e, userId: `nu${i % 40}`, itemId: `it${(i * 7) % 30}` }));
  const layout = inferEventLayout('user', evs, { vocab: 512 });
  const model = new FixedAdaptive({ layout: fieldLayoutOf(layout), vocab: 512, dim: 4, hidden: [8] });
  const init0 = Float32Array.from(model.meta.get('fa.init').data);
  const lr0 = Float32Array.from(model.meta.get('fa.lr').data);
  const trunk0 = Float32Array.from(model.backbone.dense.get('fm.bias').data);
  const probe = new (class {
    cold(): number {
      const b = learner['encoder'].encode(
        evs.slice(0, 40),
        Int32Array.from({ length: 40 }, (_, i) => i),
      );
      const p = model.predict(b, model.initUsers(40));
      return p.reduce((s, x) => s + x, 0) / p.length;
    }
  })();
  const learner = new FixedAdaptiveOnlineLearner(model, layout, { batchSize: 50, usersPerStep: 8, metaLr: 0.05, windows: { size: 6, support: 3 } });
  const before = probe.cold();
  learner.observe(evs);
  learner.flush();
  assert.equal(learner.stats().events, evs.length);
  assert.equal(learner.stats().metaTasks, 40);
  const init1 = model.meta.get('fa.init').data;
  const lr1 = model.meta.get('fa.lr').data;
  assert.ok(
    init1.some((x, i) => x !== init0[i]),
    'fa.init moved',
  );
  assert.ok(
    lr1.some((x, i) => x !== lr0[i]),
    'fa.lr moved',
  );
  assert.ok(model.backbone.dense.get('fm.bias').data[0] !== trunk0[0], 'the fixed trunk trained');
  assert.ok(probe.cold() > before, `a new user is predicted to click more: ${before} -> ${probe.cold()}`);
  const bundle = learner.bundle('m/v');
  assert.equal(bundle.architecture.type, 'fixed-adaptive');
  assert.equal(bundle.architecture.entityStatePolicy, 'keep');
  assert.deepEqual(bundle.architecture.eventLayout, layout);
  assert.deepEqual(bundle.architecture.stateLayout, { adapter: 'fixed-adaptive', stateSize: 2 + 5 }, '[b, s, θ (D + 1)]');
  // A release's bias filter prior goes on into the learner's releases.
  const prior = { user: { variance: 0.4, drift: 0.01 }, item: { variance: 0.2, drift: 0 } };
  const withPrior = new FixedAdaptiveOnlineLearner(model, layout, { biasFilter: prior });
  assert.deepEqual(withPrior.bundle('m/w').architecture.biasFilter, prior);
  assert.equal(bundle.architecture.biasFilter, undefined);
});

test('publishOnlineRelease: manifest records the offsets; same offsets publish once; lineage continues from it', async () => {
  const root = await mkdtemp(join(tmpdir(), 'thaw-online-'));
  try {
    const store = new ReleaseStore({ root });
    const fm = FactorizationMachine.create({ buckets: 256, k: 2 });
    const b = bundleFm(fm);
    const base = await store.publish({ model: 'fm', architecture: b.architecture, files: b.files });
    await store.promote('fm', base.version);
    const learner = learnerFromRelease(await store.load('fm', base.version), 'fm', 'item');
    learner.observe(events(10, 3, 0.5));
    const common = { store, model: 'fm', groupId: 'g1', topic: 'thaw.labelled.by-item', learner, parent: base.version, base: base.version, priorEvents: 0, priorTasks: 0 };
    const r1 = await publishOnlineRelease({ ...common, offsets: { '0': 20, '1': 10 } });
    assert.equal(r1.written, true);
    const rel = await store.load('fm', r1.version);
    assert.equal(rel.manifest.parent, base.version);
    assert.deepEqual(onlineInfoOf(rel.manifest)?.offsets, { '0': 20, '1': 10 });
    assert.equal(onlineInfoOf(rel.manifest)?.events, 30);
    assert.equal((rel.manifest.architecture as { entityStatePolicy: string }).entityStatePolicy, 'keep');
    const again = await publishOnlineRelease({ ...common, offsets: { '1': 10, '0': 20 } });
    assert.deepEqual({ v: again.version, w: again.written }, { v: r1.version, w: false });
    assert.equal((await store.list('fm')).length, 2, 'nothing published twice');
    // A restarted trainer continues from the newest own release, with its parameters.
    const own = newestOwnRelease(await store.list('fm'), 'g1', 'thaw.labelled.by-item');
    assert.equal(own?.manifest.version, r1.version);
    const resumed = learnerFromRelease(await store.load('fm', r1.version), 'fm', 'item') as FmOnlineLearner;
    assert.equal(resumed.fm.w0, Math.fround((learner as FmOnlineLearner).fm.w0), 'weights.bin holds float32');
    assert.deepEqual(resumed.fm.v, (learner as FmOnlineLearner).fm.v);
    assert.throws(() => learnerFromRelease(rel, 'fixed-adaptive', 'user'), /fm release/);
    assert.equal(learnerFromRelease(rel, 'fm', 'user').side, 'user', "a two-sided FM release is learned from either side's topic");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

/** An EmerG over the item-side layout of `evs` (tiny, for tests). */
function emergFor(evs: LabelledEvent[]): { model: Emerg; layout: ReturnType<typeof inferEventLayout> } {
  const layout = inferEventLayout('item', evs, { vocab: 256 });
  return { model: new Emerg({ layout: fieldLayoutOf(layout), vocab: 256, dim: 4, layers: 2, genHidden: 4, seed: 3 }), layout };
}

const snapshot = (m: Emerg, names: string[]): Float32Array[] => names.map((n) => Float32Array.from(m.dense.get(n).data));
const same = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const moved = (m: Emerg, names: string[], before: Float32Array[]): boolean => names.every((n, i) => m.dense.get(n).data.some((x, j) => x !== before[i]![j]));

test('emerg learner: generators and hypernetwork move by meta steps on warming items, nothing else does', () => {
  const evs = events(40, 8, 0.9, 7, 'n');
  const gens = [...GRAPH_GEN_PARAMS, ...idGeneratorParams()];
  // Supervised part off (no dense, table or ID updates): only the meta steps can move anything.
  const only = { sharedLr: 0, trainTable: false, idLr: 0, batchSize: 40, itemsPerStep: 8, windows: { size: 6, support: 3 } };
  const on = emergFor(evs);
  const off = emergFor(evs);
  const before = snapshot(on.model, gens);
  const table0 = Float32Array.from(on.model.table.data);
  const l = new EmergOnlineLearner(on.model, on.layout, { ...only, metaLr: 0.01 });
  const l0 = new EmergOnlineLearner(off.model, off.layout, { ...only, metaLr: 0 });
  l.observe(evs);
  l.flush();
  l0.observe(evs);
  l0.flush();
  assert.equal(l.stats().events, evs.length);
  assert.equal(l.stats().metaTasks, 40, 'each new item gives one task when its window fills');
  assert.ok(l.stats().metaSteps >= 5);
  assert.ok(moved(on.model, gens, before), 'every generator / hypernetwork param moved');
  assert.ok(moved(on.model, ['gnn.w0', 'out.bias'], snapshot(emergFor(evs).model, ['gnn.w0', 'out.bias'])), 'the outer step trains the shared parts too');
  assert.ok(same(on.model.table.data, table0), 'trainTable false: the table is left alone');
  assert.ok(!moved(off.model, gens.slice(0, 1), before.slice(0, 1)), 'metaLr 0 and no supervised step: nothing moves');
});

test('emerg learner: supervised steps train the shared part and the bounded ID rows; windows and rows are bounded', () => {
  const evs = events(60, 3, 0.8, 9, 'b');
  const { model, layout } = emergFor(evs);
  const bias0 = model.dense.get('out.bias').data[0];
  const l = new EmergOnlineLearner(model, layout, { maxEntities: 10, batchSize: 30, metaLr: 0, windows: { size: 4, maxEntities: 5 } });
  l.observe(evs);
  l.flush();
  assert.equal(l.stats().trackedEntities, 10, 'ID rows: LRU bounded');
  assert.ok(l.stats().openWindows <= 5, 'open windows bounded');
  assert.ok(l.windows.heldEvents <= 5 * 4);
  assert.notEqual(model.dense.get('out.bias').data[0], bias0, 'shared dense params trained from the stream');
  assert.ok(Number.isFinite(l.stats().recentLogloss));
  assert.throws(() => new EmergOnlineLearner(model, { ...layout, side: 'user' }), /items/);
  assert.throws(() => new EmergOnlineLearner(model, layout, { itemsPerStep: 0 }), /itemsPerStep/);
});

test('emerg: an online release records the offsets, keeps the base event and state layouts, policy keep', async () => {
  const root = await mkdtemp(join(tmpdir(), 'thaw-online-emerg-'));
  try {
    const evs = events(20, 4, 0.7, 11, 'r');
    const { model, layout } = emergFor(evs);
    const stateLayout = { adapter: 'emerg', stateSize: 2 + 2 * model.width + 2 * model.graphSize + 2 };
    const biasFilter = { user: { variance: 0.5, drift: 0.003 }, item: { variance: 0.25, drift: 0 } };
    const store = new ReleaseStore({ root });
    const b = bundleCtr(model, { eventLayout: layout, biasFilter });
    assert.deepEqual(b.architecture.stateLayout, stateLayout, 'the default state layout: [b, s, e, A, e0, A0, Ge, GA]');
    const base = await store.publish({ model: 'em', architecture: b.architecture, files: b.files });
    await store.promote('em', base.version);
    const learner = learnerFromRelease(await store.load('em', base.version), 'emerg', 'item', { emerg: { batchSize: 20, itemsPerStep: 4, windows: { size: 4 } } });
    learner.observe(evs);
    const r = await publishOnlineRelease({
      store,
      model: 'em',
      groupId: 'g',
      topic: 'thaw.labelled.by-item',
      learner,
      offsets: { '0': 80 },
      parent: base.version,
      base: base.version,
      priorEvents: 0,
      priorTasks: 0,
    });
    const rel = await store.load('em', r.version);
    const arch = rel.manifest.architecture as { type: string; eventLayout: unknown; stateLayout: unknown; entityStatePolicy: string };
    assert.deepEqual(onlineInfoOf(rel.manifest)?.offsets, { '0': 80 });
    assert.equal(onlineInfoOf(rel.manifest)?.metaTasks, 20);
    assert.equal(arch.type, 'emerg');
    assert.deepEqual(arch.eventLayout, layout);
    assert.deepEqual(arch.stateLayout, stateLayout);
    assert.deepEqual(architectureOf(rel).biasFilter, biasFilter, 'the bias filter prior goes on');
    assert.equal(arch.entityStatePolicy, 'keep');
    const next = learnerFromRelease(rel, 'emerg', 'item') as EmergOnlineLearner;
    assert.ok(same(next.model.dense.get('gen.graph.b3').data, (learner as EmergOnlineLearner).model.dense.get('gen.graph.b3').data), 'the lineage continues from the released weights');
    assert.throws(() => learnerFromRelease(rel, 'emerg', 'user'), /items/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
