/**
 * The safeguard over a meta-learned adapter (consumers/safeguard.ts, adapters/fixed-adaptive.ts):
 * its baseline is its own `none`'s score, so a harmful setting ends at the none. Same shape as
 * the FM's test (safeguard.test.ts), on a small fixed/adaptive release trained on the history.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createAdapterFromRelease } from '../../../adapters/registry.js';
import type { Adapter } from '../../../adapters/types.js';
import { BUCKETS } from '../../../analytics/types.js';
import { initBackend } from '../../../models/backend.js';
import type { LoadedRelease } from '../../../model-store/releases.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { SyntheticStream } from '../../../sources/synthetic.js';
import { trainFromEvents } from '../../../trainers/event-trainer.js';
import { bucketCurve } from './safeguard-curve.js';

await initBackend('wasm');

const TOTAL = 40_000;
const HISTORY = 10_000;
let events: LabelledEvent[] = [];
let release: LoadedRelease;

before(async () => {
  events = [...new SyntheticStream({ seed: 21, events: TOTAL, users: 3000, items: 1500, newEntityFraction: 0.6 }).events()];
  // Short training and a given bias filter prior (the fit is trainers/bias-fit.ts's own test): seconds.
  const res = await trainFromEvents({
    kind: 'fixed-adaptive',
    events: events.slice(0, HISTORY),
    seed: 2,
    epochs: 1,
    metaEpochs: 1,
    dim: 8,
    vocab: 1 << 14,
    biasFilter: { user: { variance: 0.05, drift: 0 }, item: { variance: 0.1, drift: 0 } },
  });
  release = { manifest: { model: 'fixed-adaptive', version: 'v1', parent: null, createdAtMs: 0, architecture: res.bundle.architecture, metrics: {}, files: {} }, files: res.bundle.files };
});

async function curve(adapter: Adapter, safeguard: boolean): Promise<Map<string, { auc: number; n: number }>> {
  try {
    return await bucketCurve(adapter, events, HISTORY, safeguard);
  } finally {
    adapter.dispose?.();
  }
}

describe('safeguard over a meta-learned adapter (fixed-adaptive)', () => {
  it('a deliberately harmful step size ends within 0.3 AUC points of its none in every bucket of 500+ rows; without it, it does not', async () => {
    const none = await curve(createAdapterFromRelease('none', 'user', release), true);
    // 50× the meta-learned Meta-SGD rates, and a bias filter that jumps by nats per event.
    const harmful = { 'fixed-adaptive': { lrScale: 50, biasVariance: 40, biasDrift: 5 } };
    const guarded = await curve(createAdapterFromRelease('fixed-adaptive', 'user', release, harmful), true);
    const unguarded = await curve(createAdapterFromRelease('fixed-adaptive', 'user', release, harmful), false);
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
});
