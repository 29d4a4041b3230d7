/**
 * Where an entity state's `lastOffset` comes from, and the compare-and-set rule that uses it.
 *
 * A state's lastOffset is an offset of ONE Kafka partition. When the entity's events start arriving
 * from another partition (partitions were added, so the key hashes elsewhere; the worker consumes
 * another topic), the stored offset says nothing about the new partition's offsets: comparing them
 * would skip the new events silently (or accept redeliveries). States written by the Kafka worker
 * therefore record their origin (partition and a tag of the topic name, state-codec.ts format 2);
 * the worker counts and logs a state of another origin and re-bases it on the new partition, and
 * every store's CAS (Redis' Lua script included) lets a write of another origin replace it.
 */
import type { EntityState, StateOrigin } from './types.js';

/** 32-bit FNV-1a of the topic name: what a state records of its topic (8 bytes per state in all). */
export function topicTag(topic: string): number {
  let h = 0x811c9dc5;
  const bytes = Buffer.from(topic, 'utf8');
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The origin of a state written from `partition` of `topic`. */
export function originOf(topic: string, partition: number): StateOrigin {
  return { topicTag: topicTag(topic), partition };
}

/** True when both are known and differ (an unknown origin, a format-1 state, matches anything). */
export function otherOrigin(a: StateOrigin | undefined, b: StateOrigin | undefined): boolean {
  return a !== undefined && b !== undefined && (a.topicTag !== b.topicTag || a.partition !== b.partition);
}

/**
 * The CAS rule of every store: a write is refused (stale) when the stored state has applied the
 * same or a later offset of the same partition. A stored state of another origin never refuses.
 */
export function isStaleWrite(stored: EntityState | undefined, incoming: EntityState): boolean {
  if (stored === undefined) return false;
  if (otherOrigin(stored.origin, incoming.origin)) return false;
  return stored.lastOffset >= incoming.lastOffset;
}
