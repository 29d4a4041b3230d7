import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeEvent, encodeFeatures, encodeFeaturesInto, fnv1a32, hashFeature } from '../../../models/features.js';
import type { LabelledEvent } from '../../../schemas/types.js';

void test('fnv1a32 matches the reference vectors over UTF-8 bytes', () => {
  assert.equal(fnv1a32(''), 0x811c9dc5);
  assert.equal(fnv1a32('a'), 0xe40c292c);
  assert.equal(fnv1a32('foobar'), 0xbf9cf968);
  // Non-ASCII: same as hashing the UTF-8 bytes one by one.
  for (const s of ['é', '日本', '😀', 'Café Society']) {
    let h = 0x811c9dc5;
    for (const b of Buffer.from(s, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
    assert.equal(fnv1a32(s), h, s);
  }
});

void test('hashFeature hashes "field=token" mod buckets', () => {
  assert.equal(hashFeature('gender', 'F', 1 << 18), fnv1a32('gender=F') % (1 << 18));
  assert.equal(hashFeature('genres', 'Drama', 1000), fnv1a32('genres=Drama') % 1000);
  assert.notEqual(hashFeature('a', 'bc', 1 << 30), hashFeature('ab', 'c', 1 << 30));
});

void test('encodeFeatures uses sorted field order whatever the key order', () => {
  const a = encodeFeatures({ zip2: ['48'], age: ['18'], genres: ['A', 'B'] }, 4096);
  const b = encodeFeatures({ age: ['18'], genres: ['A', 'B'], zip2: ['48'] }, 4096);
  assert.deepEqual(a, b);
  assert.deepEqual([...a], [hashFeature('age', '18', 4096), hashFeature('genres', 'A', 4096), hashFeature('genres', 'B', 4096), hashFeature('zip2', '48', 4096)]);
  assert.equal(encodeFeatures({}, 10).length, 0);
  const out = new Int32Array(8).fill(-1);
  assert.equal(encodeFeaturesInto({ g: ['x'] }, 100, out, 3, 'u.'), 4);
  assert.equal(out[3], hashFeature('u.g', 'x', 100));
  assert.equal(out[4], -1);
});

void test('encodeEvent keeps user and item fields of the same name apart', () => {
  const ev: LabelledEvent = { eventId: 'e', timeMs: 0, userId: 'u', itemId: 'i', label: 0, userFeatures: { region: ['x'] }, itemFeatures: { region: ['x'] } };
  const idx = encodeEvent(ev, 1 << 20);
  assert.deepEqual([...idx], [hashFeature('u.region', 'x', 1 << 20), hashFeature('i.region', 'x', 1 << 20)]);
  assert.notEqual(idx[0], idx[1]);
});

void test('the bounded token-hash memo never changes a hash, also past its size limit', () => {
  const out = new Int32Array(1);
  for (let i = 0; i < 70_000; i++) {
    encodeFeaturesInto({ tok: [`t${i}`] }, 1 << 20, out, 0, 'u.');
    if (i % 997 === 0 || i > 69_990) assert.equal(out[0], hashFeature('u.tok', `t${i}`, 1 << 20));
  }
  // Same token, other bucket count: the memo holds the raw 32-bit hash, not the row.
  encodeFeaturesInto({ tok: ['t5'] }, 1000, out, 0, 'u.');
  assert.equal(out[0], hashFeature('u.tok', 't5', 1000));
  for (let f = 0; f < 1100; f++) {
    encodeFeaturesInto({ [`f${f}`]: ['x'] }, 4096, out);
    assert.equal(out[0], hashFeature(`f${f}`, 'x', 4096));
  }
});
