import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PoisonEventError } from '../../../lib/errors.js';
import { catalogRegistry, CATALOG, SCHEMA_NAMES } from '../../../schemas/catalog.js';
import type { Click, EntityProfile, Impression, LabelledEvent } from '../../../schemas/types.js';
import {
  AvroCodec,
  MAX_FUTURE_MS,
  decodeClick,
  decodeImpression,
  decodeLabelled,
  decodeProfile,
  decodeRelease,
  defaultSerde,
  encodeClick,
  encodeImpression,
  encodeLabelled,
  encodeProfile,
  encodeRelease,
  schemaIdOf,
  validateLabelled,
} from '../../../streams/serde.js';

const NOW = 1_750_000_000_000;

const labelled: LabelledEvent = {
  eventId: 'e-1',
  timeMs: NOW - 5000,
  userId: 'u-7',
  itemId: 'i-3',
  label: 1,
  userFeatures: { gender: ['F'], age: ['25-34'] },
  itemFeatures: { genres: ['Drama', 'War'] },
};

function poison(fn: () => unknown, code: 'DECODE_FAILED' | 'VALIDATION_FAILED', reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PoisonEventError, `expected PoisonEventError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, reason);
    return true;
  });
}

test('round trip of every record type gives plain objects equal to the input', () => {
  const imp: Impression = { impressionId: 'imp-1', timeMs: NOW, userId: 'u', itemId: 'i', userFeatures: { a: ['1'] }, itemFeatures: {} };
  const click: Click = { impressionId: 'imp-1', timeMs: NOW + 10 };
  const profile: EntityProfile = { side: 'item', entityId: 'i', timeMs: NOW, features: { year: ['1995'] } };
  const release = { model: 'fm', version: 'v3', path: '/releases/v3', manifestSha256: 'a'.repeat(64), createdAtMs: NOW };
  assert.deepStrictEqual(decodeLabelled(encodeLabelled(labelled), NOW), labelled);
  assert.deepStrictEqual(decodeImpression(encodeImpression(imp), NOW), imp);
  assert.deepStrictEqual(decodeClick(encodeClick(click), NOW), click);
  assert.deepStrictEqual(decodeProfile(encodeProfile(profile), NOW), profile);
  assert.deepStrictEqual(decodeRelease(encodeRelease(release), NOW), release);
});

test('wire format: magic byte 0, big-endian schema id, Avro body', () => {
  const buf = encodeClick({ impressionId: 'a', timeMs: 1 });
  // 0 | id 2 | string "a" (zigzag length 1 = 0x02, 0x61) | long 1 (zigzag 0x02)
  assert.deepStrictEqual([...buf], [0, 0, 0, 0, 2, 0x02, 0x61, 0x02]);
  assert.equal(schemaIdOf(encodeLabelled(labelled)), catalogRegistry().latest(SCHEMA_NAMES.labelled).id);
  // Schema ids above 255 use all four bytes, big-endian.
  const buf2 = Buffer.from(buf);
  buf2.writeUInt32BE(0x01020304, 1);
  assert.deepStrictEqual([...buf2.subarray(0, 5)], [0, 1, 2, 3, 4]);
  assert.equal(schemaIdOf(buf2), 0x01020304);
});

test('encoded buffers are independent copies (the scratch buffer is reused)', () => {
  const a = encodeClick({ impressionId: 'first', timeMs: 1 });
  const b = encodeClick({ impressionId: 'second', timeMs: 2 });
  assert.equal(decodeClick(a, NOW).impressionId, 'first');
  assert.equal(decodeClick(b, NOW).impressionId, 'second');
});

test('records larger than the scratch buffer are encoded', () => {
  const tokens = Array.from({ length: 20_000 }, (_, i) => `token-${i}`);
  const big = { ...labelled, userFeatures: { many: tokens } };
  const buf = encodeLabelled(big);
  assert.ok(buf.length > 64 * 1024);
  assert.deepStrictEqual(decodeLabelled(buf, NOW).userFeatures.many, tokens);
});

test('schema evolution: a v1 writer is read by the v2 reader with the default source', () => {
  const registry = catalogRegistry();
  const v1 = CATALOG.find((e) => e.name === SCHEMA_NAMES.labelled && e.version === 1);
  assert.ok(v1);
  const writerV1 = new AvroCodec(registry, SCHEMA_NAMES.labelled, { writerId: v1.id });
  const buf = writerV1.encode(labelled);
  assert.equal(schemaIdOf(buf), v1.id);
  assert.deepStrictEqual(defaultSerde().decodeLabelledWithSource(buf, NOW), { ...labelled, source: '' });
  assert.deepStrictEqual(decodeLabelled(buf, NOW), labelled);
});

test('schema evolution: a v2 writer is read by a v1 reader, which drops the new field', () => {
  const registry = catalogRegistry();
  const v1 = CATALOG.find((e) => e.name === SCHEMA_NAMES.labelled && e.version === 1);
  assert.ok(v1);
  const buf = encodeLabelled({ ...labelled, source: 'join' });
  assert.notEqual(schemaIdOf(buf), v1.id);
  assert.equal(defaultSerde().decodeLabelledWithSource(buf, NOW).source, 'join');
  const readerV1 = new AvroCodec(registry, SCHEMA_NAMES.labelled, { readerId: v1.id });
  const rec = readerV1.decode(buf);
  assert.equal('source' in rec, false);
  assert.equal(rec.eventId, labelled.eventId);
  assert.deepStrictEqual(rec.itemFeatures, labelled.itemFeatures);
});

test('decode failures are DECODE_FAILED with a precise reason', () => {
  const good = encodeLabelled(labelled);
  poison(() => decodeLabelled(Buffer.from('not avro at all'), NOW), 'DECODE_FAILED', /magic byte is 110/);
  poison(() => decodeLabelled(Buffer.from([0, 0]), NOW), 'DECODE_FAILED', /shorter than the 5-byte/);
  const unknown = Buffer.from(good);
  unknown.writeUInt32BE(999, 1);
  poison(() => decodeLabelled(unknown, NOW), 'DECODE_FAILED', /unknown schema id 999/);
  poison(() => decodeLabelled(good.subarray(0, good.length - 3), NOW), 'DECODE_FAILED', /truncated|corrupt/);
  poison(() => decodeLabelled(Buffer.concat([good, Buffer.from([1, 2])]), NOW), 'DECODE_FAILED', /2 trailing bytes/);
  poison(() => decodeLabelled(encodeClick({ impressionId: 'x', timeMs: 1 }), NOW), 'DECODE_FAILED', /thaw\.Click.*cannot be read as thaw\.LabelledEvent/);
});

test('validation failures are VALIDATION_FAILED naming the field', () => {
  const codec = new AvroCodec(catalogRegistry(), SCHEMA_NAMES.labelled); // no semantic checks on this path
  poison(() => decodeLabelled(codec.encode({ ...labelled, label: 2 }), NOW), 'VALIDATION_FAILED', /"e-1": label must be 0 or 1, got 2/);
  poison(() => decodeLabelled(codec.encode({ ...labelled, userId: '' }), NOW), 'VALIDATION_FAILED', /userId must be a non-empty string/);
  poison(() => decodeLabelled(codec.encode({ ...labelled, eventId: '' }), NOW), 'VALIDATION_FAILED', /\(no id\): eventId/);
  poison(() => decodeLabelled(codec.encode({ ...labelled, timeMs: NOW + MAX_FUTURE_MS + 1 }), NOW), 'VALIDATION_FAILED', /more than 1 day after now/);
  poison(() => decodeLabelled(codec.encode({ ...labelled, timeMs: -5 }), NOW), 'VALIDATION_FAILED', /must not be negative/);
  // Exactly one day ahead is accepted.
  assert.equal(decodeLabelled(codec.encode({ ...labelled, timeMs: NOW + MAX_FUTURE_MS }), NOW).timeMs, NOW + MAX_FUTURE_MS);
  poison(() => validateLabelled({ ...labelled, timeMs: Number.NaN }, NOW), 'VALIDATION_FAILED', /timeMs must be a finite number, got NaN/);
  poison(() => validateLabelled({ ...labelled, timeMs: Number.POSITIVE_INFINITY }, NOW), 'VALIDATION_FAILED', /finite/);
  poison(
    () => decodeImpression(new AvroCodec(catalogRegistry(), SCHEMA_NAMES.impression).encode({ impressionId: 'x', timeMs: 1, userId: 'u', itemId: '' }), NOW),
    'VALIDATION_FAILED',
    /impression "x": itemId/,
  );
});

test('encoders refuse invalid records before they reach Kafka', () => {
  poison(() => encodeLabelled({ ...labelled, label: 3 as 0 }), 'VALIDATION_FAILED', /label must be 0 or 1/);
  poison(() => encodeLabelled({ ...labelled, userFeatures: { a: [1 as unknown as string] } }), 'VALIDATION_FAILED', /non-string token/);
  poison(() => encodeRelease({ model: 'm', version: 'v', path: '/p', manifestSha256: 'xyz', createdAtMs: 1 }), 'VALIDATION_FAILED', /manifestSha256/);
  poison(() => encodeProfile({ side: 'both' as 'user', entityId: 'x', timeMs: 1, features: {} }), 'VALIDATION_FAILED', /side must be user or item/);
});
