/**
 * The ranker of RocketQA's denoising and pseudo-labels (retrieval/hard-negatives.ts): the project's
 * CTR model, the shared FM that `thaw train fm` fits (trainers/fm-trainer.ts), trained on the same
 * training window the retriever trains on, with its hot users' and items' trained parameters kept
 * (what the `fm-adagrad` adapters learn online); other users and items get their side's prior, as
 * a brand-new entity does in serving. Its score is P(label = 1 | user, item).
 *
 * Training options, fixed (not chosen on the test window): 3 epochs, no cross table and given bias
 * priors (the fit of bias-fit.ts replays the history several times; it is skipped here to keep the
 * protocol's run time down), everything else trainFm's defaults.
 */
import type { Features, LabelledEvent } from '../../schemas/types.js';
import type { Ranker } from '../../retrieval/types.js';
import { trainFm } from '../../trainers/fm-trainer.js';
import { encodeEventInto, eventFeatureCount, userFeatureCount } from '../../models/features.js';
import { sigmoid } from '../../models/fm.js';
import type { SplitItem } from './split.js';

/** Trains the FM on `events` (a training window) and returns a ranker over `items` (a catalogue). */
export async function trainFmRanker(events: readonly LabelledEvent[], items: readonly SplitItem[], opts: { seed?: number; epochs?: number } = {}): Promise<Ranker> {
  const res = await trainFm(events, {
    epochs: opts.epochs ?? 3,
    seed: opts.seed ?? 1,
    crossBuckets: 0,
    biasFilter: { user: { variance: 0, drift: 0 }, item: { variance: 0, drift: 0 } },
    keepEntities: true,
  });
  const { model } = res;
  const entities = res.entities ?? { user: new Map<string, Float32Array>(), item: new Map<string, Float32Array>() };
  const buckets = model.buckets;
  const coldUser = model.coldView('user');
  const coldItem = model.coldView('item');
  const itemViews = items.map((it) => entities.item.get(it.id) ?? coldItem);
  let scratch = new Int32Array(64);
  return {
    score(userId: string, userFeatures: Features, idx: readonly number[], out: Float32Array): void {
      const uView = entities.user.get(userId) ?? coldUser;
      idx.forEach((i, j) => {
        const item = items[i];
        if (!item) throw new RangeError(`catalogue index ${i} out of range`);
        const ev: LabelledEvent = { eventId: '', timeMs: 0, userId, itemId: item.id, label: 0, userFeatures, itemFeatures: item.features };
        const c = eventFeatureCount(ev);
        if (c > scratch.length) scratch = new Int32Array(c * 2);
        const n = encodeEventInto(ev, buckets, scratch);
        out[j] = sigmoid(model.logit(scratch, n, userFeatureCount(ev), uView, itemViews[i] ?? coldItem));
      });
    },
  };
}
