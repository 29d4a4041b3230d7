/**
 * What a release of the online trainer covers, and its version: the consumed position (next offset)
 * per partition of the labelled topic. The version is a function of those positions alone, so a
 * restarted trainer that reaches the same positions derives the same version, finds it published and
 * does not publish it again. Positions only grow, so the zero-padded total orders versions in time.
 */
import { createHash } from 'node:crypto';
import type { ReleaseManifest } from '../../model-store/releases.js';
import { defined } from '../../lib/at.js';

/** Next offset to consume per partition (partition number as a decimal string). */
export type PartitionOffsets = Record<string, number>;

/** Recorded as `architecture.online` of every release the online trainer publishes. */
export interface OnlineReleaseInfo {
  trainer: 'online';
  /** Consumer group of the trainer (one trainer lineage per group). */
  groupId: string;
  topic: string;
  /** Next offset per partition: every event before it is in this release's parameters. */
  offsets: PartitionOffsets;
  /** Events trained on since the trainer's base release (this lineage). */
  events: number;
  /** Meta-learning tasks (completed warm-up windows) since the base release. */
  metaTasks: number;
  /** The offline (or foreign) release the lineage started from. */
  base: string | null;
}

/** Offsets with partitions in numeric order (canonical form for hashing and manifests). */
export function canonicalOffsets(o: PartitionOffsets): PartitionOffsets {
  const out: PartitionOffsets = {};
  for (const p of Object.keys(o).sort((a, b) => Number(a) - Number(b))) out[p] = defined(o[p], 'o[p]');
  return out;
}

/** Sum of the positions: how many offsets the release covers. */
export function totalOffsets(o: PartitionOffsets): number {
  let n = 0;
  for (const v of Object.values(o)) n += v;
  return n;
}

/** `on-<total, 13 digits>-<sha256(group, topic, offsets), 10 hex>`: deterministic, ordered by total. */
export function onlineVersion(groupId: string, topic: string, o: PartitionOffsets): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([groupId, topic, canonicalOffsets(o)]))
    .digest('hex')
    .slice(0, 10);
  return `on-${String(totalOffsets(o)).padStart(13, '0')}-${digest}`;
}

/** The online info of a manifest, if the online trainer published it. */
export function onlineInfoOf(m: ReleaseManifest): OnlineReleaseInfo | undefined {
  const info = (m.architecture as { online?: Partial<OnlineReleaseInfo> } | null)?.online;
  if (info === undefined || info === null || info.trainer !== 'online' || typeof info.groupId !== 'string' || typeof info.topic !== 'string') return undefined;
  if (typeof info.offsets !== 'object' || info.offsets === null) return undefined;
  for (const v of Object.values(info.offsets)) if (!Number.isInteger(v) || v < 0) return undefined;
  return info as OnlineReleaseInfo;
}

/** The newest release of this trainer lineage (group and topic) among `manifests`, by covered offsets. */
export function newestOwnRelease(manifests: readonly ReleaseManifest[], groupId: string, topic: string): { manifest: ReleaseManifest; info: OnlineReleaseInfo } | undefined {
  let best: { manifest: ReleaseManifest; info: OnlineReleaseInfo } | undefined;
  for (const m of manifests) {
    const info = onlineInfoOf(m);
    if (info === undefined || info.groupId !== groupId || info.topic !== topic) continue;
    if (best === undefined || totalOffsets(info.offsets) > totalOffsets(best.info.offsets)) best = { manifest: m, info };
  }
  return best;
}
