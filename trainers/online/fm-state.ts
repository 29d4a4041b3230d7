/**
 * Pieces of the FM learner's training state as checkpoint arrays (trainers/checkpoint.ts), bit-exact:
 * named arrays, doubles, and the entity replicas of one side in their LRU order (least recently used
 * first), so a restored cache evicts the same entities the saved one would have.
 */
import type { LRUCache } from 'lru-cache';
import { ThawError } from '../../lib/errors.js';
import { bytesArray, bytesValue, f64Values as doubles } from '../checkpoint.js';

export { f64Array } from '../checkpoint.js';

/** Copies the array `name` of `state` into `into`; STATE_CORRUPT when it is missing or of another length. */
export function restoreArray(state: Map<string, Float32Array>, name: string, into: Float32Array): void {
  const a = state.get(name);
  if (a === undefined || a.length !== into.length) throw new ThawError('STATE_CORRUPT', `checkpoint lacks ${name} of length ${into.length}`);
  into.set(a);
}

/** The `n` doubles of the array `name` (made by `f64Array`); STATE_CORRUPT otherwise. */
export function f64Values(state: Map<string, Float32Array>, name: string, n: number): Float64Array {
  const a = state.get(name);
  if (a === undefined) throw new ThawError('STATE_CORRUPT', `checkpoint lacks ${name}`);
  const out = doubles(a);
  if (out.length !== n) throw new ThawError('STATE_CORRUPT', `checkpoint's ${name} holds ${out.length} values, expected ${n}`);
  return out;
}

/** `<prefix>.ids` (JSON, least recently used first) and `<prefix>.states` (concatenated, equal lengths). */
export function replicasArrays(prefix: string, cache: LRUCache<string, Float32Array>, out: Map<string, Float32Array>): void {
  const ids: string[] = [];
  const states: Float32Array[] = [];
  for (const id of cache.rkeys()) {
    // peek: reading must not change the recency order being saved.
    const st = cache.peek(id);
    if (st === undefined) continue;
    ids.push(id);
    states.push(st);
  }
  const size = states[0]?.length ?? 0;
  const all = new Float32Array(states.length * size);
  states.forEach((st, i) => {
    if (st.length !== size) throw new ThawError('STATE_CORRUPT', `replica ${ids[i] ?? i} has ${st.length} floats, others ${size}`);
    all.set(st, i * size);
  });
  out.set(`${prefix}.ids`, bytesArray(Buffer.from(JSON.stringify(ids), 'utf8')));
  out.set(`${prefix}.states`, all);
}

/** Replaces the cache's entries by the saved ones, in their saved recency order. */
export function restoreReplicas(prefix: string, cache: LRUCache<string, Float32Array>, state: Map<string, Float32Array>): void {
  const idsArr = state.get(`${prefix}.ids`);
  const all = state.get(`${prefix}.states`);
  if (idsArr === undefined || all === undefined) throw new ThawError('STATE_CORRUPT', `checkpoint lacks ${prefix}`);
  let ids: unknown;
  try {
    ids = JSON.parse(bytesValue(idsArr).toString('utf8'));
  } catch (cause) {
    throw new ThawError('STATE_CORRUPT', `checkpoint's ${prefix}.ids is not JSON`, { cause });
  }
  if (!Array.isArray(ids) || !ids.every((x): x is string => typeof x === 'string')) throw new ThawError('STATE_CORRUPT', `checkpoint's ${prefix}.ids is not a list of ids`);
  const size = ids.length === 0 ? 0 : all.length / ids.length;
  if (!Number.isInteger(size)) throw new ThawError('STATE_CORRUPT', `checkpoint's ${prefix}.states does not split into ${ids.length} replicas`);
  cache.clear();
  ids.forEach((id, i) => cache.set(id, all.slice(i * size, (i + 1) * size)));
}
