/**
 * Binary encoding of one EntityState, the value stored per entity (Redis, snapshots). Fixed
 * 28-byte little-endian header, then the parameters as float32 LE:
 *
 * | offset | type | field                                   |
 * |--------|------|-----------------------------------------|
 * | 0      | u8   | format version (1)                      |
 * | 1      | u8   | flags (bit 0: recent views follow)      |
 * | 2      | u16  | reserved (0)                            |
 * | 4      | u32  | count                                   |
 * | 8      | f64  | lastOffset (integer, -1 = none)         |
 * | 16     | f64  | lastEventMs                             |
 * | 24     | u32  | number of params                        |
 * | 28     | f32… | params                                  |
 *
 * With flag bit 0, the state's `recent` views follow the params: f64 baseMs, u32 number of entries,
 * u32 floats per view, then per entry u32 key, f64 eventMs, u32 1 if a view follows (else 0), and the
 * view's floats (float32 LE). The header, and so the CAS script's reading of lastOffset, is the same
 * either way.
 *
 * lastOffset is an f64 at a fixed position so the Redis CAS script can read it with
 * `struct.unpack('<d', value, 9)` (Lua numbers are doubles; offsets stay below 2^53).
 */
import { endianness } from 'node:os';
import { ThawError } from '../lib/errors.js';
import type { EntityState, RecentView, RecentViews } from './types.js';

export const STATE_FORMAT_VERSION = 1;
export const STATE_HEADER_BYTES = 28;
/** Byte position of lastOffset (0-based), shared with the Lua CAS script. */
export const STATE_OFFSET_POS = 8;
const FLAG_RECENT = 1;
const RECENT_HEAD_BYTES = 16;
const ENTRY_HEAD_BYTES = 16;
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
  const recent = s.recent;
  const width = recent?.entries.find((e) => e.before !== undefined)?.before?.length ?? 0;
  let recentBytes = 0;
  if (recent !== undefined) {
    if (!Number.isFinite(recent.baseMs)) throw invalid(`recent.baseMs ${recent.baseMs}`);
    recentBytes = RECENT_HEAD_BYTES;
    for (const e of recent.entries) {
      if (!Number.isFinite(e.eventMs) || !Number.isInteger(e.key) || e.key < 0 || e.key > 0xffffffff) throw invalid(`recent entry ${JSON.stringify({ key: e.key, eventMs: e.eventMs })}`);
      if (e.before !== undefined && e.before.length !== width) throw invalid(`recent views of ${e.before.length} and ${width} floats`);
      recentBytes += ENTRY_HEAD_BYTES + (e.before === undefined ? 0 : 4 * width);
    }
  }
  const buf = Buffer.allocUnsafe(STATE_HEADER_BYTES + 4 * n + recentBytes);
  buf.writeUInt8(STATE_FORMAT_VERSION, 0);
  buf.writeUInt8(recent === undefined ? 0 : FLAG_RECENT, 1);
  buf.writeUInt16LE(0, 2);
  buf.writeUInt32LE(s.count, 4);
  buf.writeDoubleLE(s.lastOffset, STATE_OFFSET_POS);
  buf.writeDoubleLE(s.lastEventMs, 16);
  buf.writeUInt32LE(n, 24);
  writeFloats(buf, STATE_HEADER_BYTES, s.params);
  if (recent !== undefined) {
    let at = STATE_HEADER_BYTES + 4 * n;
    buf.writeDoubleLE(recent.baseMs, at);
    buf.writeUInt32LE(recent.entries.length, at + 8);
    buf.writeUInt32LE(width, at + 12);
    at += RECENT_HEAD_BYTES;
    for (const e of recent.entries) {
      buf.writeUInt32LE(e.key, at);
      buf.writeDoubleLE(e.eventMs, at + 4);
      buf.writeUInt32LE(e.before === undefined ? 0 : 1, at + 12);
      at += ENTRY_HEAD_BYTES;
      if (e.before !== undefined) {
        writeFloats(buf, at, e.before);
        at += 4 * width;
      }
    }
  }
  return buf;
}

function writeFloats(buf: Buffer, at: number, xs: Float32Array): void {
  if (LITTLE_ENDIAN_HOST) {
    buf.set(new Uint8Array(xs.buffer, xs.byteOffset, 4 * xs.length), at);
  } else {
    for (let i = 0; i < xs.length; i++) buf.writeFloatLE(xs[i] ?? 0, at + 4 * i);
  }
}

function readFloats(buf: Buffer, at: number, n: number): Float32Array {
  const out = new Float32Array(n);
  if (LITTLE_ENDIAN_HOST) {
    // Copy bytes into the aligned array: the source (a Redis reply) is rarely 4-byte aligned.
    new Uint8Array(out.buffer).set(buf.subarray(at, at + 4 * n));
  } else {
    for (let i = 0; i < n; i++) out[i] = buf.readFloatLE(at + 4 * i);
  }
  return out;
}

function corrupt(what: string): ThawError {
  return new ThawError('STATE_CORRUPT', `stored entity state is corrupt: ${what}`);
}

