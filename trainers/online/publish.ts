/**
 * Publishing one release of the online trainer: the learner's current parameters, covering
 * `offsets`, under the version derived from them. Idempotent: if that version exists it is not
 * written again (the caller still promotes and commits). The caller writes the checkpoint of the
 * version (trainers/online/resume.ts) into `onlineCheckpointDir`, a hidden directory beside the releases.
 */
import { join } from 'node:path';
import { ThawError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { ReleaseStore } from '../../model-store/releases.js';
import type { OnlineLearner } from './learner.js';
import { canonicalOffsets, onlineVersion, type OnlineReleaseInfo, type PartitionOffsets } from './offsets.js';

export interface OnlinePublishInput {
  store: ReleaseStore;
  model: string;
  groupId: string;
  topic: string;
  learner: OnlineLearner;
  /** Next offset per partition the learner's parameters cover. */
  offsets: PartitionOffsets;
  /** The lineage's previous release (the first one's: the offline base). */
  parent: string | null;
  /** The offline release the lineage started from. */
  base: string | null;
  /** Events and meta tasks of the lineage before this learner was built (from the release it continued). */
  priorEvents: number;
  priorTasks: number;
  logger?: Logger;
}

export interface OnlinePublishResult {
  version: string;
  info: OnlineReleaseInfo;
  /** False when the version already existed (nothing was written). */
  written: boolean;
}

/** Directory of the optimiser checkpoint of a lineage (hidden: never listed as a release). */
export function onlineCheckpointDir(store: ReleaseStore, model: string, groupId: string): string {
  return join(store.root, model, `.online-${groupId.replace(/[^A-Za-z0-9._-]/g, '_')}`);
}

/** Publishes (does not promote) the release covering `offsets`; a no-op if its version exists. */
export async function publishOnlineRelease(input: OnlinePublishInput): Promise<OnlinePublishResult> {
  const { store, model, groupId, topic, learner } = input;
  const offsets = canonicalOffsets(input.offsets);
  learner.flush();
  const version = onlineVersion(groupId, topic, offsets);
  const stats = learner.stats();
  const info: OnlineReleaseInfo = {
    trainer: 'online',
    groupId,
    topic,
    offsets,
    events: input.priorEvents + stats.events,
    metaTasks: input.priorTasks + stats.metaTasks,
    base: input.base,
  };
  if ((await store.list(model)).some((m) => m.version === version)) return { version, info, written: false };
  const bundle = learner.bundle(`${model}/${version}`);
  const metrics: Record<string, number> = { events: info.events, metaTasks: info.metaTasks };
  if (Number.isFinite(stats.recentLogloss)) metrics.recentLogloss = stats.recentLogloss;
  try {
    await store.publish({ model, version, parent: input.parent, architecture: { ...bundle.architecture, online: info }, metrics, files: bundle.files });
  } catch (err) {
    // A concurrent publisher of the same version (same offsets, same lineage) got there first.
    if (err instanceof ThawError && err.code === 'USAGE' && /already exists/.test(err.message)) return { version, info, written: false };
    throw err;
  }
  return { version, info, written: true };
}
