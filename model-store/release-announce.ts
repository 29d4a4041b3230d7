/**
 * Tells running workers that a release of shared parameters became current, two ways (either or
 * both): a `ModelReleaseAnnouncement` record on the Kafka topic `thaw.releases` (streams/serde.ts),
 * and a Redis pointer `${prefix}:release:${model}` = version, set and published on the channel of
 * the same name in one MULTI, so a watcher subscribed to it picks the release up at once and one
 * that was not can read the pointer. Announcements are hints: the release directory's CURRENT is
 * the truth, and watchers re-read and verify it (model-store/release-sync.ts).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ThawError, errorMessage } from '../lib/errors.js';
import type { EventProducer } from '../streams/producer.js';
import { encodeRelease, type ModelReleaseAnnouncement } from '../streams/serde.js';
import { TOPICS } from '../streams/topics.js';
import type { RedisClient } from './redis-cluster.js';
import type { ReleaseStore } from './releases.js';

/** Key (and pub/sub channel) of the Redis release pointer of `model`. */
export function releasePointerKey(prefix: string, model: string): string {
  return `${prefix}:release:${model}`;
}

export interface AnnounceOptions {
  /** Connected producer; no Kafka announcement when absent. */
  producer?: EventProducer;
  /** Topic of announcements. @default 'thaw.releases' */
  topic?: string;
  /** Redis client (standalone or cluster: the pointer is one key, PUBLISH reaches every node); no pointer when absent. */
  redis?: RedisClient;
  /** Key prefix of the pointer. @default 'thaw' */
  redisPrefix?: string;
}

/** The announcement record of a published release (reads and hashes its manifest.json). */
export async function announcementOf(store: ReleaseStore, model: string, version: string): Promise<ModelReleaseAnnouncement> {
  const dir = join(store.root, model, version);
  let manifest: Buffer;
  try {
    manifest = await readFile(join(dir, 'manifest.json'));
  } catch (err) {
    throw new ThawError('RELEASE_NOT_FOUND', `release ${model}/${version}: manifest unreadable: ${errorMessage(err)}`, { cause: err });
  }
  const createdAtMs = (JSON.parse(manifest.toString('utf8')) as { createdAtMs?: unknown }).createdAtMs;
  return {
    model,
    version,
    path: dir,
    manifestSha256: createHash('sha256').update(manifest).digest('hex'),
    createdAtMs: typeof createdAtMs === 'number' ? createdAtMs : Date.now(),
  };
}

/** Announces that `version` is now the current release of `model`; returns the record sent. */
export async function announceRelease(store: ReleaseStore, model: string, version: string, opts: AnnounceOptions): Promise<ModelReleaseAnnouncement> {
  const rec = await announcementOf(store, model, version);
  if (opts.producer !== undefined) {
    await opts.producer.send(opts.topic ?? TOPICS.releases, [{ key: model, value: encodeRelease(rec) }]);
  }
  if (opts.redis !== undefined) {
    const key = releasePointerKey(opts.redisPrefix ?? 'thaw', model);
    try {
      await opts.redis.multi().set(key, version).publish(key, version).exec();
    } catch (err) {
      throw new ThawError('REDIS_ERROR', `cannot set release pointer ${key}: ${errorMessage(err)}`, { cause: err });
    }
  }
  return rec;
}
