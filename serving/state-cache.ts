/**
 * The in-process tier of the state fetch: entity VIEWS (the first k + 2 floats of a state, all that
 * scoring reads) held in one preallocated Float32Array, with their counts, read times and safeguard
 * partitions in parallel typed arrays. A Map per side from entity id to slot is the only per-entity
 * object. Keyed by the id as the request carries it (not by the Redis key): a cache hit builds no
 * key string and hashes only the id; the Redis key is built for the misses alone.
 *
 * Why not a cache of small per-entity arrays: at 200,000 states/s they are garbage the collector
 * must trace, and the issue measured 7-10 ms GC pauses every 125 ms with such a cache. Here a read
 * copies bytes from the Redis reply into a slot and allocates nothing but the Map entry.
 *
 * Freshness: an entry is served for at most `freshnessMs` after it was read from the store; an
 * entity the store does not hold is cached too (count -1: "cold"), under the same bound, so a burst
 * of unseen candidates does not go to Redis on every request. Eviction is a clock over the slots
 * that skips PINNED slots: a request pins the slots it will score with between the fetch and the
 * model stage, so a slot is never overwritten under a request in flight.
 */
import { ThawError } from '../lib/errors.js';
import { readStateView } from '../model-store/state-codec.js';

/** Slot value of an entity the store does not hold: scored with the release's cold state. */
export const SLOT_COLD = -1;
/** Slot value of an entity whose state could not be read (store down or slow): scored shared-only. */
export const SLOT_SHARED = -2;

/** The side of an entity in the cache: its user or its item states. */
export const SIDE_USER = 0;
export const SIDE_ITEM = 1;
export type CacheSide = typeof SIDE_USER | typeof SIDE_ITEM;

export class StateCache {
  /** Floats per view. */
  readonly width: number;
  readonly capacity: number;
  /** capacity × width floats: the view of slot s is at s × width. */
  readonly views: Float32Array;
  /** The state's count (its events so far); -1 for an entity the store did not hold. */
  readonly counts: Int32Array;
  /** performance.now() when the entry was read from the store, ms. */
  readonly readAt: Float64Array;
  /** The entity's safeguard partition (its Kafka partition), -1 when not computed. */
  readonly partitions: Int32Array;
  private readonly pins: Int32Array;
  /** The entity id of each slot and its side. */
  private readonly ids: (string | undefined)[];
  private readonly sides: Uint8Array;
  private readonly index: readonly [Map<string, number>, Map<string, number>] = [new Map(), new Map()];
  private hand = 0;
  private readonly freshnessMs: number;

  constructor(capacity: number, width: number, freshnessMs: number) {
    this.capacity = capacity;
    this.width = width;
    this.freshnessMs = freshnessMs;
    this.views = new Float32Array(capacity * width);
    this.counts = new Int32Array(capacity);
    this.readAt = new Float64Array(capacity);
    this.partitions = new Int32Array(capacity).fill(-1);
    this.pins = new Int32Array(capacity);
    this.ids = new Array<string | undefined>(capacity).fill(undefined);
    this.sides = new Uint8Array(capacity);
  }

  /** Entries held (fresh or not). */
  get size(): number {
    return this.index[SIDE_USER].size + this.index[SIDE_ITEM].size;
  }

  /** The slot of entity `id` of `side` if read within the freshness bound (pinned for the caller), else -1. */
  acquire(side: CacheSide, id: string, now: number): number {
    const slot = this.index[side].get(id);
    if (slot === undefined || now - (this.readAt[slot] ?? 0) > this.freshnessMs) return -1;
    this.pins[slot] = (this.pins[slot] ?? 0) + 1;
    return slot;
  }

  /**
   * Stores what the store returned for entity `id` of `side` (null: the entity is unseen) and
   * returns its slot, pinned for the caller. A value that is not a state of at least `read` floats
   * returns SLOT_SHARED (not cached: the next read tries again). `read` (at most `width`): how many
   * floats of the state scoring reads; a release scored by an adapter reads its own side's whole
   * state but only the view of the other side's (serving/adapter-model.ts).
   */
  fill(side: CacheSide, id: string, value: Buffer | null, now: number, partition: number, read = this.width): number {
    const index = this.index[side];
    let slot = index.get(id);
    if (slot === undefined || (this.pins[slot] ?? 0) > 0) {
      if (slot !== undefined) index.delete(id);
      slot = this.allocate();
      this.ids[slot] = id;
      this.sides[slot] = side;
      index.set(id, slot);
    }
    const count = value === null ? -1 : readStateView(value, this.views, slot * this.width, Math.min(read, this.width));
    if (value !== null && count < 0) {
      index.delete(id);
      this.ids[slot] = undefined;
      return SLOT_SHARED;
    }
    this.counts[slot] = count;
    this.readAt[slot] = now;
    this.partitions[slot] = partition;
    this.pins[slot] = (this.pins[slot] ?? 0) + 1;
    return slot;
  }

  /** Pins a slot once more (a second request scoring with it). */
  pin(slot: number): void {
    if (slot >= 0) this.pins[slot] = (this.pins[slot] ?? 0) + 1;
  }

  /** Releases a slot pinned by `acquire` or `fill` (sentinels are ignored). */
  release(slot: number): void {
    if (slot >= 0) this.pins[slot] = (this.pins[slot] ?? 1) - 1;
  }

  /** The next unpinned slot from the clock hand; its old entry is dropped. */
  private allocate(): number {
    for (let tries = 0; tries < this.capacity; tries++) {
      const slot = this.hand;
      this.hand = slot + 1 === this.capacity ? 0 : slot + 1;
      if ((this.pins[slot] ?? 0) > 0) continue;
      const old = this.ids[slot];
      if (old !== undefined) {
        const index = this.index[this.sides[slot] === SIDE_USER ? SIDE_USER : SIDE_ITEM];
        if (index.get(old) === slot) index.delete(old);
      }
      this.ids[slot] = undefined;
      return slot;
    }
    // The options check (serving/options.ts) keeps the pinned slots below the capacity.
    throw new ThawError('LIFECYCLE', `state cache: all ${this.capacity} slots are pinned by requests in flight`);
  }
}
