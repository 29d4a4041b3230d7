/**
 * Stream releases trained from events (trainers/event-trainer.ts): every kind trains on a small
 * synthetic history, its loss falls, its bundle carries the event layout and the model read back
 * from the bundle predicts what the trained one does.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { initBackend } from '../../../models/backend.js';
import { ColdNas } from '../../../models/coldnas.js';
import type { EntityParams } from '../../../models/ctr-model.js';
import { EventEncoder } from '../../../models/event-layout.js';
import { FixedAdaptive } from '../../../models/fixed-adaptive.js';
import { mulberry32 } from '../../../models/fm.js';
import { ctrFromRelease, userModelFromRelease, type Bundle } from '../../../models/onnx/bundle.js';
import type { LoadedRelease } from '../../../model-store/releases.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { SyntheticStream } from '../../../sources/synthetic.js';
import { sideOfKind, STREAM_KINDS, trainFromEvents, type EventTrainerOptions, type EventTrainResult } from '../../../trainers/event-trainer.js';
import { HISTORY_MINIMUM } from '../../../trainers/history.js';
import { fitBiasFilter, FM_BIAS_FIT_MODEL } from '../../../trainers/bias-fit.js';

// wasm, the backend `thaw train` picks on a host without tfjs-node: what is checked here (the loss falls, the
// bundle read back predicts what the trained model does) holds on any backend, and cpu is several times slower.
await initBackend('wasm');

/** Small and fast: 3,000 events; with TINY's minEvents 30, 24 hot items and 20 hot users (1,874+ rows). */
async function history(): Promise<LabelledEvent[]> {
  const out: LabelledEvent[] = [];
  for await (const e of new SyntheticStream({ seed: 3, events: 3000, users: 120, items: 60 })) out.push(e);
  return out;
}

const TINY = { dim: 4, vocab: 2048, epochs: 4, metaEpochs: 2, searchEpochs: 2, seed: 11, lr: 0.01, minEvents: 30 } as const;

