/**
 * The replay of a stream evaluation: every side's worker of every family, in lockstep, through the
 * production path (consumers/processor.ts BatchProcessor, the adapters built from releases by
 * adapters/registry.ts, the safeguard, the cross-side read), on one in-process store.
 *
 * - Lockstep. The stream is cut into micro-batches in which no user and no item appears twice (a
 *   new batch starts at the first repeat). Every processor prepares a batch from the store as the
 *   previous batch left it, then every processor persists: so each event is scored with its own
 *   entity's state and the other side's entity as the two workers had them just before the event,
 *   never after (the limit of two workers without lag; a lagging reader gets older states through
 *   the same read rule, consumers/cross-side.ts). A batch never straddles the history's end.
 * - History. Workers replay the history (prior counts start at the stream's first event) with the
 *   releases trained on it; their rows are dropped (the releases saw those labels) and their
 *   safeguard is off (it would learn from in-sample scores). From the history's end on, rows go to
 *   the sink and each adapter is safeguarded, as a worker deployed then would be.
 * - Releases that keep learning. From the history's end, an online learner per family
 *   (trainers/online/, the learners `thaw train --online` runs; ColdNAS has none and stays frozen)
 *   learns from every event once the workers have scored it; every `syncEvery` events it publishes
 *   a release, which the workers take at the next batch boundary, keeping entity states (the
 *   releases declare `keep`), exactly as a worker takes a release between micro-batches.
 */
import { createAdapterFromRelease, type ReleaseAdapterOptions } from '../../adapters/registry.js';
import type { Adapter } from '../../adapters/types.js';
import type { PredictionSink } from '../../analytics/types.js';
import { BatchProcessor, type BatchItem, type BatchResult, type PreparedBatch } from '../../consumers/processor.js';
import { ThawError } from '../../lib/errors.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import type { Progress } from '../../lib/progress.js';
import { MemoryEntityStore } from '../../model-store/memory-store.js';
import type { LoadedRelease } from '../../model-store/releases.js';
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { learnerFromRelease, type LearnerOptions } from '../../trainers/online/factory.js';
import type { OnlineLearner } from '../../trainers/online/learner.js';
import { FmOnlineLearner } from '../../trainers/online/fm-learner.js';
import { FAMILY_ADAPTER, FAMILY_SIDES, namespaceOf, PARTNER, type Family } from './families.js';
import { inMemoryRelease, type FamilyRelease } from './releases.js';
import { DISCARD_SINK } from './sinks.js';

/** Options of `replayLockstep`. */
export interface LockstepOptions {
  /** The stream, in time order. */
  events: readonly LabelledEvent[];
  /** Events [0, historyN) are the history (trained the releases); rows are scored from historyN on. */
  historyN: number;
  /** The families to run, with their history releases. */
  families: readonly FamilyRelease[];
  /** Sides whose rows are written (workers of both sides run, for the cross-side read). */
  sides: readonly Side[];
  /** Events between two online releases; 0 keeps the history releases (frozen). */
  syncEvery: number;
  /** Where scored rows go. */
  sink: PredictionSink;
  /** Largest micro-batch (count). @default 512 */
  maxBatch?: number;
  /** Options of the adapters (adapters/registry.ts, as `thaw run`'s `adapterOptions`), the none over a meta release included. @default each adapter's */
  adapterOptions?: ReleaseAdapterOptions;
  /** Options of the online learners, as `thaw train --online`'s. @default their defaults */
  learnerOptions?: LearnerOptions;
  /** Adapters read the other side's fresh state (as `thaw run --cross-adapter auto`); false: as `--cross-adapter off`. @default true */
  crossSide?: boolean;
  progress?: Progress;
  signal?: AbortSignal;
  logger?: Logger;
  /**
   * Called once the replay is done with what the workers left behind: the store of every family's
   * states and each family's last release (`thaw demo` writes the FM family's for `thaw serve --demo`).
   * @default none
   */
  onDone?: (final: LockstepFinal) => Promise<void>;
}

/** The states and releases the replay ends with. */
export interface LockstepFinal {
  store: MemoryEntityStore;
  releases: ReadonlyMap<Family, LoadedRelease>;
}

/** A release the workers took during the replay. */
export interface ReleaseSwitch {
  family: Family;
  /** Release id the rows record. */
  release: string;
  /** Stream position of the first event scored with it. */
  offset: number;
}

export interface LockstepResult {
  /** Events replayed (the history included). */
  events: number;
  /** Releases taken after the history's, in order. */
  switches: ReleaseSwitch[];
  /** Families without an online learner (their release stayed the history's). */
  frozen: Family[];
  /** Events scored with the other side's state / refused one newer than the event (summed over workers). */
  crossRead: number;
  crossRefused: number;
  /** Wall time of the replay, of which the online learners took `learnMs`. */
  ms: number;
  learnMs: number;
}

interface Worker {
  family: Family;
  side: Side;
  name: string;
  proc: BatchProcessor;
}

