/**
 * Namespace maintenance for replays: a backfill writes under its own namespace, then an operator
 * promotes it over another (usually `live`) or drops it. All work is done in bounded batches
 * (SCAN COUNT + one pipeline per batch), so Redis is never blocked by one huge command.
 *
 * Not atomic: during a promotion readers of `to` see a mix of old and promoted states; stop the
 * workers of `to` first (and have them `invalidateAll()` their caches before resuming). Both
 * operations are idempotent, so an interrupted run is finished by running it again.
 * On a Redis Cluster every master is scanned and its keys handled on that node (a key and its copy
 * share the `{entity}` hash tag, so one slot).
 */
import type { Redis } from 'ioredis';
import { ConfigError, ThawError } from '../lib/errors.js';
import { checkNamespace, checkPrefix, namespacePattern, progressPattern, seenIndexPattern } from './keys.js';
import { ensureSlots, isCluster, type RedisClient } from './redis-cluster.js';
import { redisError } from './redis.js';

export interface NamespaceOpOptions {
  /** Keys per SCAN step and per pipeline. @default 500 */
  batchSize?: number;
  /** Allow deleting the `live` namespace (dropping it, or promoting it away). @default false */
  force?: boolean;
}

const LIVE = 'live';

function batchSizeOf(opts: NamespaceOpOptions): number {
  const n = opts.batchSize ?? 500;
  if (!Number.isSafeInteger(n) || n < 1 || n > 100_000) throw new ConfigError('batchSize', `must be a whole number in [1, 100000], got ${n}`);
  return n;
}

/** The clients to scan: the client itself, or every master of a cluster. */
async function scanTargets(redis: RedisClient): Promise<Redis[]> {
  if (!isCluster(redis)) return [redis];
  try {
    await ensureSlots(redis);
  } catch (err) {
    throw redisError('CLUSTER SLOTS', err);
  }
  return redis.nodes('master');
}

/** Visits the keys of one namespace in SCAN batches, on every node; `fn` gets the node's client. */
async function forEachBatch(client: RedisClient, prefix: string, ns: string, count: number, fn: (keys: string[], node: Redis) => Promise<void>, pattern = namespacePattern(prefix, ns)): Promise<void> {
  for (const node of await scanTargets(client)) await scanNode(node, count, pattern, (keys) => fn(keys, node));
}

async function scanNode(redis: Redis, count: number, pattern: string, fn: (keys: string[]) => Promise<void>): Promise<void> {
  let cursor = '0';
  do {
    let reply: [string, string[]];
    try {
      reply = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', count);
    } catch (err) {
      throw redisError('SCAN', err);
    }
    cursor = reply[0];
    if (reply[1].length > 0) await fn(reply[1]);
  } while (cursor !== '0');
}

async function execPipeline(redis: Redis, op: string, build: (p: ReturnType<Redis['pipeline']>) => void): Promise<unknown[]> {
  const p = redis.pipeline();
  build(p);
  let results: [Error | null, unknown][] | null;
  try {
    results = await p.exec();
  } catch (err) {
    throw redisError(op, err);
  }
  if (results === null) throw new ThawError('REDIS_ERROR', `redis ${op} pipeline was discarded`);
  return results.map(([err, value]) => {
    if (err !== null) throw redisError(op, err);
    return value;
  });
}

/** Number of state keys in a namespace (a SCAN: O(keyspace), for tools and tests, not hot paths). */
export async function countNamespace(redis: RedisClient, prefix: string, ns: string, opts: NamespaceOpOptions = {}): Promise<number> {
  checkPrefix(prefix, 'prefix');
  checkNamespace(ns);
  let n = 0;
  await forEachBatch(redis, prefix, ns, batchSizeOf(opts), (keys) => {
    n += keys.length;
    return Promise.resolve();
  });
  return n;
}

/**
 * Deletes every state key of `ns` (UNLINK: memory is reclaimed off the main thread). Refuses `live`
 * unless `force`. Resolves to the number of keys deleted.
 */
export async function dropNamespace(redis: RedisClient, prefix: string, ns: string, opts: NamespaceOpOptions = {}): Promise<number> {
  checkPrefix(prefix, 'prefix');
  checkNamespace(ns);
  if (ns === LIVE && opts.force !== true) throw new ConfigError('namespace', 'refusing to drop the live namespace without { force: true }');
  let deleted = 0;
  // One UNLINK per key: on a cluster a node's keys span many slots (a multi-key UNLINK would be CROSSSLOT).
  await forEachBatch(redis, prefix, ns, batchSizeOf(opts), async (keys, node) => {
    for (const n of await execPipeline(node, 'UNLINK', (p) => keys.forEach((k) => p.unlink(k)))) deleted += Number(n);
  });
  // The namespace's last-seen indexes (RedisEntityStore maxEntities), not counted as states.
  const unlinkIndexes = async (keys: string[], node: Redis): Promise<void> => {
    await execPipeline(node, 'UNLINK', (p) => keys.forEach((k) => p.unlink(k)));
  };
  await forEachBatch(redis, prefix, ns, batchSizeOf(opts), unlinkIndexes, seenIndexPattern(prefix, ns));
  // And its partitions' progress (consumers/progress.ts): without its states it would skip events.
  await forEachBatch(redis, prefix, ns, batchSizeOf(opts), unlinkIndexes, progressPattern(prefix, ns));
  return deleted;
}

/**
 * Copies every state key of `from` over the same entity's key in `to` (COPY … REPLACE keeps the
 * remaining TTL; the shared `{entity}` hash tag keeps source and target in one cluster slot),
 * then drops `from`. Keys of `to` with no counterpart in `from` are left as they are. The copy
 * replaces regardless of offsets: a promoted replay is meant to supersede what `to` held.
 * Refuses to promote `live` away unless `force`. Resolves to the number of keys copied.
 */
export async function promoteNamespace(redis: RedisClient, prefix: string, from: string, to: string, opts: NamespaceOpOptions = {}): Promise<number> {
  checkPrefix(prefix, 'prefix');
  checkNamespace(from, 'from');
  checkNamespace(to, 'to');
  if (from === to) throw new ConfigError('to', `must differ from "from" (${from})`);
  if (from === LIVE && opts.force !== true) throw new ConfigError('from', 'refusing to promote (and so delete) the live namespace without { force: true }');
  const srcHead = `${prefix}:${from}:`;
  const dstHead = `${prefix}:${to}:`;
  let copied = 0;
  // Copy everything first, delete afterwards: an interruption never loses a state.
  await forEachBatch(redis, prefix, from, batchSizeOf(opts), async (keys, node) => {
    const results = await execPipeline(node, 'COPY', (p) => {
      for (const k of keys) p.copy(k, dstHead + k.slice(srcHead.length), 'REPLACE');
    });
    // 0 = the source expired between SCAN and COPY: nothing to promote for it.
    for (const r of results) copied += Number(r);
  });
  await dropNamespace(redis, prefix, from, { ...opts, force: true });
  return copied;
}
