/**
 * The cross-side read: which state of the OTHER side's entity a worker may use to score an event.
 *
 * Each side's worker writes only its own entities; it reads the other side's as that side's worker
 * last wrote them (the user worker has been adapting a user who appeared a minute ago; the item
 * worker scoring that user's events should know what it learned). Predict-then-learn must stay
 * honest through that read: the state used must never include the event being scored, or any event
 * after it in the other entity's stream. The two workers share no offsets, only event times and
 * event ids, so a state records, besides the time of its newest event (`lastEventMs`), the view it
 * had before each of its latest events (`recent`: the event's key, a hash of its id, its time, the
 * view before it; written by the BatchProcessor). For an event e at time t the rule is:
 *
 *   1. the state's newest event is older than t: use the state (nothing at t or after is in it);
 *   2. else, if the recent views reach back past t (the event before the oldest one is older than
 *      t, so every event of the entity at t or after is listed), find the first listed event that is
 *      e itself or is after t: use the view before it (the state without e and without anything
 *      after). When that view was not recorded, an earlier listed view is used (it holds even less).
 *      When no listed event is e or after t, e has not reached the other worker yet, and nothing
 *      after it has: use the state;
 *   3. else nothing: the entity counts as cold for this event (counted as refused).
 *
 * Events of the same millisecond are told apart by their ids: a stream whose clock is coarse (a
 * dataset stamped to the second, where a user rates ten films "at once") still sees the user's
 * earlier events of that second, exactly as a learner reading the stream in order would. A state
 * keeps at most `maxViews` recent views and none older than `windowMs` before its newest event, so
 * a reader lagging further behind than that in event time sees the entity cold (counted).
 * A key collision can only make a read more conservative (an event taken for e), never leak.
 */
import { fnv1a32 } from '../models/features.js';
import type { EntityState, RecentViews } from '../model-store/types.js';

/** Key of an event in the recent views: the FNV-1a hash of its id. */
export function eventKey(eventId: string): number {
  return fnv1a32(eventId);
}

/** What `viewAt` decided for one event. */
export type CrossRead = { view: Float32Array; refused: false } | { view: undefined; refused: boolean };

const COLD: CrossRead = { view: undefined, refused: false };
const REFUSED: CrossRead = { view: undefined, refused: true };

/** The view of `state` that the event (`eventMs`, `key`) may use (see the file comment). */
export function viewAt(state: EntityState | undefined, eventMs: number, key: number): CrossRead {
  if (state === undefined) return COLD;
  if (state.lastEventMs < eventMs) return { view: state.params, refused: false };
  const recent = state.recent;
  if (recent === undefined || recent.baseMs >= eventMs) return REFUSED;
  const entries = recent.entries;
  for (let j = 0; j < entries.length; j++) {
    const e = entries[j];
    if (e === undefined || (e.key !== key && e.eventMs <= eventMs)) continue;
    for (let i = j; i >= 0; i--) {
      const before = entries[i]?.before;
      if (before !== undefined) return { view: before, refused: false };
    }
    return REFUSED;
  }
  return { view: state.params, refused: false };
}

/** Bounds of the recent views a state keeps. */
export interface RecentViewOptions {
  /** Most views kept per entity (count). @default 16 */
  maxViews?: number;
  /** Views of events older than this before the entity's newest event are dropped (event-time ms). @default 60_000 */
  windowMs?: number;
}

export const RECENT_VIEW_DEFAULTS = { maxViews: 16, windowMs: 60_000 } as const;

/**
 * Appends one applied event to `recent` (in place) and drops what the bounds no longer keep. `before`
 * is the entity's view before the event, if observed.
 */
export function recordView(recent: RecentViews, key: number, eventMs: number, before: Float32Array | undefined, newestMs: number, opts: Required<RecentViewOptions>): void {
  recent.entries.push({ key, eventMs, before });
  while (recent.entries.length > 0) {
    const oldest = recent.entries[0];
    if (oldest === undefined || (recent.entries.length <= opts.maxViews && oldest.eventMs >= newestMs - opts.windowMs)) break;
    recent.entries.shift();
    recent.baseMs = Math.max(recent.baseMs, oldest.eventMs);
  }
}
