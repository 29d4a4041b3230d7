/**
 * Bounded windows of the entities that are warming up right now: the first `size` events of each
 * entity the trainer sees arrive from its first event on. A window that reaches `size` events is
 * handed back as a meta-learning task (support = its first `support` events, query = the rest) and
 * dropped; a window that does not fill is evicted, oldest first, once `maxEntities` are open, so
 * memory is at most maxEntities × size events whatever the stream does.
 */
import { ConfigError } from '../../lib/errors.js';

/** Options of `EntityWindows`. */
export interface EntityWindowOptions {
  /** Events per window K (support + query). @default 10 */
  size?: number;
  /** Events of a window that form the support set; the query is the rest. @default size / 2, rounded down */
  support?: number;
  /** Open windows kept at most; the oldest is evicted beyond. @default 10_000 */
  maxEntities?: number;
}

/** A completed window: one entity's first `size` events split in time order. */
export interface WindowTask<T> {
  entityId: string;
  support: T[];
  query: T[];
}

export class EntityWindows<T> {
  readonly size: number;
  readonly support: number;
  readonly maxEntities: number;
  /** Insertion order = opening order, so the first key is the oldest open window. */
  private readonly open = new Map<string, T[]>();
  /** Windows evicted before they filled (counter). */
  evicted = 0;

  constructor(opts: EntityWindowOptions = {}) {
    const size = opts.size ?? 10;
    if (!Number.isInteger(size) || size < 2 || size > 1000) throw new ConfigError('windows.size', `must be an integer in [2, 1000], got ${String(opts.size)}`);
    const support = opts.support ?? Math.floor(size / 2);
    if (!Number.isInteger(support) || support < 1 || support >= size) throw new ConfigError('windows.support', `must be an integer in [1, size), got ${String(opts.support)}`);
    const max = opts.maxEntities ?? 10_000;
    if (!Number.isInteger(max) || max < 1) throw new ConfigError('windows.maxEntities', `must be an integer >= 1, got ${String(opts.maxEntities)}`);
    this.size = size;
    this.support = support;
    this.maxEntities = max;
  }

  /** Open windows. */
  get openCount(): number {
    return this.open.size;
  }

  /** Events held in open windows. */
  get heldEvents(): number {
    let n = 0;
    for (const w of this.open.values()) n += w.length;
    return n;
  }

  /** Opens a window for an entity seen for the first time (no-op if one is open). */
  openFor(entityId: string): void {
    if (this.open.has(entityId)) return;
    this.open.set(entityId, []);
    while (this.open.size > this.maxEntities) {
      const oldest = this.open.keys().next().value as string;
      this.open.delete(oldest);
      this.evicted++;
    }
  }

  /** True if the entity's window is open (it is still warming up). */
  isOpen(entityId: string): boolean {
    return this.open.has(entityId);
  }

  /** Adds an event to an open window; returns the task when the window just filled (and closes it). */
  add(entityId: string, item: T): WindowTask<T> | undefined {
    const w = this.open.get(entityId);
    if (w === undefined) return undefined;
    w.push(item);
    if (w.length < this.size) return undefined;
    this.open.delete(entityId);
    return { entityId, support: w.slice(0, this.support), query: w.slice(this.support) };
  }

  /** Drops every open window (after a restart nothing is known of them anyway). */
  clear(): void {
    this.open.clear();
  }
}
