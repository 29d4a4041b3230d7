/**
 * The temporal split of the retrieval protocol: events in time order (stable: the source's order
 * breaks ties), the first `trainFraction` of them train, the rest test. Labels are the source's
 * (MovieLens: rating >= 4, sources/movielens.ts). An item is COLD when its first event is in the
 * test window (it did not exist for training), WARM otherwise.
 *
 * Evaluated users: those with at least one test positive on an item they did not interact with in
 * training. Their relevant set is those items; their history is their training positives in time
 * order; items they interacted with in training (any label) are excluded from their ranking.
 * The candidate set is every item of the catalogue (train and test windows), with its features.
 */
import type { Features, LabelledEvent } from '../../schemas/types.js';
import { ConfigError } from '../../lib/errors.js';

/** One catalogue item. */
export interface SplitItem {
  id: string;
  features: Features;
  /** First seen in the test window. */
  cold: boolean;
}

/** One interaction, with the item as a catalogue index. */
export interface SplitInteraction {
  userId: string;
  item: number;
  label: 0 | 1;
  timeMs: number;
}

/** One evaluated user. */
export interface SplitUser {
  userId: string;
  features: Features;
  /** Catalogue indices of the user's training positives, in time order. */
  history: number[];
  /** Catalogue indices the user interacted with in training (excluded from the ranking). */
  seen: Set<number>;
  /** Catalogue indices of the user's test positives (not in `seen`). */
  relevant: Set<number>;
}

export interface RetrievalSplit {
  items: SplitItem[];
  /** Training interactions in time order. */
  train: SplitInteraction[];
  /** The training window's events in time order (what a ranker trains on). */
  trainEvents: LabelledEvent[];
  /** Users' features (every user of either window). */
  userFeatures: Map<string, Features>;
  /** Users with test positives. */
  testUsers: SplitUser[];
  /** Time of the first test event; every training event is at or before it. */
  cutMs: number;
}

/** Events sorted by time, stably (the source's order breaks ties). */
export function sortByTime(events: readonly LabelledEvent[]): LabelledEvent[] {
  return events
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.timeMs - b.e.timeMs || a.i - b.i)
    .map((x) => x.e);
}

/**
 * The validation split of a protocol run: the training window alone, split again by time, its last
 * `validationFraction` of events (by time) the validation window. Hyper-parameters are chosen on it,
 * so the test window is never looked at until the final models are scored.
 */
export function buildValidationSplit(events: readonly LabelledEvent[], trainFraction: number, validationFraction: number): RetrievalSplit {
  if (!(validationFraction > 0 && validationFraction < 1)) throw new ConfigError('validationFraction', `must be in (0, 1), got ${validationFraction}`);
  const sorted = sortByTime(events);
  return buildRetrievalSplit(sorted.slice(0, Math.floor(sorted.length * trainFraction)), 1 - validationFraction);
}

/** Builds the split from events (any order; sorted stably by time). */
export function buildRetrievalSplit(events: readonly LabelledEvent[], trainFraction = 0.8): RetrievalSplit {
  if (!(trainFraction > 0 && trainFraction < 1)) throw new ConfigError('trainFraction', `must be in (0, 1), got ${trainFraction}`);
  const sorted = sortByTime(events);
  const cut = Math.floor(sorted.length * trainFraction);
  if (cut === 0 || cut === sorted.length) throw new ConfigError('source', `too few events (${sorted.length}) for a ${trainFraction} split`);
  const items: SplitItem[] = [];
  const itemIndex = new Map<string, number>();
  const userFeatures = new Map<string, Features>();
  const train: SplitInteraction[] = [];
  const test: SplitInteraction[] = [];
  sorted.forEach((e, q) => {
    let idx = itemIndex.get(e.itemId);
    if (idx === undefined) {
      idx = items.length;
      itemIndex.set(e.itemId, idx);
      items.push({ id: e.itemId, features: e.itemFeatures, cold: q >= cut });
    }
    if (!userFeatures.has(e.userId)) userFeatures.set(e.userId, e.userFeatures);
    (q < cut ? train : test).push({ userId: e.userId, item: idx, label: e.label === 1 ? 1 : 0, timeMs: e.timeMs });
  });
  const history = new Map<string, number[]>();
  const seen = new Map<string, Set<number>>();
  for (const t of train) {
    let s = seen.get(t.userId);
    if (!s) seen.set(t.userId, (s = new Set()));
    s.add(t.item);
    if (t.label === 1) {
      let h = history.get(t.userId);
      if (!h) history.set(t.userId, (h = []));
      h.push(t.item);
    }
  }
  const relevant = new Map<string, Set<number>>();
  for (const t of test) {
    if (t.label !== 1 || seen.get(t.userId)?.has(t.item)) continue;
    let r = relevant.get(t.userId);
    if (!r) relevant.set(t.userId, (r = new Set()));
    r.add(t.item);
  }
  const testUsers: SplitUser[] = [];
  for (const [userId, rel] of relevant) {
    testUsers.push({ userId, features: userFeatures.get(userId) ?? {}, history: history.get(userId) ?? [], seen: seen.get(userId) ?? new Set(), relevant: rel });
  }
  const first = test[0];
  return { items, train, trainEvents: sorted.slice(0, cut), userFeatures, testUsers, cutMs: first ? first.timeMs : Infinity };
}