/** Replays the stream (see the file comment). */
export async function replayLockstep(opts: LockstepOptions): Promise<LockstepResult> {
  const log = opts.logger ?? silentLogger;
  const { events, historyN } = opts;
  const maxBatch = opts.maxBatch ?? 512;
  const store = new MemoryEntityStore();
  const hasPartner = opts.families.some((f) => f.family === PARTNER.family);
  const current = new Map<Family, LoadedRelease>(opts.families.map((f) => [f.family, f.release]));
  let workers: Worker[] = [];
  const adapters: Adapter[] = [];

  const build = (scored: boolean): void => {
    for (const a of adapters.splice(0)) a.dispose?.();
    workers = [];
    for (const [family, release] of current) {
      for (const side of FAMILY_SIDES[family]) {
        for (const name of [FAMILY_ADAPTER[family], 'none']) {
          const adapter = createAdapterFromRelease(name, side, release, opts.adapterOptions);
          adapters.push(adapter);
          const other: Side = side === 'user' ? 'item' : 'user';
          const reads = name !== 'none' && hasPartner && opts.crossSide !== false;
          const proc = new BatchProcessor({
            adapter,
            store,
            sink: scored && opts.sides.includes(side) ? opts.sink : DISCARD_SINK,
            scope: { namespace: namespaceOf(family), side, adapter: name },
            ...(reads ? { cross: { scope: { namespace: namespaceOf(PARTNER.family), side: other, adapter: PARTNER.adapter } } } : {}),
            ...(scored ? {} : { safeguard: false as const }),
            logger: log,
          });
          workers.push({ family, side, name, proc });
        }
      }
    }
  };

  const t0 = performance.now();
  let learnMs = 0;
  const switches: ReleaseSwitch[] = [];
  const learners = new Map<Family, OnlineLearner>();
  const frozen: Family[] = [];
  let crossRead = 0;
  let crossRefused = 0;
  let sinceSync = 0;
  build(historyN === 0);
  if (historyN === 0) startLearners();

  function startLearners(): void {
    if (opts.syncEvery <= 0) return;
    for (const [family, release] of current) {
      if (family === 'coldnas') {
        frozen.push(family);
        continue;
      }
      // The FM learner's replicas learn by the rule the workers run: the same adapter options.
      const fmAdapter = opts.adapterOptions?.['fm-adagrad'];
      const learnerOpts: LearnerOptions = { ...opts.learnerOptions, fm: { ...opts.learnerOptions?.fm, ...(fmAdapter === undefined ? {} : { adapter: fmAdapter }) } };
      const learner = learnerFromRelease(release, family, FAMILY_SIDES[family][0] ?? 'item', learnerOpts);
      // The FM learner keeps replicas of entities: it replays the history into them first, as its
      // replicas of a trainer that had followed the stream would hold.
      if (learner instanceof FmOnlineLearner) learner.warm(events.slice(0, historyN));
      learners.set(family, learner);
    }
  }

  let at = 0;
  while (at < events.length) {
    if (opts.signal?.aborted === true) throw new ThawError('LIFECYCLE', 'stream evaluation interrupted');
    if (at === historyN && historyN > 0) {
      build(true);
      startLearners();
    }
    const end = batchEnd(events, at, at < historyN ? historyN : events.length, maxBatch);
    const items: BatchItem[] = [];
    for (let j = at; j < end; j++) items.push({ offset: j, event: events[j] as LabelledEvent });
    const prepared: PreparedBatch[] = [];
    for (const w of workers) prepared.push(await w.proc.prepare(items));
    for (let q = 0; q < workers.length; q++) {
      const res: BatchResult = await (workers[q] as Worker).proc.persist(prepared[q] as PreparedBatch);
      crossRead += res.crossRead;
      crossRefused += res.crossRefused;
    }
    if (at >= historyN && learners.size > 0) {
      const tl = performance.now();
      const batch = events.slice(at, end);
      for (const l of learners.values()) l.observe(batch);
      sinceSync += end - at;
      if (sinceSync >= opts.syncEvery && end < events.length) {
        sinceSync = 0;
        for (const [family, l] of learners) {
          l.flush();
          const version = `on-${end}`;
          const rel = inMemoryRelease(family, version, l.bundle(`${family}/${version}`), current.get(family)?.manifest.version ?? null);
          current.set(family, rel);
          switches.push({ family, release: `${family}/${version}`, offset: end });
        }
        build(true);
      }
      learnMs += performance.now() - tl;
    }
    opts.progress?.tick(end - at);
    at = end;
  }
  for (const a of adapters.splice(0)) a.dispose?.();
  await opts.onDone?.({ store, releases: current });
  log.info('stream replay done', { events: events.length, switches: switches.length, crossRead, crossRefused, learnMs: Math.round(learnMs) });
  return { events: events.length, switches, frozen, crossRead, crossRefused, ms: performance.now() - t0, learnMs };
}

/** End of the micro-batch starting at `from`: before the first repeated user or item, `limit` or `maxBatch` events. */
export function batchEnd(events: readonly LabelledEvent[], from: number, limit: number, maxBatch: number): number {
  const users = new Set<string>();
  const items = new Set<string>();
  let j = from;
  while (j < limit && j - from < maxBatch) {
    const e = events[j] as LabelledEvent;
    if (users.has(e.userId) || items.has(e.itemId)) break;
    users.add(e.userId);
    items.add(e.itemId);
    j++;
  }
  return j;
}
