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
import { ConfigError, ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { BOUNDED_CAS_SCRIPT, BOUNDED_CAS_SCRIPT_SHA, CAS_SCRIPT, CAS_SCRIPT_SHA } from './cas-script.js';
import { checkPrefix, entityKey, scopeKeyPrefix, seenIndexKey } from './keys.js';
import { createRedis, redisError, type RedisConnection } from './redis.js';
import { decodeState, encodeState } from './state-codec.js';
import type { EntityState, EntityStore, StateScope } from './types.js';

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
    if (entityIds.length === 0) return [];
    const p = this.prefixOf(scope);
    const keys = entityIds.map((id) => entityKey(p, id));
    let values: (Buffer | null)[];
    try {
      values = await this.redis.mgetBuffer(...keys);
    } catch (err) {
      throw redisError('MGET', err);
    }
    return values.map((v, i) => {
      if (v === null) return undefined;
      try {
        return decodeState(v);
      } catch (err) {
        // Not retryable: the caller decides (dead-letter the entity's events, or reset it).
        throw new ThawError('STATE_CORRUPT', `state of key ${keys[i]!} is corrupt: ${(err as Error).message}`, { cause: err });
      }
    });
  }

  async putMany(scope: StateScope, entries: readonly { entityId: string; state: EntityState }[]): Promise<RedisPutResult> {
    if (entries.length === 0) return this.maxEntities > 0 ? { written: 0, skipped: 0, evicted: 0 } : { written: 0, skipped: 0 };
    const p = this.prefixOf(scope);
    const keys: string[] = new Array<string>(entries.length);
    const values: Buffer[] = new Array<Buffer>(entries.length);
    entries.forEach((e, i) => {
      keys[i] = entityKey(p, e.entityId);
      values[i] = encodeState(e.state);
    });
    if (this.maxEntities === 0) {
      const reply = await this.evalCas(CAS_SCRIPT, CAS_SCRIPT_SHA, keys, [this.ttlSeconds, ...values]);
      if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'number') {
        throw new ThawError('REDIS_ERROR', `unexpected reply from the CAS script: ${JSON.stringify(reply)}`);
      }
      return { written: reply[0], skipped: reply[1] };
    }
    keys.push(seenIndexKey(this.keyPrefix, scope));
    const reply = await this.evalCas(BOUNDED_CAS_SCRIPT, BOUNDED_CAS_SCRIPT_SHA, keys, [this.ttlSeconds, ...values, this.maxEntities, p]);
    if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'number' || typeof reply[2] !== 'number') {
      throw new ThawError('REDIS_ERROR', `unexpected reply from the bounded CAS script: ${JSON.stringify(reply)}`);
    }
    if (reply[2] > 0) {
      this.evictedTotal += reply[2];
      this.log.debug('evicted least recently seen entities', { ...scope, evicted: reply[2], maxEntities: this.maxEntities });
    }
    return { written: reply[0], skipped: reply[1], evicted: reply[2] };
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

  /** EVALSHA; on NOSCRIPT (restart, SCRIPT FLUSH, failover) loads the script and retries once. */
  private async evalCas(script: string, sha: string, keys: string[], args: (Buffer | string | number)[]): Promise<unknown> {
    const call = (): Promise<unknown> => this.redis.evalsha(sha, keys.length, ...keys, ...args);
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw redisError('EVALSHA', err);
    }
    try {
      this.log.debug('loading the CAS script');
      await this.redis.script('LOAD', script);
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
