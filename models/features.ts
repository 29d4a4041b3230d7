/**
 * Feature hashing shared by trainers, adapters and the ONNX export: every categorical feature
 * `field=token` maps to one row of a fixed-size table by FNV-1a (32-bit) over its UTF-8 bytes.
 * Hashing (not a vocabulary) lets brand-new tokens of brand-new entities land somewhere without a
 * dictionary that grows with the stream. The only cache is a bounded memo of token hashes.
 */
import type { Features, LabelledEvent } from '../schemas/types.js';
import { at } from '../lib/at.js';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Folds one byte into an FNV-1a state. */
function fnvByte(h: number, byte: number): number {
  return Math.imul(h ^ byte, FNV_PRIME) >>> 0;
}

/**
 * Folds a string's UTF-8 bytes into an FNV-1a state without allocating (no TextEncoder), so the
 * hash of `é` is the same here as in any other language hashing the UTF-8 bytes.
 */
export function fnv1aUpdate(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      h = fnvByte(h, c);
    } else if (c < 0x800) {
      h = fnvByte(fnvByte(h, 0xc0 | (c >> 6)), 0x80 | (c & 0x3f));
    } else {
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
        const lo = s.charCodeAt(i + 1);
        if (lo >= 0xdc00 && lo < 0xe000) {
          c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
          i++;
          h = fnvByte(h, 0xf0 | (c >> 18));
          h = fnvByte(h, 0x80 | ((c >> 12) & 0x3f));
          h = fnvByte(h, 0x80 | ((c >> 6) & 0x3f));
          h = fnvByte(h, 0x80 | (c & 0x3f));
          continue;
        }
      }
      // Lone surrogates are hashed as U+FFFD, like TextEncoder does.
      if (c >= 0xd800 && c < 0xe000) c = 0xfffd;
      h = fnvByte(h, 0xe0 | (c >> 12));
      h = fnvByte(h, 0x80 | ((c >> 6) & 0x3f));
      h = fnvByte(h, 0x80 | (c & 0x3f));
    }
  }
  return h;
}

/** FNV-1a 32-bit of a string's UTF-8 bytes (unsigned). */
export function fnv1a32(s: string): number {
  return fnv1aUpdate(FNV_OFFSET, s);
}

const EQ = 0x3d; // '='

/** Table row of feature `field=token`: FNV-1a 32-bit of the UTF-8 bytes of `field=token`, mod `buckets`. */
export function hashFeature(field: string, token: string, buckets: number): number {
  const h = fnv1aUpdate(fnvByte(fnv1aUpdate(FNV_OFFSET, field), EQ), token);
  return h % buckets;
}

/** Number of tokens over all fields. */
export function featureCount(features: Features): number {
  let n = 0;
  for (const field in features) n += features[field]?.length ?? 0;
  return n;
}

/**
 * Writes the rows of every token of `features` into `out` from `offset`, fields in sorted order
 * (so the result does not depend on object key order), tokens in their given order. `prefix` is
 * prepended to each field name (`u.` / `i.` keep a user field and an item field of the same name
 * apart). Returns the new offset. `out` must be large enough (see `featureCount`).
 */
export function encodeFeaturesInto(features: Features, buckets: number, out: Int32Array, offset = 0, prefix = ''): number {
  // Hot path: sources build feature objects with sorted keys, so a for-in walk needs no array;
  // only objects whose keys are out of order pay for Object.keys().sort().
  let sorted = true;
  let prev: string | undefined;
  for (const field in features) {
    if (prev !== undefined && field < prev) {
      sorted = false;
      break;
    }
    prev = field;
  }
  let n = offset;
  if (sorted) {
    for (const field in features) n = encodeField(features, field, buckets, out, n, prefix);
  } else {
    for (const field of Object.keys(features).sort()) n = encodeField(features, field, buckets, out, n, prefix);
  }
  return n;
}

function encodeField(features: Features, field: string, buckets: number, out: Int32Array, n: number, prefix: string): number {
  const tokens = features[field];
  if (tokens === undefined || tokens.length === 0) return n;
  const cache = fieldCache(prefix, field);
  for (let t = 0; t < tokens.length; t++) out[n++] = cache.hash(at(tokens, t, 'tokens')) % buckets;
  return n;
}

/**
 * Bounded memo of token hashes for one field. Hashing in JS walks every character; a Map lookup
 * uses V8's native string hash (computed once per string object, cached on it), which is several
 * times faster for the short, repetitive tokens of a stream. Bounded: a field's memo is dropped
 * when it reaches MAX_TOKENS, the field table when it reaches MAX_FIELDS.
 */
class FieldHashes {
  private readonly tokens = new Map<string, number>();
  constructor(private readonly fieldHash: number) {}
  hash(token: string): number {
    let h = this.tokens.get(token);
    if (h === undefined) {
      h = fnv1aUpdate(this.fieldHash, token);
      if (this.tokens.size >= MAX_TOKENS) this.tokens.clear();
      this.tokens.set(token, h);
    }
    return h;
  }
}

const MAX_TOKENS = 1 << 16;
const MAX_FIELDS = 1024;
const fieldCaches = new Map<string, Map<string, FieldHashes>>();
let fieldCount = 0;

function fieldCache(prefix: string, field: string): FieldHashes {
  let byField = fieldCaches.get(prefix);
  if (byField === undefined) {
    if (fieldCaches.size >= 16) clearFieldCaches();
    byField = new Map();
    fieldCaches.set(prefix, byField);
  }
  let c = byField.get(field);
  if (c === undefined) {
    if (fieldCount >= MAX_FIELDS) {
      clearFieldCaches();
      return fieldCache(prefix, field);
    }
    c = new FieldHashes(fnvByte(fnv1aUpdate(fnv1aUpdate(FNV_OFFSET, prefix), field), EQ));
    byField.set(field, c);
    fieldCount++;
  }
  return c;
}

function clearFieldCaches(): void {
  fieldCaches.clear();
  fieldCount = 0;
}

/** Rows of every token of `features` (sorted field order), e.g. `[hash('gender=F'), hash('genres=Drama'), ...]`. */
export function encodeFeatures(features: Features, buckets: number): Int32Array {
  const out = new Int32Array(featureCount(features));
  encodeFeaturesInto(features, buckets, out);
  return out;
}

/** Field-name prefixes of the two sides in an event's feature vector. */
export const USER_PREFIX = 'u.';
export const ITEM_PREFIX = 'i.';

/** Number of feature rows of an event (user and item features). */
export function eventFeatureCount(event: LabelledEvent): number {
  return featureCount(event.userFeatures) + featureCount(event.itemFeatures);
}

/**
 * Encodes an event's user features (fields prefixed `u.`) then item features (prefixed `i.`) into
 * `out`; returns how many rows were written. The model over an event sees both sides' features.
 */
export function encodeEventInto(event: LabelledEvent, buckets: number, out: Int32Array): number {
  const n = encodeFeaturesInto(event.userFeatures, buckets, out, 0, USER_PREFIX);
  return encodeFeaturesInto(event.itemFeatures, buckets, out, n, ITEM_PREFIX);
}

/** Number of an event's feature rows that are the user's: `encodeEventInto` writes them first. */
export function userFeatureCount(event: LabelledEvent): number {
  return featureCount(event.userFeatures);
}

/** Allocating form of `encodeEventInto`, for offline code. */
export function encodeEvent(event: LabelledEvent, buckets: number): Int32Array {
  const out = new Int32Array(eventFeatureCount(event));
  encodeEventInto(event, buckets, out);
  return out;
}
