/**
 * Where the online trainer starts: the newest release of its lineage (same group and topic), else
 * the model's current release as a new lineage's base; with `resume`, exactly the newest checkpoint
 * of the lineage (trainers/online/resume.ts), else that release with its optimiser state.
 */
import { ThawError, errorMessage } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { ReleaseStore } from '../../model-store/releases.js';
import type { Side } from '../../schemas/types.js';
import type { CheckpointData } from '../checkpoint.js';
import { learnerFromRelease, type LearnerOptions } from './factory.js';
import type { OnlineKind, OnlineLearner } from './learner.js';
import { newestOwnRelease, type PartitionOffsets } from './offsets.js';
import { onlineCheckpointDir } from './publish.js';
import { checkpointOf, newestExactCheckpoint, restoreLearner } from './resume.js';

export interface LineageInput extends LearnerOptions {
  store: ReleaseStore;
  model: string;
  groupId: string;
  topic: string;
  side: Side;
  kind: OnlineKind;
  resume?: boolean;
}

/** The trainer's state at start. */
export interface LineageStart {
  learner: OnlineLearner;
  /** The lineage's newest release (the next one's parent), or the base. */
  parent: string;
  base: string | null;
  positions: PartitionOffsets;
  publishedPositions: PartitionOffsets;
  baseEvents: number;
  baseTasks: number;
  sinceRelease: number;
  skippedCovered: number;
  poison: number;
  /** The attached state saved with the checkpoint resumed from. */
  attached: CheckpointData | undefined;
}

/** Throws RELEASE_NOT_FOUND (no release at all), CHECKPOINT_MISSING (`resume` of a lineage without checkpoint). */
export async function loadLineage(o: LineageInput, log: Logger): Promise<LineageStart> {
  const { store, model, groupId, topic } = o;
  const own = newestOwnRelease(await store.list(model), groupId, topic);
  let version: string;
  if (own !== undefined) {
    version = own.manifest.version;
  } else {
    const cur = await store.current(model);
    if (cur === undefined) throw new ThawError('RELEASE_NOT_FOUND', `no release of model ${model} in ${store.root}: publish an offline one first (thaw train ...)`);
    version = cur;
  }
  const learner = learnerFromRelease(await store.load(model, version), o.kind, o.side, o);
  const start: LineageStart = {
    learner,
    parent: version,
    base: own === undefined ? version : own.info.base,
    positions: { ...own?.info.offsets },
    publishedPositions: { ...own?.info.offsets },
    baseEvents: own?.info.events ?? 0,
    baseTasks: own?.info.metaTasks ?? 0,
    sinceRelease: 0,
    skippedCovered: 0,
    poison: 0,
    attached: undefined,
  };
  const dir = onlineCheckpointDir(store, model, groupId);
  if (o.resume === true) {
    const ck = newestExactCheckpoint(dir, groupId, topic, log);
    if (ck !== undefined) {
      restoreLearner(learner, ck);
      const m = ck.meta;
      log.info('resumed exactly from a checkpoint', { file: ck.file, offsets: m.positions, lastRelease: version });
      return {
        ...start,
        positions: { ...m.positions },
        base: m.base,
        baseEvents: m.baseEvents,
        baseTasks: m.baseTasks,
        sinceRelease: m.sinceRelease,
        skippedCovered: m.skippedCovered,
        poison: m.poison,
        attached: ck.attached,
      };
    }
    if (own !== undefined) throw new ThawError('CHECKPOINT_MISSING', `--resume: the lineage of group ${groupId} has release ${version} but no exact checkpoint in ${dir}`);
    log.info('nothing to resume: a new lineage', { base: version });
  } else if (own !== undefined) {
    try {
      const ck = checkpointOf(dir, version);
      if (ck !== undefined) learner.restoreOptimizerState(ck.learner);
    } catch (err) {
      log.warn('optimiser checkpoint unreadable; starting the optimiser afresh', { error: errorMessage(err) });
    }
  }
  log.info('lineage loaded', { release: version, own: own !== undefined, offsets: start.positions, events: start.baseEvents });
  return start;
}
