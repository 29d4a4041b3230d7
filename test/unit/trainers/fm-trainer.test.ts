import { test } from 'node:test';
import assert from 'node:assert/strict';
import { auc, DEFAULT_CROSS_BUCKETS, trainFm, type EpochReport } from '../../../trainers/fm-trainer.js';
import { mulberry32 } from '../../../models/fm.js';
import { SyntheticStream } from '../../../sources/synthetic.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { HISTORY_MINIMUM } from '../../../trainers/history.js';
import type { LabelledEvent } from '../../../schemas/types.js';

void test('auc by ranks, ties averaged', () => {
  assert.equal(auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
  assert.equal(auc([0.5, 0.5], [0, 1]), 0.5);
  assert.equal(auc([1, 2, 3], [0, 1, 1]), 1);
  assert.ok(Number.isNaN(auc([1, 2], [1, 1])));
});

const FIXED_BIAS = { user: { variance: 0.5, drift: 0.01 }, item: { variance: 0.5, drift: 0.003 } };

void test('trains on a prefix with its hot users and items, learns, reports per epoch, is deterministic', async () => {
  const opts = { seed: 5, events: 80_000, users: 3000, items: 1500 };
  const reports: EpochReport[] = [];
  const t0 = performance.now();
  const r = await trainFm(new SyntheticStream(opts), {
    buckets: 1 << 16,
    epochs: 3,
    minCount: 20,
    maxEvents: 60_000,
    seed: 2,
    biasFilter: FIXED_BIAS,
    onEpoch: (rep) => reports.push(rep),
  });
  const ms = performance.now() - t0;
  assert.equal(r.prefixEvents, 60_000);
  assert.equal(r.trainEvents, 60_000);
  assert.ok(r.hotEntities.user > 100 && r.hotEntities.item > 100, JSON.stringify(r.hotEntities));
  assert.equal(reports.length, 3);
  assert.deepEqual(reports, r.epochs);
  assert.ok(reports[2]!.auc > reports[0]!.auc, `auc ${reports.map((x) => x.auc.toFixed(4)).join(' → ')}`);
  assert.ok(reports[2]!.logloss < reports[0]!.logloss);
  assert.ok(reports[2]!.auc > 0.65, `final progressive AUC ${reports[2]!.auc}`);
  assert.equal(r.model.release, 'fm-2');
  assert.ok(r.model.priors.item.vector.some((x) => x !== 0) && r.model.priors.user.vector.some((x) => x !== 0));
  assert.equal(r.model.priors.user.biasVariance, 0.5);
  assert.equal(r.model.priors.item.biasDrift, 0.003);
  assert.equal(r.biasFit, undefined);
  // Same inputs and seed, same release bytes.
  const again = await trainFm([...new SyntheticStream(opts).events()].slice(0, 60_000), { buckets: 1 << 16, epochs: 3, seed: 2, biasFilter: FIXED_BIAS });
  assert.ok(again.model.toBuffer().equals(r.model.toBuffer()));
  console.log(`trained ${r.trainEvents} events × 3 epochs in ${ms.toFixed(0)} ms`);
});

void test('entities with minCount events are hot, on each side', async () => {
  const events = [...new SyntheticStream({ seed: 1, events: 5000, users: 100, items: 300 }).events()];
  const count = (side: 'user' | 'item'): number => {
    const per = new Map<string, number>();
    for (const e of events) per.set(side === 'user' ? e.userId : e.itemId, (per.get(side === 'user' ? e.userId : e.itemId) ?? 0) + 1);
    return [...per.values()].filter((c) => c >= 30).length;
  };
  const r = await trainFm(events, { buckets: 1 << 12, epochs: 1, minCount: 30, biasFilter: FIXED_BIAS });
  assert.deepEqual(r.hotEntities, { user: count('user'), item: count('item') });
  assert.equal(r.trainEvents, events.length);
});

void test('the bias filter is fitted on the history: no spread where labels carry no user bias, a spread where they do', async () => {
  const base = [...new SyntheticStream({ seed: 4, events: 12_000, users: 300, items: 400 }).events()];
  // Balanced per user: each user's labels alternate, so a user's past says nothing about the next label.
  const turn = new Map<string, number>();
  const balanced = base.map((e) => {
    const t = turn.get(e.userId) ?? 0;
    turn.set(e.userId, t + 1);
    return { ...e, label: (t % 2) as 0 | 1 };
  });
  // Users who like everything or nothing: the user's past is the best predictor there is.
  const polar = base.map((e) => ({ ...e, label: (Number(e.userId.replace(/\D/g, '')) % 2) as 0 | 1 }));
  const fitOf = async (events: LabelledEvent[]) => (await trainFm(events, { buckets: 1 << 12, epochs: 1, seed: 3 })).biasFit;
  const b = await fitOf(balanced);
  const p = await fitOf(polar);
  assert.ok(b !== undefined && p !== undefined);
  console.log(`balanced ${JSON.stringify(b)}\npolar ${JSON.stringify(p)}`);
  assert.ok(b.user.variance <= 0.05, `balanced labels: user bias variance ${b.user.variance}`);
  assert.ok(p.user.variance >= 1, `polar users: user bias variance ${p.user.variance}`);
  assert.ok(p.logLoss < b.logLoss);
});

void test('the cross term is chosen on the history: taken where user and item features interact beyond k, left out where they do not', async () => {
  const base = [...new SyntheticStream({ seed: 6, events: 16_000, users: 400, items: 300 }).events()];
  const rand = mulberry32(5);
  // A random sign per (occupation, category): a rank-20 interaction that k = 2 latent dimensions cannot hold.
  const sign = new Map<string, number>();
  const signOf = (key: string): number => {
    let x = sign.get(key);
    if (x === undefined) sign.set(key, (x = rand() < 0.5 ? -1.5 : 1.5));
    return x;
  };
  const label = (z: number): 0 | 1 => (rand() < 1 / (1 + Math.exp(-z)) ? 1 : 0);
  const crossed = base.map((e) => ({ ...e, label: label(signOf(`${e.userFeatures.occ?.[0]}|${e.itemFeatures.category?.[0]}`)) }));
  // Each feature acts alone: nothing for a cross to add.
  const additive = base.map((e) => ({ ...e, label: label(signOf(`o${e.userFeatures.occ?.[0]}`) + signOf(`c${e.itemFeatures.category?.[0]}`)) }));
  const opts = { buckets: 1 << 12, k: 2, epochs: 1, seed: 3, biasFilter: FIXED_BIAS };
  const c = await trainFm(crossed, opts);
  const a = await trainFm(additive, opts);
  console.log(`crossed ${JSON.stringify(c.crossFit)}\nadditive ${JSON.stringify(a.crossFit)}`);
  assert.equal(c.model.crossBuckets, DEFAULT_CROSS_BUCKETS);
  assert.equal(a.model.crossBuckets, 0);
  assert.deepEqual(Object.keys(c.crossFit ?? {}).sort(), ['0', String(DEFAULT_CROSS_BUCKETS)]);
  // The trained crosses carry the interaction.
  assert.ok(c.model.c.some((x) => Math.abs(x) > 0.1));
  // No item features: no pair to cross, nothing tried. A given size is taken as given.
  const idsOnly = crossed.map((e) => ({ ...e, itemFeatures: {} }));
  const i = await trainFm(idsOnly, opts);
  assert.equal(i.model.crossBuckets, 0);
  assert.equal(i.crossFit, undefined);
  const given = await trainFm(additive, { ...opts, crossBuckets: 64 });
  assert.equal(given.model.crossBuckets, 64);
  assert.equal(given.crossFit, undefined);
  await assert.rejects(trainFm(additive, { ...opts, crossBuckets: -1 }), (e: unknown) => e instanceof ConfigError && e.key === 'fmTrainer.crossBuckets');
});

void test('bad options throw ConfigError naming the key', async () => {
  await assert.rejects(trainFm([], { epochs: 0 }), (e: unknown) => e instanceof ConfigError && e.key === 'fmTrainer.epochs');
  await assert.rejects(trainFm([], { entityDropout: 2 }), (e: unknown) => e instanceof ConfigError && e.key === 'fmTrainer.entityDropout');
});

void test('a prefix too thin refuses before training, naming the flags and the counts', async () => {
  const events = [...new SyntheticStream({ seed: 1, events: 5000, users: 100, items: 300 }).events()];
  const perUser = new Map<string, number>();
  for (const e of events) perUser.set(e.userId, (perUser.get(e.userId) ?? 0) + 1);
  const hot = [...perUser.values()].filter((c) => c >= 80);
  assert.ok(hot.length > 0 && hot.length < HISTORY_MINIMUM.entities, `${hot.length} hot users`);
  // Every event trains the shared part: the rows are the whole history.
  const rows = events.length.toLocaleString('en-US');
  let epochs = 0;
  await assert.rejects(trainFm(events, { buckets: 1 << 12, epochs: 1, minCount: 80, onEpoch: () => epochs++ }), (e: unknown) => {
    assert.ok(e instanceof ThawError && e.code === 'HISTORY_TOO_THIN', String(e));
    assert.equal(
      e.message,
      `history too thin: --min-events 80 leaves ${hot.length} hot users (${rows} rows) in a history of 5,000 events; ` +
        'at least 20 hot users and 1,000 rows are needed: lower --min-events or give a longer history (raise --history-fraction or --history-events)',
    );
    return true;
  });
  assert.equal(epochs, 0, 'no epoch ran');
});

void test('maxEvents pulls no event past the prefix', async () => {
  let pulled = 0;
  async function* src(): AsyncGenerator<LabelledEvent> {
    for await (const e of new SyntheticStream({ seed: 1, events: 3000, users: 40, items: 40 })) {
      pulled++;
      yield e;
    }
  }
  const r = await trainFm(src(), { buckets: 1 << 10, epochs: 1, minCount: 1, maxEvents: 1200 });
  assert.equal(r.prefixEvents, 1200);
  assert.equal(pulled, 1200);
  pulled = 0;
  // An empty prefix pulls nothing and is too thin to train on.
  await assert.rejects(
    trainFm(src(), { buckets: 1 << 10, epochs: 1, maxEvents: 0 }),
    (e: unknown) => e instanceof ThawError && e.code === 'HISTORY_TOO_THIN' && /leaves 0 hot users \(0 rows\) in a history of 0 events/.test(e.message),
  );
  assert.equal(pulled, 0);
});
