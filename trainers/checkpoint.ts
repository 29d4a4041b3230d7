/**
 * Training checkpoints: one file holding named Float32Arrays and a JSON header, written to a
 * temporary name, fsynced, then renamed (and the directory fsynced), so a kill mid-write leaves the
 * previous checkpoint intact. Layout: "THAWCKP1" | u32 header length | header JSON | padding to 4
 * bytes | float32 data. Arrays are copied byte for byte, so any bits can ride in them (`f64Array`,
 * `bytesArray`: doubles and strings, bit-exact).
 *
 * Two ways to keep them: one `checkpoint.bin` per directory (`writeCheckpoint`, the offline
 * trainers), or versioned files `<name>.ckpt`, of which the newest `keep` are kept
 * (`writeVersionedCheckpoint`, the online trainer: names sort in training order).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { ThawError } from '../lib/errors.js';
import type { EmbeddingTable } from '../models/embedding-table.js';
import type { DenseAdam, ParamSet } from '../models/params.js';

const MAGIC = 'THAWCKP1';

export interface CheckpointData {
  meta: Record<string, unknown>;
  arrays: Map<string, Float32Array>;
}

export function checkpointPath(dir: string): string {
  return path.join(dir, 'checkpoint.bin');
}

export function writeCheckpoint(dir: string, data: CheckpointData): void {
  writeCheckpointFile(checkpointPath(dir), data);
}

/** Writes `data` to `file` atomically: a temporary file, fsync, rename, fsync of the directory. */
export function writeCheckpointFile(file: string, data: CheckpointData): void {
  const dir = path.dirname(file);
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
  const tmp = `${file}.tmp-${process.pid}`;
  // fsync before the rename: after a crash the name points at either the old or the complete new file.
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, buf);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  // The rename itself is durable once the directory entry is.
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

export function readCheckpoint(dir: string): CheckpointData | undefined {
  const file = checkpointPath(dir);
  if (!existsSync(file)) return undefined;
  return readCheckpointFile(file);
}

/** Reads one checkpoint file; STATE_CORRUPT when it is not one or is truncated. */
export function readCheckpointFile(file: string): CheckpointData {
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

const VERSIONED = /^[A-Za-z0-9._-]+\.ckpt$/;

/**
 * Writes the checkpoint `name` (a name that sorts after every earlier one) in `dir` atomically,
 * then deletes all but the newest `keep` checkpoints and any temporary file a kill left behind.
 */
export function writeVersionedCheckpoint(dir: string, name: string, data: CheckpointData, keep: number): string {
  if (!VERSIONED.test(`${name}.ckpt`)) throw new ThawError('USAGE', `checkpoint name ${name} has characters other than A-Z a-z 0-9 . _ -`);
  if (!Number.isInteger(keep) || keep < 1) throw new ThawError('USAGE', `checkpoints kept must be an integer >= 1, got ${String(keep)}`);
  const file = path.join(dir, `${name}.ckpt`);
  writeCheckpointFile(file, data);
  const all = listCheckpoints(dir);
  for (const old of all.slice(0, Math.max(0, all.length - keep))) unlinkSync(old);
  for (const f of readdirSync(dir)) if (f.includes('.tmp-') && !f.endsWith(`.tmp-${process.pid}`)) unlinkSync(path.join(dir, f));
  return file;
}

/** Paths of the versioned checkpoints in `dir`, oldest first (none if the directory is absent). */
export function listCheckpoints(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => VERSIONED.test(f))
    .sort()
    .map((f) => path.join(dir, f));
}

/** A double as the two floats of its bits (bit-exact through a checkpoint). */
export function f64Array(values: readonly number[]): Float32Array {
  return new Float32Array(Float64Array.from(values).buffer);
}

/** The doubles of an array made by `f64Array`. */
export function f64Values(a: Float32Array): Float64Array {
  if (a.byteLength % 8 !== 0) throw new ThawError('STATE_CORRUPT', `expected doubles, got ${a.byteLength} bytes`);
  return new Float64Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

/** UTF-8 bytes (length first, as a u32, then padded) as floats; `bytesValue` reads them back. */
export function bytesArray(bytes: Uint8Array): Float32Array {
  const out = new Uint8Array(4 + Math.ceil(bytes.length / 4) * 4);
  new DataView(out.buffer).setUint32(0, bytes.length, true);
  out.set(bytes, 4);
  return new Float32Array(out.buffer);
}

export function bytesValue(a: Float32Array): Buffer {
  const raw = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  if (raw.length < 4) throw new ThawError('STATE_CORRUPT', 'byte array without its length');
  const n = raw.readUInt32LE(0);
  if (4 + n > raw.length) throw new ThawError('STATE_CORRUPT', `byte array of ${n} bytes truncated`);
  return raw.subarray(4, 4 + n);
}

// Helpers to put trainer state into a checkpoint's arrays and back, under a name prefix. Restoring
// checks every length, so a checkpoint of another architecture fails loudly (STATE_CORRUPT).

function take(a: Map<string, Float32Array>, name: string, dst: Float32Array): void {
  const src = a.get(name);
  if (src === undefined || src.length !== dst.length) throw new ThawError('STATE_CORRUPT', `checkpoint lacks ${name} of length ${dst.length}`);
  dst.set(src);
}

export function paramSetArrays(prefix: string, p: ParamSet, out: Map<string, Float32Array>): void {
  for (const name of p.names()) out.set(`${prefix}.${name}`, p.get(name).data);
}

export function restoreParamSet(prefix: string, p: ParamSet, a: Map<string, Float32Array>): void {
  for (const name of p.names()) take(a, `${prefix}.${name}`, p.get(name).data);
}

/** A sparse table's rows, optimiser slots and step. */
export function tableArrays(prefix: string, t: EmbeddingTable, out: Map<string, Float32Array>): void {
  out.set(`${prefix}.data`, t.data);
  out.set(`${prefix}.slot1`, t.slot1);
  out.set(`${prefix}.slot2`, t.slot2);
  out.set(`${prefix}.step`, Float32Array.of(t.step));
}

export function restoreTable(prefix: string, t: EmbeddingTable, a: Map<string, Float32Array>): void {
  take(a, `${prefix}.data`, t.data);
  take(a, `${prefix}.slot1`, t.slot1);
  take(a, `${prefix}.slot2`, t.slot2);
  t.step = a.get(`${prefix}.step`)?.[0] ?? 0;
}

/** Adam's step and moments (only those of params it has updated so far). */
export function adamArrays(prefix: string, o: DenseAdam, out: Map<string, Float32Array>): void {
  out.set(`${prefix}.step`, Float32Array.of(o.step));
  for (const [n, m] of o.m) out.set(`${prefix}.m.${n}`, m);
  for (const [n, v] of o.v) out.set(`${prefix}.v.${n}`, v);
}

export function restoreAdam(prefix: string, o: DenseAdam, a: Map<string, Float32Array>): void {
  o.step = a.get(`${prefix}.step`)?.[0] ?? 0;
  o.m.clear();
  o.v.clear();
  for (const [k, src] of a) {
    if (k.startsWith(`${prefix}.m.`)) o.m.set(k.slice(prefix.length + 3), src.slice());
    else if (k.startsWith(`${prefix}.v.`)) o.v.set(k.slice(prefix.length + 3), src.slice());
  }
}
