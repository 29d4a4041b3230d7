/**
 * Adapter segments of the worker's auxiliary state scopes, beside its entity states
 * (`${prefix}:${namespace}:${side}:${segment}:{id}`), so namespace promote/drop covers them too.
 */
import { createHash } from 'node:crypto';
import { ADAPTER_RE } from '../model-store/keys.js';

/** Segment of the safeguard states of the states under `segment` (one per partition: ids `p<n>`). */
export function safeguardSegment(segment: string): string {
  const plain = `${segment}.sg`;
  return ADAPTER_RE.test(plain) ? plain : `sg.h${createHash('sha256').update(segment).digest('hex').slice(0, 16)}`;
}
