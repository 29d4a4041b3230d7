import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ThawError } from '../../../lib/errors.js';
import { STATE_HEADER_BYTES, STATE_V2_HEADER_BYTES, decodeState, encodeState, readStateView } from '../../../model-store/state-codec.js';
import { originOf } from '../../../model-store/origin.js';
import type { EntityState } from '../../../model-store/types.js';

const sample = (): EntityState => ({ count: 7, lastOffset: 2 ** 40 + 3, lastEventMs: 1_764_000_000_123, params: Float32Array.from([0.5, -1.25, 3e-8, 42]) });

function assertCorrupt(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ThawError && err.code === 'STATE_CORRUPT' && re.test(err.message));
}

void test('round trip keeps every field exactly', () => {
  const s = sample();
  const buf = encodeState(s);
  assert.equal(buf.length, STATE_HEADER_BYTES + 16);
  assert.deepEqual(decodeState(buf), s);
});

void test('round trip of an empty state with lastOffset -1', () => {
  const s: EntityState = { count: 0, lastOffset: -1, lastEventMs: 0, params: new Float32Array(0) };
  assert.deepEqual(decodeState(encodeState(s)), s);
});

void test('decodes from an unaligned slice of a larger buffer', () => {
  const inner = encodeState(sample());
  const outer = Buffer.concat([Buffer.from([9]), inner, Buffer.from([9])]);
  assert.deepEqual(decodeState(outer.subarray(1, 1 + inner.length)), sample());
});

void test('encodes params of a Float32Array view with an offset', () => {
  const big = Float32Array.from([9, 1, 2, 9]);
  const s: EntityState = { count: 1, lastOffset: 5, lastEventMs: 1, params: big.subarray(1, 3) };
  assert.deepEqual(Array.from(decodeState(encodeState(s)).params), [1, 2]);
});

void test('rejects truncated input, wrong version, length mismatch, bad offset', () => {
  const buf = encodeState(sample());
  assertCorrupt(() => decodeState(buf.subarray(0, 10)), /shorter than/);
  assertCorrupt(() => decodeState(buf.subarray(0, buf.length - 1)), /expected/);
  assertCorrupt(() => decodeState(Buffer.concat([buf, Buffer.alloc(4)])), /expected/);
  const v = Buffer.from(buf);
  v[0] = 3;
  assertCorrupt(() => decodeState(v), /version 3/);
  const o = Buffer.from(buf);
  o.writeDoubleLE(1.5, 8);
  assertCorrupt(() => decodeState(o), /lastOffset 1.5/);
  const n = Buffer.from(buf);
  n.writeUInt32LE(0xffffffff, 24);
  assertCorrupt(() => decodeState(n), /params/);
});

void test('refuses to encode values the format cannot hold', () => {
  assertCorrupt(() => encodeState({ ...sample(), count: -1 }), /count/);
  assertCorrupt(() => encodeState({ ...sample(), lastOffset: 2 ** 60 }), /lastOffset/);
  assertCorrupt(() => encodeState({ ...sample(), lastEventMs: Number.NaN }), /lastEventMs/);
});

void test('format 2 records the origin; format 1 (no origin, as written before origins existed) still loads', () => {
  const withOrigin: EntityState = { ...sample(), origin: originOf('thaw.labelled.by-item', 5) };
  const v2 = encodeState(withOrigin);
  assert.equal(v2[0], 2);
  assert.equal(v2.length, STATE_V2_HEADER_BYTES + 16);
  assert.deepEqual(decodeState(v2), withOrigin);
  // The first 28 bytes (what the CAS script reads: version, lastOffset) keep their places.
  const v1 = encodeState(sample());
  assert.equal(v1[0], 1);
  assert.deepEqual(v2.subarray(1, STATE_HEADER_BYTES), v1.subarray(1, STATE_HEADER_BYTES));
  const old = decodeState(v1);
  assert.equal(old.origin, undefined);
  assert.deepEqual(old, sample());
  const recent = { baseMs: 3, entries: [{ key: 9, eventMs: 4, before: Float32Array.from([1, 2]) }] };
  assert.deepEqual(decodeState(encodeState({ ...withOrigin, recent })), { ...withOrigin, recent });
  assertCorrupt(() => decodeState(v2.subarray(0, 30)), /shorter than the 36-byte header/);
  assertCorrupt(() => encodeState({ ...sample(), origin: { topicTag: -1, partition: 0 } }), /origin/);
});

test('readStateView reads the view and count of format-1 and format-2 states (the worker writes format 2)', () => {
  const params = new Float32Array([0.5, -1.25, 2, 3, 4]);
  const v1: EntityState = { count: 7, lastOffset: 3, lastEventMs: 1000, params };
  const v2: EntityState = { ...v1, count: 9, origin: originOf('thaw.labelled.by-item', 2) };
  for (const [state, want] of [
    [v1, 7],
    [v2, 9],
  ] as const) {
    const out = new Float32Array(8).fill(-9);
    assert.equal(readStateView(encodeState(state), out, 2, 3), want);
    assert.deepEqual([...out], [-9, -9, 0.5, -1.25, 2, -9, -9, -9]);
  }
  assert.equal(readStateView(encodeState(v2), new Float32Array(8), 0, 6), -1, 'a view wider than the params is unreadable');
  assert.equal(readStateView(Buffer.from([3, 0, 0, 0]), new Float32Array(8), 0, 1), -1, 'unknown format');
});
