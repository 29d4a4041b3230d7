/**
 * Binary encoding of one EntityState, the value stored per entity (Redis, snapshots). Fixed
 * 28-byte little-endian header, then the parameters as float32 LE:
 *
 * | offset | type | field                                   |
 * |--------|------|-----------------------------------------|
 * | 0      | u8   | format version (1)                      |
 * | 1      | u8   | flags (0; reserved)                     |
 * | 2      | u16  | reserved (0)                            |
 * | 4      | u32  | count                                   |
 * | 8      | f64  | lastOffset (integer, -1 = none)         |
 * | 16     | f64  | lastEventMs                             |
 * | 24     | u32  | number of params                        |
 * | 28     | f32… | params                                  |
 *
 * lastOffset is an f64 at a fixed position so the Redis CAS script can read it with
 * `struct.unpack('<d', value, 9)` (Lua numbers are doubles; offsets stay below 2^53).
 */
import { endianness } from 'node:os';
import { ThawError } from '../lib/errors.js';
import type { EntityState } from './types.js';

export const STATE_FORMAT_VERSION = 1;
export const STATE_HEADER_BYTES = 28;
/** Byte position of lastOffset (0-based), shared with the Lua CAS script. */
export const STATE_OFFSET_POS = 8;
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

function invalid(what: string): ThawError {
  return new ThawError('STATE_CORRUPT', `refusing to encode entity state: ${what}`);
}

/** Encodes a state; throws STATE_CORRUPT for values the format cannot hold faithfully. */
export function encodeState(s: EntityState): Buffer {
  if (!Number.isInteger(s.count) || s.count < 0 || s.count > 0xffffffff) throw invalid(`count ${s.count}`);
  if (!Number.isSafeInteger(s.lastOffset) || s.lastOffset < -1) throw invalid(`lastOffset ${s.lastOffset}`);
  if (!Number.isFinite(s.lastEventMs)) throw invalid(`lastEventMs ${s.lastEventMs}`);
  const n = s.params.length;
  const buf = Buffer.allocUnsafe(STATE_HEADER_BYTES + 4 * n);
  buf.writeUInt8(STATE_FORMAT_VERSION, 0);
  buf.writeUInt8(0, 1);
  buf.writeUInt16LE(0, 2);
  buf.writeUInt32LE(s.count, 4);
  buf.writeDoubleLE(s.lastOffset, STATE_OFFSET_POS);
  buf.writeDoubleLE(s.lastEventMs, 16);
  buf.writeUInt32LE(n, 24);
  if (LITTLE_ENDIAN_HOST) {
    buf.set(new Uint8Array(s.params.buffer, s.params.byteOffset, 4 * n), STATE_HEADER_BYTES);
  } else {
    for (let i = 0; i < n; i++) buf.writeFloatLE(s.params[i]!, STATE_HEADER_BYTES + 4 * i);
  }
  return buf;
}

function corrupt(what: string): ThawError {
  return new ThawError('STATE_CORRUPT', `stored entity state is corrupt: ${what}`);
}

/** Decodes a state, validating version and lengths; throws ThawError STATE_CORRUPT. */
export function decodeState(b: Uint8Array): EntityState {
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < STATE_HEADER_BYTES) throw corrupt(`${buf.length} bytes, shorter than the ${STATE_HEADER_BYTES}-byte header`);
  const version = buf.readUInt8(0);
  if (version !== STATE_FORMAT_VERSION) throw corrupt(`unknown format version ${version}`);
  const n = buf.readUInt32LE(24);
  if (buf.length !== STATE_HEADER_BYTES + 4 * n) throw corrupt(`${buf.length} bytes for ${n} params (expected ${STATE_HEADER_BYTES + 4 * n})`);
  const lastOffset = buf.readDoubleLE(STATE_OFFSET_POS);
  if (!Number.isSafeInteger(lastOffset) || lastOffset < -1) throw corrupt(`lastOffset ${lastOffset}`);
  const lastEventMs = buf.readDoubleLE(16);
  if (!Number.isFinite(lastEventMs)) throw corrupt(`lastEventMs ${lastEventMs}`);
  const params = new Float32Array(n);
  if (LITTLE_ENDIAN_HOST) {
    // Copy bytes into the aligned array: the source (a Redis reply) is rarely 4-byte aligned.
    new Uint8Array(params.buffer).set(buf.subarray(STATE_HEADER_BYTES));
  } else {
    for (let i = 0; i < n; i++) params[i] = buf.readFloatLE(STATE_HEADER_BYTES + 4 * i);
  }
  return { count: buf.readUInt32LE(4), lastOffset, lastEventMs, params };
}

/** A deep copy (params copied), for stores that must not share arrays with callers. */
export function cloneState(s: EntityState): EntityState {
  return { count: s.count, lastOffset: s.lastOffset, lastEventMs: s.lastEventMs, params: Float32Array.from(s.params) };
}
