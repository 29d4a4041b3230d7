/**
 * Redis key layout of entity states and the validation that keeps it unambiguous:
 * `${prefix}:${namespace}:${side}:${adapter}:{${entityId}}`. The `{…}` hash tag makes every key of
 * one entity (all namespaces, both for COPY during promotion) land in the same cluster slot.
 */
import { ConfigError } from '../lib/errors.js';
import type { StateScope } from './types.js';

/** Namespace names: `live` or a replay's name. No `:` and no glob characters, so SCAN patterns are exact. */
export const NAMESPACE_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** Key prefixes: no `:` (a prefix `a:b` would make `a`'s namespace `b` ambiguous), no glob or brace characters. */
export const PREFIX_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Adapter names end up inside keys: same restrictions as prefixes. */
export const ADAPTER_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function checkPrefix(prefix: string, key = 'keyPrefix'): string {
  if (!PREFIX_RE.test(prefix)) throw new ConfigError(key, `must match ${PREFIX_RE.source}, got ${JSON.stringify(prefix)}`);
  return prefix;
}

export function checkNamespace(ns: string, key = 'namespace'): string {
  if (!NAMESPACE_RE.test(ns)) throw new ConfigError(key, `must match ${NAMESPACE_RE.source}, got ${JSON.stringify(ns)}`);
  return ns;
}

/** Validates a scope and returns the key part before the entity's hash tag (`prefix:ns:side:adapter:`). */
export function scopeKeyPrefix(prefix: string, scope: StateScope): string {
  checkNamespace(scope.namespace, 'scope.namespace');
  if (scope.side !== 'user' && scope.side !== 'item') throw new ConfigError('scope.side', `must be user or item, got ${JSON.stringify(scope.side)}`);
  if (!ADAPTER_RE.test(scope.adapter)) throw new ConfigError('scope.adapter', `must match ${ADAPTER_RE.source}, got ${JSON.stringify(scope.adapter)}`);
  return `${prefix}:${scope.namespace}:${scope.side}:${scope.adapter}:`;
}

/**
 * Entity ids may contain any character. `%`, `{` and `}` are percent-encoded so the tag is the
 * whole id (Redis hashes the text between the first `{` and the next `}`) and the mapping stays
 * one-to-one.
 */
export function escapeEntityId(id: string): string {
  return /[%{}]/.test(id) ? id.replace(/%/g, '%25').replace(/\{/g, '%7B').replace(/\}/g, '%7D') : id;
}

export function entityKey(scopePrefix: string, entityId: string): string {
  return `${scopePrefix}{${escapeEntityId(entityId)}}`;
}

/** SCAN pattern matching every state key of one namespace (prefix and namespace contain no glob characters). */
export function namespacePattern(prefix: string, ns: string): string {
  return `${prefix}:${ns}:*`;
}

/**
 * Segment after the prefix of the least-recently-seen index keys (RedisEntityStore `maxEntities`).
 * It starts with `_`, which no namespace can, so `namespacePattern` never matches an index key:
 * namespace counts stay counts of states, and promoting a namespace leaves the target's index alone.
 */
export const SEEN_INDEX_SEGMENT = '_seen';

/** Key of one scope's last-seen sorted set: `${prefix}:_seen:${namespace}:${side}:${adapter}`. */
export function seenIndexKey(prefix: string, scope: StateScope): string {
  return `${prefix}:${SEEN_INDEX_SEGMENT}:${scope.namespace}:${scope.side}:${scope.adapter}`;
}

/** SCAN pattern of every last-seen index of one namespace (for dropping a namespace). */
export function seenIndexPattern(prefix: string, ns: string): string {
  return `${prefix}:${SEEN_INDEX_SEGMENT}:${ns}:*`;
}

/**
 * Segment after the prefix of the per-scope progress hashes (consumers/progress.ts). Starts with `_`
 * like SEEN_INDEX_SEGMENT, so `namespacePattern` never matches a progress key.
 */
export const PROGRESS_SEGMENT = '_progress';

/** Key of one scope's progress hash: `${prefix}:_progress:${namespace}:${side}:${adapter}`. */
export function progressKey(prefix: string, scope: StateScope): string {
  return `${prefix}:${PROGRESS_SEGMENT}:${scope.namespace}:${scope.side}:${scope.adapter}`;
}

/** Field of one partition in a progress hash (Kafka topic names cannot contain `:`). */
export function progressField(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

/** SCAN pattern of every progress hash of one namespace (for dropping a namespace). */
export function progressPattern(prefix: string, ns: string): string {
  return `${prefix}:${PROGRESS_SEGMENT}:${ns}:*`;
}

/**
 * Key of one scope's progress hash on one Redis Cluster node: the standalone key followed by a hash
 * tag that maps to a slot of that node (redis-cluster.ts slotTag). Matched by `progressPattern`.
 */
export function nodeProgressKey(prefix: string, scope: StateScope, tag: string): string {
  return `${progressKey(prefix, scope)}:{${tag}}`;
}
