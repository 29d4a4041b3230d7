/**
 * Checked access for code under `noUncheckedIndexedAccess`, in place of a non-null assertion (`x!`):
 * where the code's own logic proves an element exists, these say so and fail loudly if the proof is
 * wrong, with a ThawError 'INTERNAL' (a bug, not bad input) instead of an `undefined` read on.
 * For arrays and maps whose elements are never `undefined`.
 */
import { ThawError } from './errors.js';

/** Element `i` of `arr`; throws ThawError 'INTERNAL' naming `what` when `i` is out of range. */
export function at<T>(arr: ArrayLike<T>, i: number, what = 'element'): T {
  const v = arr[i];
  if (v === undefined) throw new ThawError('INTERNAL', `${what} ${i} out of range [0, ${arr.length})`);
  return v;
}

/** `v`, which the caller's logic proves present; throws ThawError 'INTERNAL' naming `what` otherwise. */
export function defined<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new ThawError('INTERNAL', `${what} is missing`);
  return v;
}
