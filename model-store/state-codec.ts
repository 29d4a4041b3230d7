/**
 * Binary encoding of one EntityState, the value stored per entity (Redis, snapshots). A fixed
 * little-endian header, then the parameters as float32 LE. Two formats, both read:
 *
 * | offset | type | field                                                        |
 * |--------|------|--------------------------------------------------------------|
 * | 0      | u8   | format version: 1, or 2 (the state records its origin)       |
 * | 1      | u8   | flags (bit 0: recent views follow)                           |
 * | 2      | u16  | reserved (0)                                                 |
 * | 4      | u32  | count                                                        |
 * | 8      | f64  | lastOffset (integer, -1 = none)                              |
 * | 16     | f64  | lastEventMs                                                  |
 * | 24     | u32  | number of params                                             |
 * | 28     | u32  | format 2 only: origin partition                              |
 * | 32     | u32  | format 2 only: origin topic tag (model-store/origin.ts)      |
 * | 28/36  | f32… | params (after the 28-byte header of format 1, 36 of format 2) |
 *
 * Format 2 is written for states with an `origin` (the Kafka worker's), format 1 otherwise (demo,
 * evaluation, and every state written before origins existed, which still loads).
 *
 * With flag bit 0, the state's `recent` views follow the params: f64 baseMs, u32 number of entries,
 * u32 floats per view, then per entry u32 key, f64 eventMs, u32 1 if a view follows (else 0), and the
 * view's floats (float32 LE). The first 28 bytes, and so the CAS script's reading of lastOffset, are
 * the same in every case.
 *
 * lastOffset is an f64 at a fixed position so the Redis CAS script can read it with
 * `struct.unpack('<d', value, 9)` (Lua numbers are doubles; offsets stay below 2^53); the script
 * compares origins as the 8 raw bytes at 28 of two format-2 values.
 */
import { endianness } from 'node:os';
import { ThawError } from '../lib/errors.js';
import type { EntityState, RecentView, RecentViews, StateOrigin } from './types.js';

/** Format of states without an origin. */
export const STATE_FORMAT_V1 = 1;
/** Format of states with an origin (the Kafka worker's). */
export const STATE_FORMAT_V2 = 2;
/** Header of format 1; format 2's is STATE_V2_HEADER_BYTES (the origin follows the first 28 bytes). */
export const STATE_HEADER_BYTES = 28;
export const STATE_V2_HEADER_BYTES = 36;
/** Byte position of the origin (partition, topic tag) in a format-2 state, shared with the Lua CAS script. */
export const STATE_ORIGIN_POS = 28;
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
  const origin = s.origin;
  if (origin !== undefined && !(isU32(origin.partition) && isU32(origin.topicTag))) throw invalid(`origin ${JSON.stringify(origin)}`);
  const head = origin === undefined ? STATE_HEADER_BYTES : STATE_V2_HEADER_BYTES;
  const buf = Buffer.allocUnsafe(head + 4 * n + recentBytes);
  buf.writeUInt8(origin === undefined ? STATE_FORMAT_V1 : STATE_FORMAT_V2, 0);
  buf.writeUInt8(recent === undefined ? 0 : FLAG_RECENT, 1);
  buf.writeUInt16LE(0, 2);
  buf.writeUInt32LE(s.count, 4);
  buf.writeDoubleLE(s.lastOffset, STATE_OFFSET_POS);
  buf.writeDoubleLE(s.lastEventMs, 16);
  buf.writeUInt32LE(n, 24);
  if (origin !== undefined) {
    buf.writeUInt32LE(origin.partition, STATE_ORIGIN_POS);
    buf.writeUInt32LE(origin.topicTag, STATE_ORIGIN_POS + 4);
  }
  writeFloats(buf, head, s.params);
  if (recent !== undefined) {
    let at = head + 4 * n;
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

function isU32(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
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
  if (buf.length < STATE_HEADER_BYTES) return -1;
  const version = buf[0];
  if (version !== STATE_FORMAT_V1 && version !== STATE_FORMAT_V2) return -1;
  const head = version === STATE_FORMAT_V2 ? STATE_V2_HEADER_BYTES : STATE_HEADER_BYTES;
  const n = buf.readUInt32LE(24);
  if (n < width || buf.length < head + 4 * n) return -1;
  if (LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer, out.byteOffset + 4 * at, 4 * width).set(buf.subarray(head, head + 4 * width));
  } else {
    for (let i = 0; i < width; i++) out[at + i] = buf.readFloatLE(head + 4 * i);
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
  if (version !== STATE_FORMAT_V1 && version !== STATE_FORMAT_V2) throw corrupt(`unknown format version ${version}`);
  const head = version === STATE_FORMAT_V2 ? STATE_V2_HEADER_BYTES : STATE_HEADER_BYTES;
  if (buf.length < head) throw corrupt(`${buf.length} bytes, shorter than the ${head}-byte header of format ${version}`);
  const flags = buf.readUInt8(1);
  if ((flags & ~FLAG_RECENT) !== 0) throw corrupt(`unknown flags ${flags}`);
  const n = buf.readUInt32LE(24);
  const end = head + 4 * n;
  if (buf.length < end) throw corrupt(`${buf.length} bytes for ${n} params (expected at least ${end})`);
  const recent = (flags & FLAG_RECENT) !== 0 ? decodeRecent(buf, end) : undefined;
  if (recent === undefined && buf.length !== end) throw corrupt(`${buf.length} bytes for ${n} params (expected ${end})`);
  const lastOffset = buf.readDoubleLE(STATE_OFFSET_POS);
  if (!Number.isSafeInteger(lastOffset) || lastOffset < -1) throw corrupt(`lastOffset ${lastOffset}`);
  const lastEventMs = buf.readDoubleLE(16);
  if (!Number.isFinite(lastEventMs)) throw corrupt(`lastEventMs ${lastEventMs}`);
  const params = readFloats(buf, head, n);
  const state: EntityState = { count: buf.readUInt32LE(4), lastOffset, lastEventMs, params };
  if (recent !== undefined) state.recent = recent;
  if (version === STATE_FORMAT_V2) state.origin = { partition: buf.readUInt32LE(STATE_ORIGIN_POS), topicTag: buf.readUInt32LE(STATE_ORIGIN_POS + 4) };
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
  if (s.origin !== undefined) copy.origin = cloneOrigin(s.origin);
  return copy;
}

/** A deep copy of recent views. */
export function cloneRecent(r: RecentViews): RecentViews {
  return { baseMs: r.baseMs, entries: r.entries.map((e) => ({ key: e.key, eventMs: e.eventMs, before: e.before === undefined ? undefined : Float32Array.from(e.before) })) };
}

/** A copy of an origin (states never share it). */
export function cloneOrigin(o: StateOrigin): StateOrigin {
  return { topicTag: o.topicTag, partition: o.partition };
}
