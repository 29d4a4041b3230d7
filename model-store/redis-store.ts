/**
 * Entity states in Redis: one MGET per getMany, one EVALSHA (compare-and-set on lastOffset) per
 * putMany, whatever the batch size: the Node client, not Redis, is the bottleneck, so round
 * trips per batch are what count.
 *
 * Deployment note: a batch touches many entities, i.e. many hash slots, so the multi-key MGET and
 * script need a standalone (or Sentinel-managed) Redis. A Redis Cluster deployment would group
 * each batch by slot first; the `{entityId}` hash tag already keeps one entity's keys together.
 *
 * Bounded state: every write refreshes the key's TTL (`ttlSeconds`, idle entities expire), and
 * optionally `maxEntities` caps the entities per scope, evicting the least recently seen inside the
 * same CAS script (no extra round trip). See model-store/README.md "Bounded state".
 */
import type { Redis } from 'ioredis';
import { ConfigError, StoreRegressedError, ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { CAS_SCRIPT, CAS_SCRIPT_SHA } from './cas-script.js';
import { checkPrefix, entityKey, progressField, progressKey, scopeKeyPrefix, seenIndexKey } from './keys.js';
import { createRedis, pingRedis, redisError, type RedisConnection } from './redis.js';
import { decodeState, encodeState } from './state-codec.js';
import type { EntityState, EntityStore, ProgressWrite, ScopedRead, ScopedWrite, StateScope } from './types.js';

export interface RedisEntityStoreOptions {
  /** A client to use (the caller keeps owning it), or a connection the store opens and closes itself. */
  redis: Redis | RedisConnection;
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
   * its `readTtlMs`. Costs ~113 bytes of index per entity (bench/state). @default 0
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

function isClient(r: Redis | RedisConnection): r is Redis {
  return typeof (r as Redis).mgetBuffer === 'function';
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
  private readonly redis: Redis;
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
  }

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
      values = await this.redis.mgetBuffer(...keys);
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
    const keys: string[] = [];
    const heads: (string | number)[] = [];
    const values: Buffer[] = [];
    for (const w of groups) {
      const p = this.prefixOf(w.scope);
      for (const e of w.entries) {
        keys.push(entityKey(p, e.entityId));
        values.push(encodeState(e.state));
      }
      if (bounded) keys.push(seenIndexKey(this.keyPrefix, w.scope));
      heads.push(w.entries.length, bounded ? 1 : 0, p);
    }
    const trailer: string[] = [];
    if (progress !== undefined) {
      this.prefixOf(progress.scope); // validates the scope
      keys.push(progressKey(this.keyPrefix, progress.scope));
      trailer.push(progressField(progress.topic, progress.partition), String(progress.offset));
      if (progress.expectAtLeast !== undefined) trailer.push(String(progress.expectAtLeast));
    }
    let reply: unknown;
    try {
      reply = await this.evalCas(keys, [this.ttlSeconds, groups.length, this.maxEntities, ...heads, ...values, ...trailer]);
    } catch (err) {
      const regressed = progress?.expectAtLeast === undefined ? undefined : storeRegressed(err, progress.topic, progress.partition, progress.expectAtLeast);
      throw regressed ?? err;
    }
    if (!Array.isArray(reply) || reply.length !== 3 * groups.length || !reply.every((x) => typeof x === 'number')) {
      throw new ThawError('REDIS_ERROR', `unexpected reply from the CAS script: ${JSON.stringify(reply)}`);
    }
    const counts = reply as number[];
    let g = 0;
    return writes.map((w) => {
      if (w.entries.length === 0) return this.result(0, 0, 0);
      const [written = 0, skipped = 0, evicted = 0] = counts.slice(3 * g, 3 * g + 3);
      g++;
      if (evicted > 0) {
        this.evictedTotal += evicted;
        this.log.debug('evicted least recently seen entities', { ...w.scope, evicted, maxEntities: this.maxEntities });
      }
      return this.result(written, skipped, evicted);
    });
  }

  /** The progress of `partition` of `topic` recorded in `scope` (HGET), undefined if none. */
  async getProgress(scope: StateScope, topic: string, partition: number): Promise<number | undefined> {
    this.prefixOf(scope); // validates the scope
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

  /** The Redis key of one scope's progress hash (exposed for tools and tests). */
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
