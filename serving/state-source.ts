/**
 * Where the state fetch reads entity states: raw encoded values by Redis key, one call per tick
 * (the coalesced MGET). Redis in production; a Map for `thaw serve --demo` and tests.
 */
import { clusterMget, isCluster, withTopologyRetry, type RedisClient } from '../model-store/redis-cluster.js';
import { createRedis, pingRedis, redisError, type RedisConnection } from '../model-store/redis.js';
import type { Logger } from '../lib/log.js';

export interface StateSource {
  /** The values of `keys` in ONE round trip, null where absent. */
  mget(keys: readonly string[]): Promise<(Buffer | null)[]>;
  /** Resolves when the store answers (readiness; the first call also opens the connection). */
  ping(): Promise<void>;
  /** Closes what the source owns; idempotent. */
  close(): Promise<void>;
}

function isClient(r: RedisClient | RedisConnection): r is RedisClient {
  return typeof (r as RedisClient).mgetBuffer === 'function';
}

/**
 * Entity states in Redis (the workers' RedisEntityStore keys). On a Redis Cluster the tick's read is
 * one pipeline per node (model-store/redis-cluster.ts clusterMget), the nodes in parallel.
 */
export class RedisStateSource implements StateSource {
  private readonly redis: RedisClient;
  private readonly owns: boolean;
  private closed = false;

  /** A client the caller keeps owning, or a connection this source opens and closes. */
  constructor(redis: RedisClient | RedisConnection, logger?: Logger) {
    this.owns = !isClient(redis);
    this.redis = isClient(redis) ? redis : createRedis(redis, logger);
  }

  async mget(keys: readonly string[]): Promise<(Buffer | null)[]> {
    try {
      const redis = this.redis;
      if (isCluster(redis)) return await withTopologyRetry(redis, () => clusterMget(redis, keys));
      return await redis.mgetBuffer(...keys);
    } catch (err) {
      throw redisError('MGET', err);
    }
  }

  /** Bounded by the command timeout, on a cluster too (pingRedis); AUTH_FAILED or REDIS_ERROR. */
  ping(): Promise<void> {
    return pingRedis(this.redis);
  }

  async close(): Promise<void> {
    if (!this.owns || this.closed) return;
    this.closed = true;
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

/** Encoded states in memory, by key (the demo's snapshot). */
export class MapStateSource implements StateSource {
  constructor(private readonly values: ReadonlyMap<string, Buffer>) {}
  mget(keys: readonly string[]): Promise<(Buffer | null)[]> {
    return Promise.resolve(keys.map((k) => this.values.get(k) ?? null));
  }
  ping(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
