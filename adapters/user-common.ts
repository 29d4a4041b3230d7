/**
 * Checks shared by the user-side adapters over the model family (`coldnas`, `fixed-adaptive`): the
 * event layout must be a user layout that produces exactly the rows the model was built for, and
 * every batch must carry one well-sized state per event.
 */
import { ConfigError, ThawError } from '../lib/errors.js';
import type { FieldLayout } from '../models/ctr-model.js';
import type { EventLayout } from '../models/event-layout.js';
import type { AdapterBatch } from './types.js';

/** Default rows per forward pass: bounds tensor memory when a wave is very large. */
export const DEFAULT_CHUNK_ROWS = 4096;

/**
 * Throws RELEASE_INCOMPATIBLE unless `layout` is a user layout whose fields, slots and table size
 * are the model's: rows encoded with another layout would hash into rows the model never trained.
 */
export function checkUserLayout(adapter: string, layout: EventLayout, encoded: FieldLayout, model: FieldLayout, vocab: number): void {
  const bad = (why: string): never => {
    throw new ThawError('RELEASE_INCOMPATIBLE', `${adapter}: ${why}`);
  };
  if (layout.side !== 'user') bad(`needs a user-side event layout (field 0 = the user), got side ${layout.side}`);
  if (layout.vocab !== vocab) bad(`event layout has ${layout.vocab} table rows, the model ${vocab}`);
  const same = (a: readonly (string | number)[], b: readonly (string | number)[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
  if (!same(encoded.fieldNames, model.fieldNames)) bad(`event layout fields [${encoded.fieldNames.join(',')}] differ from the model's [${model.fieldNames.join(',')}]`);
  if (!same([...encoded.slotField], [...model.slotField])) bad("event layout slots differ from the model's");
}

/** Throws unless `batch` has one state of `stateSize` floats per event. */
export function checkBatch(adapter: string, batch: AdapterBatch, stateSize: number): void {
  if (batch.states.length !== batch.events.length) {
    throw new ThawError('MODEL_ERROR', `${adapter}: ${batch.events.length} events but ${batch.states.length} states`);
  }
  for (const st of batch.states) {
    if (st.length !== stateSize) throw new ThawError('STATE_CORRUPT', `${adapter}: state has ${st.length} floats, expected ${stateSize}`);
  }
}

/** A non-negative integer option, or its default; ConfigError naming `key` otherwise. */
export function nonNegativeInt(key: string, value: number | undefined, dflt: number): number {
  const v = value ?? dflt;
  if (!Number.isSafeInteger(v) || v < 0) throw new ConfigError(key, `must be an integer >= 0, got ${String(value)}`);
  return v;
}

/** A positive integer option, or its default; ConfigError naming `key` otherwise. */
export function positiveInt(key: string, value: number | undefined, dflt: number): number {
  const v = value ?? dflt;
  if (!Number.isSafeInteger(v) || v <= 0) throw new ConfigError(key, `must be a positive integer, got ${String(value)}`);
  return v;
}
