/**
 * A small binary container for named tensors, the payload of a release's weight files:
 *
 * `THAW` (4 bytes) | u32 LE header length | header JSON (UTF-8, space-padded to 8 bytes) | data
 *
 * Header: `{ "version": 1, "tensors": [{ "name", "dtype": "float32"|"int32", "shape", "offset", "length" }] }`
 * with `offset` in bytes from the start of the data section (8-byte aligned) and `length` in
 * elements. Data is little-endian.
 */
import { endianness } from 'node:os';
import { ThawError } from '../lib/errors.js';

export type Dtype = 'float32' | 'int32';
export interface Tensor {
  data: Float32Array | Int32Array;
  shape: number[];
}

interface TensorHeader {
  name: string;
  dtype: Dtype;
  shape: number[];
  offset: number;
  length: number;
}

const MAGIC = 'THAW';
const LE_HOST = endianness() === 'LE';
const align8 = (n: number): number => (n + 7) & ~7;

function corrupt(what: string): ThawError {
  return new ThawError('RELEASE_CORRUPT', `weights container is corrupt: ${what}`);
}

function elementsOf(shape: readonly number[]): number {
  return shape.reduce((a, d) => a * d, 1);
}

/** Packs named tensors; each tensor's shape must multiply out to its length. */
export function packWeights(tensors: Record<string, Tensor>): Buffer {
  const headers: TensorHeader[] = [];
  const blocks: { data: Tensor['data']; offset: number }[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || elementsOf(t.shape) !== t.data.length) {
      throw new ThawError('MODEL_ERROR', `tensor ${name}: shape [${t.shape.join(', ')}] does not match ${t.data.length} elements`);
    }
    headers.push({ name, dtype: t.data instanceof Float32Array ? 'float32' : 'int32', shape: [...t.shape], offset, length: t.data.length });
    blocks.push({ data: t.data, offset });
    offset = align8(offset + 4 * t.data.length);
  }
  const json = Buffer.from(JSON.stringify({ version: 1, tensors: headers }), 'utf8');
  const headerLen = align8(8 + json.length) - 8;
  const out = Buffer.alloc(8 + headerLen + offset, 0);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(headerLen, 4);
  json.copy(out, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  const dataStart = 8 + headerLen;
  for (const { data: d, offset: from } of blocks) {
    const at = dataStart + from;
    if (LE_HOST) out.set(new Uint8Array(d.buffer, d.byteOffset, 4 * d.length), at);
    else if (d instanceof Float32Array) d.forEach((v, i) => out.writeFloatLE(v, at + 4 * i));
    else d.forEach((v, i) => out.writeInt32LE(v, at + 4 * i));
  }
  return out;
}

/** Unpacks a container written by packWeights, validating every bound; throws RELEASE_CORRUPT. */
export function unpackWeights(buf: Buffer): Record<string, Tensor> {
  if (buf.length < 8 || buf.toString('latin1', 0, 4) !== MAGIC) throw corrupt('bad magic');
  const headerLen = buf.readUInt32LE(4);
  if (8 + headerLen > buf.length) throw corrupt(`header length ${headerLen} exceeds ${buf.length} bytes`);
  let header: { version?: unknown; tensors?: unknown };
  try {
    header = JSON.parse(buf.toString('utf8', 8, 8 + headerLen)) as typeof header;
  } catch (err) {
    throw new ThawError('RELEASE_CORRUPT', 'weights container is corrupt: header is not JSON', { cause: err });
  }
  if (header.version !== 1 || !Array.isArray(header.tensors)) throw corrupt('unknown header version');
  const dataStart = 8 + headerLen;
  const out: Record<string, Tensor> = {};
  for (const raw of header.tensors as TensorHeader[]) {
    const { name, dtype, shape, offset, length } = raw;
    if (typeof name !== 'string' || (dtype !== 'float32' && dtype !== 'int32')) throw corrupt('bad tensor entry');
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0) || elementsOf(shape) !== length) throw corrupt(`tensor ${name}: bad shape`);
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % 4 !== 0 || dataStart + offset + 4 * length > buf.length) throw corrupt(`tensor ${name}: out of bounds`);
    const at = dataStart + offset;
    const data = dtype === 'float32' ? new Float32Array(length) : new Int32Array(length);
    if (LE_HOST) new Uint8Array(data.buffer).set(buf.subarray(at, at + 4 * length));
    else for (let i = 0; i < length; i++) data[i] = dtype === 'float32' ? buf.readFloatLE(at + 4 * i) : buf.readInt32LE(at + 4 * i);
    out[name] = { data, shape: [...shape] };
  }
  return out;
}
