/**
 * The online trainer's checkpoints: versioned files beside the releases (one per release, named by
 * the release version, so names sort in training order), written by atomic rename BEFORE the release
 * is published and the consumer offsets committed, so every committed position has a checkpoint at
 * exactly that position. The newest `keep` are kept.
 *
 * A checkpoint holds the learner's whole training state where the kind can give it
 * (`OnlineLearner.trainingState`: fm) or its optimiser state alone; the trainer's positions and
 * counters; and the state of what is attached to the trainer (thaw distill learn: the soft-label
 * join's pending buffer and the soft-label offsets it corresponds to). `--resume` restores the
 * newest one: the trainer then seeks to its positions and trains on exactly as if never stopped.
 */
import { ThawError, errorMessage } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { listCheckpoints, readCheckpointFile, writeVersionedCheckpoint, type CheckpointData } from '../checkpoint.js';
import type { OnlineLearner } from './learner.js';
import type { PartitionOffsets } from './offsets.js';

/** State that lives beside the trainer and must be checkpointed with it (the soft-label join). */
export interface AttachedState {
  /** Its state now; called between chunks under the training lock, so it matches the trainer's positions. */
  save(): CheckpointData;
  /** Starts it: from the state saved with the checkpoint the trainer resumed from, or afresh (undefined). */
  start(restored: CheckpointData | undefined): Promise<void>;
}

/** The trainer's own part of a checkpoint's header. */
export interface TrainerCheckpointMeta {
  /** Release version the checkpoint belongs to (published right after it). */
  version: string;
  groupId: string;
  topic: string;
  /** True when the arrays hold the learner's whole training state (exact resume), false: its optimiser only. */
  exact: boolean;
  /** Next offset per partition: the state covers every event before. */
  positions: PartitionOffsets;
  sinceRelease: number;
  baseEvents: number;
  baseTasks: number;
  base: string | null;
  skippedCovered: number;
  poison: number;
  /** Header of the attached state. */
  attached?: Record<string, unknown>;
}

const ATTACHED = 'attached.';

/** Writes the checkpoint of `meta.version`; returns its path. */
export function saveTrainerCheckpoint(dir: string, meta: TrainerCheckpointMeta, learner: OnlineLearner, attached: AttachedState | undefined, keep: number): string {
  const arrays = new Map(learner.trainingState?.() ?? learner.optimizerState());
  const att = attached?.save();
  if (att !== undefined) for (const [k, a] of att.arrays) arrays.set(`${ATTACHED}${k}`, a);
  return writeVersionedCheckpoint(dir, meta.version, { meta: { ...meta, ...(att === undefined ? {} : { attached: att.meta }) }, arrays }, keep);
}

/** A checkpoint read back: the trainer's header, the learner's arrays, the attached state's. */
export interface TrainerCheckpoint {
  file: string;
  meta: TrainerCheckpointMeta;
  learner: Map<string, Float32Array>;
  attached: CheckpointData;
}

function split(file: string, data: CheckpointData): TrainerCheckpoint {
  const learner = new Map<string, Float32Array>();
  const attached = new Map<string, Float32Array>();
  for (const [k, a] of data.arrays) {
    if (k.startsWith(ATTACHED)) attached.set(k.slice(ATTACHED.length), a);
    else learner.set(k, a);
  }
  const meta = data.meta as unknown as TrainerCheckpointMeta;
  return { file, meta, learner, attached: { meta: meta.attached ?? {}, arrays: attached } };
}

/** The checkpoint of `version` in `dir`, if there is a readable one. */
export function checkpointOf(dir: string, version: string): TrainerCheckpoint | undefined {
  const file = listCheckpoints(dir).find((f) => f.endsWith(`/${version}.ckpt`));
  return file === undefined ? undefined : split(file, readCheckpointFile(file));
}

/**
 * The newest readable exact checkpoint of the lineage (group and topic) in `dir`; an unreadable one
 * is logged and the next older tried. Undefined when there is none.
 */
export function newestExactCheckpoint(dir: string, groupId: string, topic: string, log: Logger): TrainerCheckpoint | undefined {
  for (const file of listCheckpoints(dir).reverse()) {
    let ck: TrainerCheckpoint;
    try {
      ck = split(file, readCheckpointFile(file));
    } catch (err) {
      log.warn('checkpoint unreadable; trying the previous one', { file, error: errorMessage(err) });
      continue;
    }
    const m = ck.meta;
    if (m.exact !== true || m.groupId !== groupId || m.topic !== topic || typeof m.positions !== 'object') {
      log.warn('checkpoint not an exact one of this lineage; trying the previous one', { file });
      continue;
    }
    return ck;
  }
  return undefined;
}

/** Restores `ck` into `learner`; USAGE when the learner's kind has no exact resume. */
export function restoreLearner(learner: OnlineLearner, ck: TrainerCheckpoint): void {
  if (learner.restoreTrainingState === undefined) throw new ThawError('USAGE', `exact resume is built for fm learners, not ${learner.kind}`);
  try {
    learner.restoreTrainingState(ck.learner);
  } catch (err) {
    throw new ThawError('STATE_CORRUPT', `checkpoint ${ck.file} does not fit the lineage's release`, { cause: err });
  }
}
