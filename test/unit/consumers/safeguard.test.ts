import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createAdapter } from '../../../adapters/registry.js';
import type { Adapter } from '../../../adapters/types.js';
import { BUCKETS } from '../../../analytics/types.js';
import { Safeguard } from '../../../consumers/safeguard.js';
import type { FactorizationMachine } from '../../../models/fm.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { SyntheticStream } from '../../../sources/synthetic.js';
import { trainFm } from '../../../trainers/fm-trainer.js';
import { bucketCurve } from './safeguard-curve.js';

const TOTAL = 80_000;
const HISTORY = 20_000;
let events: LabelledEvent[] = [];
let fm: FactorizationMachine;

before(async () => {
  events = [...new SyntheticStream({ seed: 21, events: TOTAL, users: 4000, items: 2500, newEntityFraction: 0.6 }).events()];
  fm = (await trainFm(events.slice(0, HISTORY), { epochs: 2, seed: 2, buckets: 1 << 16, biasFilter: { user: { variance: 0.5, drift: 0.01 }, item: { variance: 0.5, drift: 0.003 } } })).model;
});

/** AUC per warm-up bucket (item side) of the events after the history, with each bucket's size. */
async function curve(adapter: Adapter, safeguard: boolean): Promise<Map<string, { auc: number; n: number }>> {
  return bucketCurve(adapter, events, HISTORY, safeguard);
}

describe('safeguard', () => {
  it('a deliberately harmful adapter ends within 0.3 AUC points of its none in every bucket of 500+ rows; without it, it does not', async () => {
    const none = await curve(createAdapter('none', 'item', fm), true);
    const harmful = { learningRate: 30, biasVariance: 40, biasDrift: 5 };
    const guarded = await curve(createAdapter('fm-adagrad', 'item', fm, harmful), true);
    const unguarded = await curve(createAdapter('fm-adagrad', 'item', fm, harmful), false);
    let big = 0;
    let hurt = 0;
    for (const b of BUCKETS) {
      const n = none.get(b);
      const g = guarded.get(b);
      const u = unguarded.get(b);
      if (n === undefined || g === undefined || u === undefined || n.n < 500) continue;
      big++;
      console.log(`bucket ${b} (n ${n.n}): none ${n.auc.toFixed(4)}, harmful guarded ${g.auc.toFixed(4)}, unguarded ${u.auc.toFixed(4)}`);
      assert.ok(g.auc >= n.auc - 0.003, `bucket ${b}: guarded ${g.auc} vs none ${n.auc}`);
      if (u.auc < n.auc - 0.003) hurt++;
    }
    assert.ok(big >= 4, `${big} buckets with 500+ rows`);
    assert.ok(hurt >= 3, 'the harmful settings do hurt without the safeguard (the test can fail)');
  });

  it('a good adapter keeps its lift', async () => {
    const none = await curve(createAdapter('none', 'item', fm), true);
    const guarded = await curve(createAdapter('fm-adagrad', 'item', fm), true);
    const unguarded = await curve(createAdapter('fm-adagrad', 'item', fm), false);
    for (const b of ['3-5', '6-10', '11-20', '21-50'] as const) {
      const n = none.get(b)?.auc ?? NaN;
      const g = guarded.get(b)?.auc ?? NaN;
      const u = unguarded.get(b)?.auc ?? NaN;
      console.log(`bucket ${b}: none ${n.toFixed(4)}, guarded ${g.toFixed(4)}, unguarded ${u.toFixed(4)}`);
      assert.ok(g >= u - 0.002, `bucket ${b}: guarded ${g} vs unguarded ${u}`);
      assert.ok(g > n + 0.005, `bucket ${b}: guarded ${g} vs none ${n}`);
    }
  });

  it('moves its weight to the better expert within its bucket, and starts trusting the adapter', () => {
    const sg = new Safeguard({ horizon: 1000, priorNats: 2, learningRate: 1 });
    const st = sg.initialState();
    assert.ok((sg.trust(st)['0'] ?? 0) > 0.85, 'head start of full trust');
    // The adapter is confidently wrong in bucket 3-5, right in bucket 6-10.
    for (let i = 0; i < 60; i++) {
      const y = i % 2;
      sg.step(st, 4, y === 1 ? 0.1 : 0.9, 0.5, y);
      sg.step(st, 8, y === 1 ? 0.9 : 0.1, 0.5, y);
    }
    const trust = sg.trust(st);
    assert.ok((trust['3-5'] ?? 1) < 0.01, `bad adapter switched off: ${trust['3-5']}`);
    assert.ok((trust['6-10'] ?? 0) > 0.99, `good adapter kept: ${trust['6-10']}`);
    assert.ok((trust['0'] ?? 0) > 0.85, 'other buckets untouched');
    // The switched-off bucket scores with the baseline.
    assert.ok(Math.abs(sg.step(st, 4, 0.1, 0.5, 1) - 0.5) < 0.01);
  });
});
