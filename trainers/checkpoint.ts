/**
 * Training checkpoints: one file holding named Float32Arrays and a JSON header, written to a
 * temporary name then renamed, so a kill mid-write leaves the previous checkpoint intact.
 * Layout: "THAWCKP1" | u32 header length | header JSON | padding to 4 bytes | float32 data.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { ThawError } from '../lib/errors.js';

const MAGIC = 'THAWCKP1';

export interface CheckpointData {
  meta: Record<string, unknown>;
  arrays: Map<string, Float32Array>;
}

export function checkpointPath(dir: string): string {
  return path.join(dir, 'checkpoint.bin');
}

export function writeCheckpoint(dir: string, data: CheckpointData): void {
  mkdirSync(dir, { recursive: true });
  const entries = [...data.arrays].map(([name, a]) => ({ name, length: a.length }));
  const header = Buffer.from(JSON.stringify({ meta: data.meta, entries }), 'utf8');
  const pre = 8 + 4 + header.length;
  const pad = (4 - (pre % 4)) % 4;
  const total = pre + pad + entries.reduce((s, e) => s + e.length * 4, 0);
  const buf = Buffer.alloc(total);
  buf.write(MAGIC, 0, 'ascii');
  buf.writeUInt32LE(header.length, 8);
  header.copy(buf, 12);
  let off = pre + pad;
  for (const a of data.arrays.values()) {
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).copy(buf, off);
    off += a.byteLength;
  }
  const file = checkpointPath(dir);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, buf);
  renameSync(tmp, file);
}

export function readCheckpoint(dir: string): CheckpointData | undefined {
  const file = checkpointPath(dir);
  if (!existsSync(file)) return undefined;
  const buf = readFileSync(file);
  if (buf.length < 12 || buf.toString('ascii', 0, 8) !== MAGIC) throw new ThawError('STATE_CORRUPT', `${file} is not a Thaw checkpoint`);
  const hlen = buf.readUInt32LE(8);
  let header: { meta: Record<string, unknown>; entries: { name: string; length: number }[] };
  try {
    header = JSON.parse(buf.toString('utf8', 12, 12 + hlen)) as typeof header;
  } catch (cause) {
    throw new ThawError('STATE_CORRUPT', `${file}: bad header`, { cause });
  }
  const pre = 12 + hlen;
  let off = pre + ((4 - (pre % 4)) % 4);
  const arrays = new Map<string, Float32Array>();
  for (const e of header.entries) {
    if (off + e.length * 4 > buf.length) throw new ThawError('STATE_CORRUPT', `${file}: truncated at ${e.name}`);
    const a = new Float32Array(e.length);
    Buffer.from(a.buffer).set(buf.subarray(off, off + e.length * 4));
    arrays.set(e.name, a);
    off += e.length * 4;
  }
  return { meta: header.meta, arrays };
}
