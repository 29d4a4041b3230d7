import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ThawError } from '../../../lib/errors.js';
import { packWeights, unpackWeights } from '../../../models/weights.js';

void test('pack/unpack round trip of float32 and int32 tensors', () => {
  const tensors = {
    emb: { data: Float32Array.from([0.1, -2, 3.5, 4, 5, 6]), shape: [2, 3] },
    ids: { data: Int32Array.from([-1, 0, 2147483647]), shape: [3] },
    bias: { data: Float32Array.from([7]), shape: [] },
    empty: { data: new Float32Array(0), shape: [0, 4] },
  };
  const buf = packWeights(tensors);
  assert.equal(buf.toString('latin1', 0, 4), 'THAW');
  assert.equal((8 + buf.readUInt32LE(4)) % 8, 0, 'data section is 8-byte aligned');
  assert.deepEqual(unpackWeights(buf), tensors);
});

void test('shape mismatch is refused; damaged containers throw RELEASE_CORRUPT', () => {
  assert.throws(() => packWeights({ w: { data: new Float32Array(5), shape: [2, 3] } }), /shape/);
  const buf = packWeights({ w: { data: new Float32Array(6), shape: [2, 3] } });
  const corrupt = (e: unknown): boolean => e instanceof ThawError && e.code === 'RELEASE_CORRUPT';
  assert.throws(() => unpackWeights(buf.subarray(0, buf.length - 4)), corrupt);
  assert.throws(() => unpackWeights(Buffer.concat([Buffer.from('NOPE'), buf.subarray(4)])), corrupt);
  const hdr = Buffer.from(buf);
  hdr.writeUInt32LE(1 << 30, 4);
  assert.throws(() => unpackWeights(hdr), corrupt);
  const json = Buffer.from(buf);
  json[8] = 0x41; // break the JSON
  assert.throws(() => unpackWeights(json), corrupt);
});