function loaded(b: Bundle): LoadedRelease {
  return {
    manifest: { model: b.architecture.type, version: 'v1', parent: null, createdAtMs: 0, architecture: b.architecture, metrics: {}, files: {} },
    files: b.files,
  };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('trainFromEvents', () => {
  let events: LabelledEvent[];
  before(async () => {
    events = await history();
  });

  for (const kind of STREAM_KINDS) {
    it(`${kind}: trains, its loss decreases, and the bundle round-trips with its event layout`, async () => {
      // EmerG is the slowest on the cpu backend: one meta epoch is enough to check the plumbing.
      const res: EventTrainResult = await trainFromEvents({ kind, events, ...TINY, ...(kind === 'emerg' ? { metaEpochs: 1 } : {}) });
      assert.equal(res.layout.side, sideOfKind(kind));
      assert.deepEqual(res.bundle.architecture.eventLayout, res.layout);
      assert.equal(res.bundle.architecture.type, kind);
      assert.ok(res.stats.entities >= HISTORY_MINIMUM.entities && res.stats.rows >= TINY.minEvents * res.stats.entities, JSON.stringify(res.stats));
      assert.equal(res.entityIds.length, res.stats.entities);
      assert.ok(res.stats.examplesPerSec > 0 && Number.isFinite(res.stats.finalLoss));

      // The supervised stage (ColdNAS: its retrain) learns: last epoch below the first.
      const stage = kind === 'coldnas' ? 'retrain' : 'base';
      const curve = res.stats.losses.filter((l) => l.stage === stage).map((l) => l.loss);
      assert.equal(curve.length, TINY.epochs, `${stage} epochs logged`);
      assert.ok(curve[curve.length - 1]! < curve[0]!, `${kind} ${stage} loss ${curve.join(' → ')}`);

      // Rows of the history encoded with the release's own layout; entity index = hot index mod 5.
      const enc = new EventEncoder(res.bundle.architecture.eventLayout);
      const rows = enc.encode(
        events.slice(0, 64),
        Int32Array.from({ length: 64 }, (_, i) => i % 5),
      );
      const rel = loaded(res.bundle);
      const rand = mulberry32(5);
      if (kind === 'coldnas') {
        const back = userModelFromRelease(rel) as ColdNas;
        const trained = res.model as ColdNas;
        const states = trained.batchStates(rows, 5);
        assert.ok(maxAbsDiff(back.predict(rows, states), trained.predict(rows, states)) < 1e-5);
      } else if (kind === 'fixed-adaptive') {
        const back = userModelFromRelease(rel) as FixedAdaptive;
        const trained = res.model as FixedAdaptive;
        const users = trained.initUsers(5);
        assert.ok(maxAbsDiff(back.predict(rows, users), trained.predict(rows, users)) < 1e-5);
      } else {
        const back = ctrFromRelease(rel);
        const trained = res.model as ReturnType<typeof ctrFromRelease>;
        const ent: EntityParams = {
          count: 5,
          idEmb: Float32Array.from({ length: 5 * trained.width }, () => rand() - 0.5),
          graph: Float32Array.from({ length: 5 * trained.graphSize }, () => rand()),
        };
        assert.equal(back.width, trained.width);
        assert.ok(maxAbsDiff(back.predict(rows, ent), trained.predict(rows, ent)) < 1e-5);
      }

      // The bias filter's prior, chosen on the whole history as the FM trainer chooses it, is recorded.
      const fit = fitBiasFilter(events, { ...FM_BIAS_FIT_MODEL, seed: TINY.seed, sessionVariances: [0] });
      assert.deepEqual(res.biasFilter, { user: { variance: fit.user.variance, drift: fit.user.drift }, item: { variance: fit.item.variance, drift: fit.item.drift } });
      assert.deepEqual(res.bundle.architecture.biasFilter, res.biasFilter);
      assert.equal(res.biasFit?.logLoss, fit.logLoss);

      if (kind === 'coldnas') {
        // The search's architecture logits learn on users whose rows never trained its weights.
        assert.ok(res.validationIds.length > 0 && res.searchTrainIds.length > 0);
        const train = new Set(res.searchTrainIds);
        for (const v of res.validationIds) assert.ok(!train.has(v), `validation user ${v} also trained the search weights`);
        const hot = new Set(res.entityIds);
        for (const v of [...res.validationIds, ...res.searchTrainIds]) assert.ok(hot.has(v));
        assert.equal(res.stats.validationEntities, res.validationIds.length);
      } else {
        assert.deepEqual(res.validationIds, []);
      }
    });
  }

  it('only hot entities (minEvents or more in the history) train; a given bias filter prior is recorded as is', async () => {
    const prior = { user: { variance: 0.7, drift: 0.001 }, item: { variance: 0, drift: 0.03 } };
    const res = await trainFromEvents({ kind: 'deepfm', events, ...TINY, epochs: 1, minEvents: 25, biasFilter: prior });
    assert.equal(res.biasFit, undefined);
    assert.deepEqual(res.bundle.architecture.biasFilter, prior);
    const counts = new Map<string, number>();
    for (const e of events) counts.set(e.itemId, (counts.get(e.itemId) ?? 0) + 1);
    const hot = [...counts].filter(([, c]) => c >= 25).map(([id]) => id);
    assert.ok(hot.length > 0 && hot.length < counts.size, 'some items are cold');
    assert.deepEqual([...res.entityIds].sort(), hot.sort());
    assert.equal(
      res.stats.rows,
      hot.reduce((s, id) => s + counts.get(id)!, 0),
    );
  });

  it('a history that leaves too few hot entities refuses before training, naming the flags and counts', async () => {
    // The near-chance case: the default --min-events 40 leaves 16 hot items in this history.
    const counts = new Map<string, number>();
    for (const e of events) counts.set(e.itemId, (counts.get(e.itemId) ?? 0) + 1);
    const hot = [...counts.values()].filter((c) => c >= 40);
    assert.ok(hot.length < HISTORY_MINIMUM.entities);
    const rows = hot.reduce((a, b) => a + b, 0);
    for (const kind of ['deepfm', 'emerg'] as const) {
      const { minEvents: _m, ...rest } = TINY;
      await assert.rejects(trainFromEvents({ kind, events, ...rest }), (err: unknown) => {
        assert.ok(err instanceof ThawError && err.code === 'HISTORY_TOO_THIN', String(err));
        assert.equal(
          err.message,
          `history too thin: --min-events 40 leaves ${hot.length} hot items (${rows.toLocaleString('en-US')} rows) in a history of 3,000 events; ` +
            'at least 20 hot items and 1,000 rows are needed: lower --min-events or give a longer history (raise --history-fraction or --history-events)',
        );
        return true;
      });
    }
  });

  it('coldnas refuses a history whose hot users leave its structure search fewer than 5 validation users', async () => {
    // 26 hot users (minEvents 10): 16 with 60 rows, 10 with 15; only the 16 with more than a query
    // set (20 rows) are episodes, and a quarter of 16 is 4 validation users.
    const plan = [...Array.from({ length: 16 }, () => 60), ...Array.from({ length: 10 }, () => 15)];
    const thin: LabelledEvent[] = [];
    plan.forEach((n, u) => {
      for (let i = 0; i < n; i++) thin.push({ ...events[thin.length]!, userId: `u${u}` });
    });
    thin.sort((a, b) => a.timeMs - b.timeMs);
    const opts = { kind: 'coldnas', events: thin, ...TINY, minEvents: 10 } as const;
    await assert.rejects(trainFromEvents(opts), (err: unknown) => {
      assert.ok(err instanceof ThawError && err.code === 'HISTORY_TOO_THIN', String(err));
      assert.match(err.message, /ColdNAS's structure search: 16 of the 26 hot users \(--min-events 10\) have more than 20 rows, which holds out 4 validation users/);
      assert.match(err.message, /at least 5 are needed: give a longer history \(raise --history-fraction or --history-events\)$/);
      return true;
    });
    // Without a search (--search-epochs 0) nothing is chosen on validation users: it trains.
    const res = await trainFromEvents({ ...opts, searchEpochs: 0, epochs: 1 });
    assert.equal(res.stats.entities, 26);
  });

  it('bad options are ConfigErrors naming the key', async () => {
    const cases: [Partial<EventTrainerOptions>, string][] = [
      [{ kind: 'nope' as 'deepfm' }, 'kind'],
      [{ minEvents: 1 }, 'minEvents'],
      [{ epochs: -1 }, 'epochs'],
      [{ metaEpochs: 1.5 }, 'metaEpochs'],
      [{ validationFraction: 1 }, 'validationFraction'],
      [{ innerLr: 0 }, 'innerLr'],
      [{ lr: -0.1 }, 'lr'],
      [{ events: [] }, 'events'],
      [{ biasFilter: { user: { variance: -1, drift: 0 }, item: { variance: 0, drift: 0 } } }, 'biasFilter'],
      [{ events: [events[1]!, events[0]!] }, 'events'],
      [
        {
          kind: 'coldnas',
          layout: new EventEncoder({
            side: 'item',
            vocab: 8,
            itemFields: [],
            fields: [
              { name: 'item', source: 'entity', slots: 1 },
              { name: 'user', source: 'other', slots: 1 },
            ],
          }).layout,
        },
        'layout',
      ],
    ];
    for (const [bad, key] of cases) {
      await assert.rejects(
        trainFromEvents({ kind: 'deepfm', events, ...TINY, ...bad }),
        (err: unknown) => err instanceof ConfigError && err.key === key,
        `expected ConfigError(${key}) for ${JSON.stringify(Object.keys(bad))}`,
      );
    }
  });
});
