/**
 * An in-process LRU tier in front of any EntityStore (the "hierarchical storage" of HugeCTR HPS
 * and JIZHI): hot entities are served without a Redis round trip.
 *
 * Invalidation assumption: one writer per entity. States this worker wrote through the cache are
 * authoritative for as long as it owns the entity's partition, so they never expire by age. When
 * ownership can change the owner MUST drop them before processing again, or it may act on a state
 * another worker has since advanced (issue 11: a partition that comes back after a rebalance had
 * its cached states applied to, and the CAS accepted the stale results). The Kafka worker calls
 * `invalidatePartitions()` with every partition whose ownership may have changed on each group join
 * (consumers/worker.ts); it drops the states whose `origin` is one of them, and every state of
 * unknown origin. After a namespace promotion, call `invalidateAll()`. States only read (the other
 * side's parameters, written by other workers) are cached for at most `readTtlMs`, which bounds
 * their staleness.
 *
 * Exception: an inner store that can evict live entities (`evictsEntities`, RedisEntityStore with
 * `maxEntities` > 0) may delete a state this worker wrote; written states then also expire after
 * `readTtlMs`, so an evicted entity is resurrected from the cache for at most that long.
 *
 * Write-through: the cache changes only after the inner put succeeded. Gets and puts copy the
 * params, so a caller adapting a returned state in place can never corrupt the cache.
 */
import { LRUCache } from 'lru-cache';
import { ConfigError } from '../lib/errors.js';
import { isStaleWrite, topicTag } from './origin.js';
import { cloneState } from './state-codec.js';
import { getScoped, putEach } from './scoped.js';
import type { EntityState, EntityStore, PartitionRef, ProgressWrite, ScopedRead, ScopedWrite, StateScope } from './types.js';

export interface CachedEntityStoreOptions {
  /** Maximum number of cached states over all scopes; least recently used are evicted. @default 100_000 */
  maxEntries?: number;
  /**
   * How long a state that was only read (not written through this cache) may be served from the
   * cache, in milliseconds. 0 caches written states only. @default 1_000
   */
  readTtlMs?: number;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
}

interface Entry {
  state: EntityState;
  /** Absolute expiry (ms) for read-only entries; Infinity for states this worker wrote. */
  expiresAtMs: number;
}

export class CachedEntityStore implements EntityStore {
  readonly maxEntries: number;
  readonly readTtlMs: number;
  /** Lifetime of states written through the cache: Infinity, or readTtlMs over an evicting store. */
  private readonly writtenTtlMs: number;
  private readonly now: () => number;
  /**
   * lru-cache, not a Map re-inserted on every hit: evicting a Map's first key scans the holes its
   * deletions left, and on a cache that evicts that is most of the cost (npm run bench -- --only lru).
   */
  private readonly lru: LRUCache<string, Entry>;
  private hitCount = 0;
  private missCount = 0;

  constructor(
    private readonly inner: EntityStore,
    opts: CachedEntityStoreOptions = {},
  ) {
    const max = opts.maxEntries ?? 100_000;
    if (!Number.isSafeInteger(max) || max < 1) throw new ConfigError('maxEntries', `must be a whole number >= 1, got ${max}`);
    const ttl = opts.readTtlMs ?? 1_000;
    if (!Number.isFinite(ttl) || ttl < 0) throw new ConfigError('readTtlMs', `must be a number of milliseconds >= 0, got ${ttl}`);
    this.maxEntries = max;
    this.lru = new LRUCache<string, Entry>({ max });
    this.readTtlMs = ttl;
    this.writtenTtlMs = (inner as { evictsEntities?: boolean }).evictsEntities === true ? ttl : Infinity;
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.lru.size;
  }

  stats(): { hits: number; misses: number; size: number } {
    return { hits: this.hitCount, misses: this.missCount, size: this.lru.size };
  }

  async getMany(scope: StateScope, entityIds: readonly string[]): Promise<(EntityState | undefined)[]> {
    const [out] = await this.getManyScoped([{ scope, entityIds }]);
    return out ?? [];
  }

