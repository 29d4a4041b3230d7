/**
 * Entity states in Redis: one MGET per getMany, one EVALSHA (compare-and-set on lastOffset) per
 * putMany, whatever the batch size: the Node client, not Redis, is the bottleneck, so round
 * trips per batch are what count.
 *
 * Redis Cluster (RedisConnection `cluster`, or a Cluster client): each batch is split by the master
 * that owns its keys' slots (the `{entityId}` hash tag keeps one entity's keys in one slot), still
 * one round trip per node per batch: a pipeline of per-slot MGETs to read, one CAS script call to
 * write, the nodes in parallel (redis-cluster.ts, redis-cluster-store.ts). Progress is written on
 * every node and read as the minimum over nodes. `maxEntities` is refused there (its index is one
 * key per scope, i.e. one slot, i.e. one node).
 *
 * Bounded state: every write refreshes the key's TTL (`ttlSeconds`, idle entities expire), and
 * optionally `maxEntities` caps the entities per scope, evicting the least recently seen inside the
 * same CAS script (no extra round trip). See model-store/README.md "Bounded state".
 */
import type { Cluster } from 'ioredis';
import { ConfigError, StoreRegressedError, ThawError, errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { CAS_SCRIPT, CAS_SCRIPT_SHA, casCall, casCounts, type CasGroup } from './cas-script.js';
import { checkPrefix, entityKey, progressField, progressKey, scopeKeyPrefix, seenIndexKey } from './keys.js';
import { clusterGetProgress, clusterPut, type CallsByNode } from './redis-cluster-store.js';
import { clusterMget, isCluster, withTopologyRetry, type RedisClient } from './redis-cluster.js';
import { createRedis, pingRedis, redisError, type RedisConnection } from './redis.js';
import { decodeState, encodeState } from './state-codec.js';
import type { EntityState, EntityStore, ProgressWrite, ScopedRead, ScopedWrite, StateScope } from './types.js';

export interface RedisEntityStoreOptions {
  /**
   * A client to use (the caller keeps owning it; a Cluster client for a Redis Cluster), or a
   * connection the store opens and closes itself (`cluster: true` for a Redis Cluster).
   */
  redis: RedisClient | RedisConnection;
  /** First key segment, shared by every namespace; `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`. @default 'thaw' */
  keyPrefix?: string;
  /**
   * Expiry set on every write, in seconds: an entity untouched for this long is forgotten (bounded
   * state, as Feast's entity TTL). 0 disables expiry. @default 2_592_000 (30 days)
   */
  ttlSeconds?: number;
  /**
   * Cap on the entities of one scope (namespace × side × adapter), 0 = no cap. When a write takes a
   * scope over the cap, its least recently written entities are deleted in the same script (a
   * later event of one starts it afresh from the adapter's initial state). Every writer of a scope
   * must use the same value; behind a CachedEntityStore, written states are then cached for at most
   * its `readTtlMs`. Costs ~113 bytes of index per entity (bench/state). Must be 0 on a Redis
   * Cluster (ConfigError otherwise). @default 0
   */
  maxEntities?: number;
  /** @default silentLogger */
  logger?: Logger;
}

export const DEFAULT_STATE_TTL_SECONDS = 30 * 24 * 3600;

/** What `putMany` did; `evicted` (entities deleted by the cap) is present only when `maxEntities` > 0. */
export interface RedisPutResult {
  written: number;
  skipped: number;
  evicted?: number;
}

function isClient(r: RedisClient | RedisConnection): r is RedisClient {
  return typeof (r as RedisClient).mgetBuffer === 'function';
}

export class RedisEntityStore implements EntityStore {
  readonly keyPrefix: string;
  readonly ttlSeconds: number;
  /** 0 = no cap. */
  readonly maxEntities: number;
  /**
   * True when states can vanish while their writer still runs (the cap evicts other writers'
   * entities too): a cache tier in front must not treat states it wrote as authoritative for ever.
   */
  readonly evictsEntities: boolean;
  private evictedTotal = 0;
  private readonly redis: RedisClient;
  /** The same client when it is a Redis Cluster client. */
  private readonly cluster: Cluster | undefined;
  private readonly ownsClient: boolean;
  private readonly log: Logger;
  private readonly scopePrefixes = new Map<string, string>();

  constructor(opts: RedisEntityStoreOptions) {
    this.keyPrefix = checkPrefix(opts.keyPrefix ?? 'thaw');
    const ttl = opts.ttlSeconds ?? DEFAULT_STATE_TTL_SECONDS;
    if (!Number.isSafeInteger(ttl) || ttl < 0) throw new ConfigError('ttlSeconds', `must be a whole number of seconds >= 0, got ${ttl}`);
    this.ttlSeconds = ttl;
    const cap = opts.maxEntities ?? 0;
    if (!Number.isSafeInteger(cap) || cap < 0) throw new ConfigError('maxEntities', `must be a whole number >= 0 (0 = no cap), got ${cap}`);
    this.maxEntities = cap;
    this.evictsEntities = cap > 0;
    this.log = (opts.logger ?? silentLogger).child({ component: 'redis-store' });
    this.ownsClient = !isClient(opts.redis);
    this.redis = isClient(opts.redis) ? opts.redis : createRedis(opts.redis, this.log);
    this.cluster = isCluster(this.redis) ? this.redis : undefined;
    if (this.cluster !== undefined && cap > 0) {
      if (this.ownsClient) this.redis.disconnect();
      throw new ConfigError('maxEntities', `must be 0 on a Redis Cluster (got ${cap}): the cap's least-recently-seen index is one key per scope, so one node; bound state with ttlSeconds`);
    }
  }

  /** Whether the store talks to a Redis Cluster (batches split by node). */
  get isCluster(): boolean {
    return this.cluster !== undefined;
  }

  /**
   * Calls made per cluster master so far (`host:port` → count): reads (one pipeline per node),
   * writes (one script per node). Empty on a standalone Redis. For tests and the bench.
   */
  readonly callsByNode: CallsByNode = new Map();

  /** Entities deleted by the `maxEntities` cap through this store so far. */
  get evicted(): number {
    return this.evictedTotal;
  }

  /** The Redis key of one scope's last-seen index (a sorted set; exists only with `maxEntities` > 0). */
  seenIndexKeyOf(scope: StateScope): string {
    this.prefixOf(scope); // validates the scope
    return seenIndexKey(this.keyPrefix, scope);
  }

  /**
   * Entities of a scope in the last-seen index (ZCARD, one round trip): with `maxEntities` > 0, the
   * number of live states the cap counts. 0 when the cap is off (no index is kept).
   */
  async trackedEntities(scope: StateScope): Promise<number> {
    try {
      return await this.redis.zcard(this.seenIndexKeyOf(scope));
    } catch (err) {
      throw redisError('ZCARD', err);
    }
  }

  /** The Redis key of one entity's state (exposed for tools and tests). */
  keyOf(scope: StateScope, entityId: string): string {
    return entityKey(this.prefixOf(scope), entityId);
  }

  async getMany(scope: StateScope, entityIds: readonly string[]): Promise<(EntityState | undefined)[]> {
    const [out] = await this.getManyScoped([{ scope, entityIds }]);
    return out ?? [];
  }

  /** One MGET over every scope's keys. */
  async getManyScoped(reads: readonly ScopedRead[]): Promise<(EntityState | undefined)[][]> {
    const keys = reads.flatMap((r) => {
      const p = this.prefixOf(r.scope);
      return r.entityIds.map((id) => entityKey(p, id));
    });
    if (keys.length === 0) return reads.map(() => []);
    let values: (Buffer | null)[];
    try {
      const cluster = this.cluster;
      values =
        cluster === undefined
          ? await this.redis.mgetBuffer(...keys)
          : await withTopologyRetry(
              cluster,
              () => clusterMget(cluster, keys, this.callsByNode),
              (err, attempt) => this.log.info('redis cluster topology changed; refreshing the slot map and retrying the read', { attempt, error: errorMessage(err) }),
            );
    } catch (err) {
      throw redisError('MGET', err);
    }
    let at = 0;
    return reads.map((r) =>
      r.entityIds.map(() => {
        const i = at++;
        const v = values[i];
        if (v === null || v === undefined) return undefined;
        try {
          return decodeState(v);
        } catch (err) {
          // Not retryable: the caller decides (dead-letter the entity's events, or reset it).
          throw new ThawError('STATE_CORRUPT', `state of key ${keys[i] ?? '?'} is corrupt: ${(err as Error).message}`, { cause: err });
        }
      }),
    );
  }

  async putMany(scope: StateScope, entries: readonly { entityId: string; state: EntityState }[]): Promise<RedisPutResult> {
    const [res] = await this.putManyScoped([{ scope, entries }]);
    return res ?? this.result(0, 0, 0);
  }

  /**
   * Every group in ONE EVALSHA (atomic): CAS on lastOffset per entry, TTL refreshed, and with
   * `maxEntities` > 0 the cap of each group's scope enforced in the same script. With `progress`,
   * the partition's progress in its scope's hash is raised to `progress.offset` in the same script
   * (also when no group has entries: a batch of redeliveries still records its progress).
   */
  async putManyScoped(writes: readonly ScopedWrite[], progress?: ProgressWrite): Promise<RedisPutResult[]> {
    const groups = writes.filter((w) => w.entries.length > 0);
    if (groups.length === 0 && progress === undefined) return writes.map(() => this.result(0, 0, 0));
    if (progress !== undefined && !(Number.isSafeInteger(progress.offset) && progress.offset >= 0)) {
      throw new ThawError('STATE_CORRUPT', `refusing to record progress ${progress.offset} of partition ${progress.partition}`);
    }
    const bounded = this.maxEntities > 0;
    const casGroups: CasGroup[] = groups.map((w) => {
      const head = this.prefixOf(w.scope);
      return {
        head,
        keys: w.entries.map((e) => entityKey(head, e.entityId)),
        values: w.entries.map((e) => encodeState(e.state)),
        ...(bounded ? { index: seenIndexKey(this.keyPrefix, w.scope) } : {}),
      };
    });
    if (progress !== undefined) this.prefixOf(progress.scope); // validates the scope
    let counts: [number, number, number][];
    if (this.cluster !== undefined) {
      counts = await this.clusterPutChecked(casGroups, progress);
    } else {
      const trailer =
        progress === undefined
          ? undefined
          : {
              key: progressKey(this.keyPrefix, progress.scope),
              field: progressField(progress.topic, progress.partition),
              offset: progress.offset,
              ...(progress.expectAtLeast === undefined ? {} : { expectAtLeast: progress.expectAtLeast }),
            };
      const { keys, args } = casCall(casGroups, this.ttlSeconds, this.maxEntities, trailer);
      let reply: unknown;
      try {
        reply = await this.evalCas(keys, args);
      } catch (err) {
        const regressed = progress?.expectAtLeast === undefined ? undefined : storeRegressed(err, progress.topic, progress.partition, progress.expectAtLeast);
        throw regressed ?? err;
      }
      counts = casCounts(reply, casGroups.length);
    }
    let g = 0;
    return writes.map((w) => {
      if (w.entries.length === 0) return this.result(0, 0, 0);
      const [written, skipped, evicted] = counts[g] ?? [0, 0, 0];
      g++;
      if (evicted > 0) {
        this.evictedTotal += evicted;
        this.log.debug('evicted least recently seen entities', { ...w.scope, evicted, maxEntities: this.maxEntities });
      }
      return this.result(written, skipped, evicted);
    });
  }

  /**
   * clusterPut with the progress expectation. A master that refuses it may only lack a record (a
   * slot map change moved its progress key): the minimum over the masters' records decides, as it
   * does at assignment. Not below the expectation: written again without it. Below: the cluster lost
   * acknowledged writes (StoreRegressedError with that minimum); masters that accepted keep their
   * states, which the re-application from the minimum skips by the CAS.
   */
  private async clusterPutChecked(casGroups: CasGroup[], progress: ProgressWrite | undefined): Promise<[number, number, number][]> {
    const cluster = this.cluster;
    if (cluster === undefined) throw new ThawError('LIFECYCLE', 'not a cluster store');
    const put = (p: ProgressWrite | undefined): Promise<[number, number, number][]> =>
      clusterPut(cluster, casGroups, this.ttlSeconds, p === undefined ? undefined : { prefix: this.keyPrefix, ...p }, this.log, this.callsByNode);
    try {
      return await put(progress);
    } catch (err) {
      if (progress?.expectAtLeast === undefined || storeRegressed(err, progress.topic, progress.partition, progress.expectAtLeast) === undefined) throw err;
      const min = await this.getProgress(progress.scope, progress.topic, progress.partition);
      if (min !== undefined && min >= progress.expectAtLeast) {
        const { expectAtLeast: _, ...unchecked } = progress;
        return put(unchecked);
      }
      throw new StoreRegressedError(progress.topic, progress.partition, min, progress.expectAtLeast);
    }
  }

  /**
   * The progress of `partition` of `topic` recorded in `scope` (HGET), undefined if none. On a
   * cluster, the minimum over the masters' records (redis-cluster-store.ts).
   */
  async getProgress(scope: StateScope, topic: string, partition: number): Promise<number | undefined> {
    this.prefixOf(scope); // validates the scope
    if (this.cluster !== undefined) {
      try {
        return await clusterGetProgress(this.cluster, this.keyPrefix, scope, topic, partition, this.log);
      } catch (err) {
        throw redisError('HGET', err);
      }
    }
    let v: string | null;
    try {
      v = await this.redis.hget(progressKey(this.keyPrefix, scope), progressField(topic, partition));
    } catch (err) {
      throw redisError('HGET', err);
    }
    if (v === null) return undefined;
    const offset = Number(v);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new ThawError('STATE_CORRUPT', `progress of ${progressField(topic, partition)} is not an offset: ${JSON.stringify(v)}`);
    return offset;
  }

  /** The Redis key of one scope's progress hash on a standalone Redis (exposed for tools and tests). */
  progressKeyOf(scope: StateScope): string {
    this.prefixOf(scope);
    return progressKey(this.keyPrefix, scope);
  }

  /** `evicted` is reported only when the cap is on. */
  private result(written: number, skipped: number, evicted: number): RedisPutResult {
    return this.maxEntities > 0 ? { written, skipped, evicted } : { written, skipped };
  }

  /** One PING: throws AUTH_FAILED for refused credentials, REDIS_ERROR when unreachable (pingRedis). */
  ping(): Promise<void> {
    return pingRedis(this.redis);
  }

  async close(): Promise<void> {
    if (!this.ownsClient) return;
    try {
      await this.redis.quit();
    } catch {
      // Already disconnected (e.g. Redis unreachable): quitting is best effort.
      this.redis.disconnect();
    }
  }

  /** EVALSHA of the CAS script; on NOSCRIPT (restart, SCRIPT FLUSH, failover) loads it and retries once. */
  private async evalCas(keys: string[], args: (Buffer | string | number)[]): Promise<unknown> {
    const call = (): Promise<unknown> => this.redis.evalsha(CAS_SCRIPT_SHA, keys.length, ...keys, ...args);
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw redisError('EVALSHA', err);
    }
    try {
      this.log.debug('loading the CAS script');
      await this.redis.script('LOAD', CAS_SCRIPT);
      return await call();
    } catch (err) {
      throw redisError('EVALSHA', err);
    }
  }

  private prefixOf(scope: StateScope): string {
    const id = `${scope.namespace}\u0000${scope.side}\u0000${scope.adapter}`;
    let p = this.scopePrefixes.get(id);
    if (p === undefined) {
      p = scopeKeyPrefix(this.keyPrefix, scope);
      // Scopes are few (namespaces × sides × adapters); the bound only guards against misuse.
      if (this.scopePrefixes.size > 1024) this.scopePrefixes.clear();
      this.scopePrefixes.set(id, p);
    }
    return p;
  }
}

/** The CAS script's `THAW_STORE_REGRESSED <stored|none>` reply (possibly wrapped) as a StoreRegressedError. */
function storeRegressed(err: unknown, topic: string, partition: number, expected: number): StoreRegressedError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const m = /THAW_STORE_REGRESSED (\d+|none)/.exec(e.message);
    if (m !== null) return new StoreRegressedError(topic, partition, m[1] === 'none' || m[1] === undefined ? undefined : Number(m[1]), expected);
  }
  return undefined;
}
