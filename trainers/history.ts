/**
 * The training history of every `thaw train` command that trains from a source, in one place:
 *
 * - how long it is: `--history-fraction F` (the first share F of the source's events) or
 *   `--history-events N` (the first N events), never both; the first half by default;
 * - which of its entities train: those with `--min-events` events or more in it (the hot ones);
 * - when it is too thin to train a release worth publishing (`checkHistory`): a trainer calls it
 *   once it knows its hot entities, before it fits anything, and stops with HISTORY_TOO_THIN.
 *
 * Messages name the command-line flags, since that is where a user fixes a thin history; the
 * trainers' own option names (`minEvents`, the FM's `minCount`) map one to one onto them.
 */
import { ConfigError, ThawError } from '../lib/errors.js';
import type { Side } from '../schemas/types.js';

/**
 * Share of the source's events that forms the history when neither `--history-fraction` nor
 * `--history-events` is given: the first half. The rest of the stream is what workers score and
 * adapt on afterwards, so a default that trains on all of it would measure the warm-up curves on
 * events the release has already seen.
 */
export const DEFAULT_HISTORY_FRACTION = 0.5;

/**
 * Default `--min-events` of each trainer. They differ because the trainers need different things
 * of a training entity:
 * - `fm`: 20, the FM trainer's default since it was written. It trains a vector and a bias per hot
 *   entity beside the shared table (their mean becomes the cold-entity init), so each needs events
 *   of its own; 20 is K, the papers' warm batch size.
 * - `meta` (deepfm, metaemb, emerg, coldnas, fixed-adaptive): 40 = 2·K. One meta-learning task is
 *   K = 20 support rows plus K query rows (the papers' warm batch size); an entity with fewer rows
 *   cannot form one.
 */
export const DEFAULT_MIN_EVENTS = { fm: 20, meta: 40 } as const;

export type HistoryTrainer = keyof typeof DEFAULT_MIN_EVENTS;

/** The lowest `--min-events` each trainer accepts: a meta-learning task needs a support and a query row. */
export const MIN_EVENTS_FLOOR: Readonly<Record<HistoryTrainer, number>> = { fm: 1, meta: 2 };

/**
 * The least a history must give a trainer; below any of them it refuses (HISTORY_TOO_THIN) instead
 * of publishing a release fitted on a handful of entities.
 */
export const HISTORY_MINIMUM = {
  /**
   * Hot (training) entities. Every meta trainer steps over 16 tasks (entities) at a time, so 20 is
   * barely more than one step per epoch; the cold-entity init they learn (and the FM's mean entity
   * vector) is an average over these entities. Below 20 it is the average of a handful.
   */
  entities: 20,
  /**
   * Rows of the hot entities (the training rows), which fit the shared parameters. A floor, not a
   * recipe: over 1,000 rows with balanced labels the standard error of an AUC near 0.6 is already
   * about 0.02 (Hanley–McNeil), the size of the differences the warm-up curves are read for.
   */
  rows: 1000,
  /**
   * ColdNAS only: validation users of its structure search (a quarter of the hot users with more
   * rows than one query set). The search picks one op per position by how these users' query loss
   * moves; with fewer than 5 the pick follows the noise of a few users (a judgment call, like the
   * other two floors: none of them was tuned on data).
   */
  validationEntities: 5,
} as const;

/** How long the history is: a share of the source's events, or a count of them. */
export type HistoryLength = { fraction: number } | { events: number };

/** The history options of a `thaw train` command, as numbers (undefined = not given). */
export interface HistoryOptions {
  /** `--history-fraction`: share of the source's events, 0 < F < 1. @default DEFAULT_HISTORY_FRACTION */
  historyFraction?: number | undefined;
  /** `--history-events`: number of events, an integer >= 1. Excludes historyFraction. @default none */
  historyEvents?: number | undefined;
  /** `--min-events`: events an entity needs in the history to train, an integer >= MIN_EVENTS_FLOOR[trainer]. @default DEFAULT_MIN_EVENTS[trainer] */
  minEvents?: number | undefined;
}

/** The history options resolved: defaults filled in, values checked. */
export interface ResolvedHistory {
  length: HistoryLength;
  minEvents: number;
}

/**
 * Fills defaults and checks the history options the same way for every trainer; throws ConfigError
 * naming the flag. `eventsFlag` names the flag that gave `historyEvents` (`thaw train fm` still
 * accepts the deprecated `--max-events`), so a conflict names what the user typed.
 */