  /** Hits from the cache; every miss of every scope in one inner call (one round trip). */
  async getManyScoped(reads: readonly ScopedRead[]): Promise<(EntityState | undefined)[][]> {
    const now = this.now();
    const outs = reads.map((r) => new Array<EntityState | undefined>(r.entityIds.length));
    const misses: { read: number; idx: number[] }[] = [];
    reads.forEach((r, g) => {
      const missIdx: number[] = [];
      const out = outs[g] ?? [];
      r.entityIds.forEach((id, i) => {
        const k = cacheKey(r.scope, id);
        const e = this.lru.get(k); // a hit becomes the most recently used
        if (e !== undefined && e.expiresAtMs > now) {
          out[i] = cloneState(e.state);
          this.hitCount++;
        } else {
          if (e !== undefined) this.lru.delete(k);
          missIdx.push(i);
        }
      });
      this.missCount += missIdx.length;
      if (missIdx.length > 0) misses.push({ read: g, idx: missIdx });
    });
    if (misses.length === 0) return outs;
    const loaded = await getScoped(
      this.inner,
      misses.map((m) => {
        const r = reads[m.read] as ScopedRead;
        return { scope: r.scope, entityIds: m.idx.map((i) => r.entityIds[i] ?? '') };
      }),
    );
    const expiresAtMs = now + this.readTtlMs;
    misses.forEach((m, j) => {
      const r = reads[m.read] as ScopedRead;
      const out = outs[m.read] ?? [];
      const got = loaded[j] ?? [];
      m.idx.forEach((i, q) => {
        const s = got[q];
        out[i] = s;
        // Absent entities are not cached: "never seen" is cheap to re-check and must not go stale.
        if (s !== undefined && this.readTtlMs > 0) this.set(cacheKey(r.scope, r.entityIds[i] ?? ''), { state: cloneState(s), expiresAtMs });
      });
    });
    return outs;
  }

  async putMany(scope: StateScope, entries: readonly { entityId: string; state: EntityState }[]): Promise<{ written: number; skipped: number }> {
    const [res] = await this.putManyScoped([{ scope, entries }]);
    return res ?? { written: 0, skipped: 0 };
  }

  /**
   * Write-through of every group in one inner call (atomic where the inner store is), then the cache.
   * `progress` goes to the inner store with the states (never cached: it is read once per assignment).
   */
  async putManyScoped(writes: readonly ScopedWrite[], progress?: ProgressWrite): Promise<{ written: number; skipped: number }[]> {
    const results = this.inner.putManyScoped !== undefined ? await this.inner.putManyScoped(writes, progress) : await putEach(this.inner, writes);
    writes.forEach((w, g) => this.remember(w, results[g] ?? { written: 0, skipped: 0 }));
    return results;
  }

  /**
   * Replays the store's CAS on what the cache knows. If the store skipped more than predicted, it
   * held newer states the cache did not know about: drop the group's entities rather than guess.
   */
  private remember(w: ScopedWrite, result: { written: number; skipped: number }): void {
    const winners = new Map<string, EntityState>();
    let predictedSkips = 0;
    for (const { entityId, state } of w.entries) {
      const k = cacheKey(w.scope, entityId);
      if (isStaleWrite(winners.get(k) ?? this.lru.peek(k)?.state, state)) predictedSkips++;
      else winners.set(k, state);
    }
    if (predictedSkips !== result.skipped) {
      for (const { entityId } of w.entries) this.lru.delete(cacheKey(w.scope, entityId));
      return;
    }
    const expiresAtMs = this.now() + this.writtenTtlMs;
    for (const [k, state] of winners) this.set(k, { state: cloneState(state), expiresAtMs });
  }

  /** Forgets one scope's entities (all of them when `entityIds` is omitted). */
  invalidate(scope: StateScope, entityIds?: readonly string[]): void {
    if (entityIds !== undefined) {
      for (const id of entityIds) this.lru.delete(cacheKey(scope, id));
      return;
    }
    const p = cacheKey(scope, '');
    for (const k of [...this.lru.keys()]) if (k.startsWith(p)) this.lru.delete(k);
  }

  /** The inner store's progress of a partition (not cached). */
  async getProgress(scope: StateScope, topic: string, partition: number): Promise<number | undefined> {
    return this.inner.getProgress === undefined ? undefined : this.inner.getProgress(scope, topic, partition);
  }

  /**
   * Forgets the cached states of these partitions (by their `origin`) and every cached state of
   * unknown origin (it might belong to one of them): call when their ownership may have changed.
   * O(cached states). Returns how many were dropped.
   */
  invalidatePartitions(partitions: readonly PartitionRef[]): number {
    if (partitions.length === 0) return 0;
    const moved = new Set(partitions.map((p) => `${topicTag(p.topic)}:${p.partition}`));
    const drop: string[] = [];
    for (const [k, e] of this.lru.entries()) {
      const o = e.state.origin;
      if (o === undefined || moved.has(`${o.topicTag}:${o.partition}`)) drop.push(k);
    }
    for (const k of drop) this.lru.delete(k);
    return drop.length;
  }

  /** Forgets everything: after a namespace promotion, or when the partitions that moved are unknown. */
  invalidateAll(): void {
    this.lru.clear();
  }

  async close(): Promise<void> {
    this.lru.clear();
    await this.inner.close();
  }

  /** Inserts or replaces (most recently used); lru-cache evicts the least recently used beyond maxEntries. */
  private set(k: string, e: Entry): void {
    this.lru.set(k, e);
  }
}

/** NUL cannot occur in namespace, side or adapter names, so the composite key is unambiguous. */
function cacheKey(scope: StateScope, entityId: string): string {
  return `${scope.namespace}\u0000${scope.side}\u0000${scope.adapter}\u0000${entityId}`;
}