/**
 * Reads only what scoring needs from an encoded state, allocating nothing: copies the first
 * `width` params (an adapter's VIEW) into `out` at `at` and returns the state's count, or -1 when
 * the bytes are not a state of at least `width` params (the caller treats it as unreadable). The
 * scoring API decodes thousands of states per millisecond this way (serving/state-cache.ts).
 */
export function readStateView(buf: Buffer, out: Float32Array, at: number, width: number): number {
  if (buf.length < STATE_HEADER_BYTES || buf[0] !== STATE_FORMAT_VERSION) return -1;
  const n = buf.readUInt32LE(24);
  if (n < width || buf.length < STATE_HEADER_BYTES + 4 * n) return -1;
  if (LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer, out.byteOffset + 4 * at, 4 * width).set(buf.subarray(STATE_HEADER_BYTES, STATE_HEADER_BYTES + 4 * width));
  } else {
    for (let i = 0; i < width; i++) out[at + i] = buf.readFloatLE(STATE_HEADER_BYTES + 4 * i);
  }
  return buf.readUInt32LE(4);
}

/** Event time of the newest event applied to an encoded state (unix ms), without decoding it. */
export function readStateEventMs(buf: Buffer): number {
  return buf.length < STATE_HEADER_BYTES ? 0 : buf.readDoubleLE(16);
}

/** Decodes a state, validating version and lengths; throws ThawError STATE_CORRUPT. */
export function decodeState(b: Uint8Array): EntityState {
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf.length < STATE_HEADER_BYTES) throw corrupt(`${buf.length} bytes, shorter than the ${STATE_HEADER_BYTES}-byte header`);
  const version = buf.readUInt8(0);
  if (version !== STATE_FORMAT_VERSION) throw corrupt(`unknown format version ${version}`);
  const flags = buf.readUInt8(1);
  if ((flags & ~FLAG_RECENT) !== 0) throw corrupt(`unknown flags ${flags}`);
  const n = buf.readUInt32LE(24);
  const end = STATE_HEADER_BYTES + 4 * n;
  if (buf.length < end) throw corrupt(`${buf.length} bytes for ${n} params (expected at least ${end})`);
  const recent = (flags & FLAG_RECENT) !== 0 ? decodeRecent(buf, end) : undefined;
  if (recent === undefined && buf.length !== end) throw corrupt(`${buf.length} bytes for ${n} params (expected ${end})`);
  const lastOffset = buf.readDoubleLE(STATE_OFFSET_POS);
  if (!Number.isSafeInteger(lastOffset) || lastOffset < -1) throw corrupt(`lastOffset ${lastOffset}`);
  const lastEventMs = buf.readDoubleLE(16);
  if (!Number.isFinite(lastEventMs)) throw corrupt(`lastEventMs ${lastEventMs}`);
  const params = readFloats(buf, STATE_HEADER_BYTES, n);
  const state: EntityState = { count: buf.readUInt32LE(4), lastOffset, lastEventMs, params };
  if (recent !== undefined) state.recent = recent;
  return state;
}

/** The recent views that start at byte `at` and must end the buffer. */
function decodeRecent(buf: Buffer, at: number): RecentViews {
  if (buf.length < at + RECENT_HEAD_BYTES) throw corrupt(`${buf.length} bytes, too short for the recent views' header`);
  const baseMs = buf.readDoubleLE(at);
  if (!Number.isFinite(baseMs)) throw corrupt(`recent.baseMs ${baseMs}`);
  const count = buf.readUInt32LE(at + 8);
  const width = buf.readUInt32LE(at + 12);
  let o = at + RECENT_HEAD_BYTES;
  const entries: RecentView[] = [];
  for (let i = 0; i < count; i++) {
    if (buf.length < o + ENTRY_HEAD_BYTES) throw corrupt(`recent entry ${i} overruns the state`);
    const key = buf.readUInt32LE(o);
    const eventMs = buf.readDoubleLE(o + 4);
    const hasView = buf.readUInt32LE(o + 12);
    if (!Number.isFinite(eventMs) || hasView > 1) throw corrupt(`recent entry ${i}`);
    o += ENTRY_HEAD_BYTES;
    let before: Float32Array | undefined;
    if (hasView === 1) {
      if (buf.length < o + 4 * width) throw corrupt(`recent view ${i} overruns the state`);
      before = readFloats(buf, o, width);
      o += 4 * width;
    }
    entries.push({ key, eventMs, before });
  }
  if (o !== buf.length) throw corrupt(`${buf.length - o} bytes after the recent views`);
  return { baseMs, entries };
}

/** A deep copy (params and recent views copied), for stores that must not share arrays with callers. */
export function cloneState(s: EntityState): EntityState {
  const copy: EntityState = { count: s.count, lastOffset: s.lastOffset, lastEventMs: s.lastEventMs, params: Float32Array.from(s.params) };
  if (s.recent !== undefined) copy.recent = cloneRecent(s.recent);
  return copy;
}

/** A deep copy of recent views. */
export function cloneRecent(r: RecentViews): RecentViews {
  return { baseMs: r.baseMs, entries: r.entries.map((e) => ({ key: e.key, eventMs: e.eventMs, before: e.before === undefined ? undefined : Float32Array.from(e.before) })) };
}