export function resolveHistory(opts: HistoryOptions, trainer: HistoryTrainer, eventsFlag = 'history-events'): ResolvedHistory {
  const { historyFraction: fraction, historyEvents: events } = opts;
  if (fraction !== undefined && events !== undefined) {
    throw new ConfigError(
      eventsFlag,
      `--${eventsFlag} ${events} and --history-fraction ${fraction} are mutually exclusive: give the history as a share of the source (--history-fraction) or as a count of events (--${eventsFlag}), not both`,
    );
  }
  if (fraction !== undefined && !(Number.isFinite(fraction) && fraction > 0 && fraction < 1)) {
    throw new ConfigError('history-fraction', `--history-fraction must be in (0, 1), got ${String(fraction)}`);
  }
  if (events !== undefined && !(Number.isSafeInteger(events) && events >= 1)) {
    throw new ConfigError(eventsFlag, `--${eventsFlag} must be an integer >= 1, got ${String(events)}`);
  }
  const minEvents = opts.minEvents ?? DEFAULT_MIN_EVENTS[trainer];
  const floor = MIN_EVENTS_FLOOR[trainer];
  if (!(Number.isSafeInteger(minEvents) && minEvents >= floor)) {
    throw new ConfigError('min-events', `--min-events must be an integer >= ${floor}, got ${String(minEvents)}`);
  }
  return { length: events !== undefined ? { events } : { fraction: fraction ?? DEFAULT_HISTORY_FRACTION }, minEvents };
}

/**
 * Events of a source of `streamEvents` events that form the history: the first floor(F · n) for a
 * fraction, the first N (at most n) for a count. Throws ConfigError when a fraction leaves none.
 */
export function historyEventCount(length: HistoryLength, streamEvents: number): number {
  if ('events' in length) return Math.min(length.events, streamEvents);
  const n = Math.floor(streamEvents * length.fraction);
  if (n === 0) throw new ConfigError('history-fraction', `--history-fraction ${length.fraction} leaves no history events out of ${streamEvents}`);
  return n;
}

/** What a trainer found in its history, for `checkHistory`. */
export interface HistoryCounts {
  /** Side of the hot entities (named in the message). */
  side: Side;
  /** The `--min-events` in force. */
  minEvents: number;
  /** Events in the history. */
  historyEvents: number;
  /** Hot entities (at least minEvents events in the history). */
  entities: number;
  /** Rows of the hot entities (the training rows). */
  rows: number;
  /**
   * ColdNAS's structure search only: hot users with more rows than one query set (`eligible`) and
   * how many of them are held out as validation users (`validation`). @default not checked
   */
  search?: { eligible: number; validation: number; queryRows: number };
}

const count = (n: number): string => n.toLocaleString('en-US');

/**
 * Throws ThawError('HISTORY_TOO_THIN') when the history gives fewer hot entities, training rows or
 * (ColdNAS) validation users than HISTORY_MINIMUM; the message names the flags and the counts.
 */
export function checkHistory(c: HistoryCounts): void {
  const min = HISTORY_MINIMUM;
  const hot = `hot ${c.side}s`;
  const longer = 'give a longer history (raise --history-fraction or --history-events)';
  if (c.entities < min.entities || c.rows < min.rows) {
    throw new ThawError(
      'HISTORY_TOO_THIN',
      `history too thin: --min-events ${c.minEvents} leaves ${count(c.entities)} ${hot} (${count(c.rows)} rows) in a history of ${count(c.historyEvents)} events; ` +
        `at least ${count(min.entities)} ${hot} and ${count(min.rows)} rows are needed: lower --min-events or ${longer}`,
    );
  }
  const s = c.search;
  if (s !== undefined && s.validation < min.validationEntities) {
    // Only users with more rows than a query set are episodes; lowering --min-events below that adds none.
    const lower = c.minEvents > s.queryRows + 1 ? `lower --min-events (down to ${s.queryRows + 1}) or ` : '';
    throw new ThawError(
      'HISTORY_TOO_THIN',
      `history too thin for ColdNAS's structure search: ${count(s.eligible)} of the ${count(c.entities)} ${hot} (--min-events ${c.minEvents}) have more than ${s.queryRows} rows, ` +
        `which holds out ${count(s.validation)} validation users in a history of ${count(c.historyEvents)} events; at least ${min.validationEntities} are needed: ${lower}${longer}`,
    );
  }
}
