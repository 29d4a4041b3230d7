/**
 * Index snapshots: the HNSW graph (hnswlib's writeIndex), the growing segment (rows and labels, raw
 * little-endian), the id map and the places of every label (tombstones: labels with a graph node
 * that are not live), and the index options, in one directory per snapshot.
 *
 * Atomic: a snapshot is written to a fresh `snap-<time>-<random>/` beside the others, then the
 * `current` symlink is replaced by rename (atomic on POSIX), then older snapshots are removed. A
 * reader follows `current`, so it sees a whole old or a whole new snapshot, never a mix.
 * Restoring gives the same graph, segment slots and labels, so searches return bit-identical
 * results (test/unit/retrieval/index/snapshot.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync, existsSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { ThawError } from '../../lib/errors.js';
import { AnnIndex, type AnnIndexParts } from './ann-index.js';
import type { AnnIndexOptions, ResolvedAnnIndexOptions } from './options.js';

const FORMAT = 1;
const CURRENT = 'current';

interface Meta {
  format: number;
  options: ResolvedAnnIndexOptions;
  ids: string[];
  /** base64 of the place of every label. */
  place: string;
  /** base64 of the graph flag of every label. */
  inGraph: string;
  growing: number;
}

function writeSynced(path: string, data: string | Uint8Array): void {
  writeFileSync(path, data);
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function bytes(a: Float32Array | Int32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Saves `index` under `dir` (created when missing); returns the snapshot's own directory. */
export function saveIndex(index: AnnIndex, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const name = `snap-${Date.now()}-${randomBytes(4).toString('hex')}`;
  const target = join(dir, name);
  mkdirSync(target);
  const parts = index.parts((graph) => graph.writeIndexSync(join(target, 'graph.hnsw')));
  writeSynced(join(target, 'growing.f32'), bytes(parts.growingRows));
  writeSynced(join(target, 'growing-labels.i32'), bytes(parts.growingLabels));
  const meta: Meta = {
    format: FORMAT,
    options: index.opts,
    ids: [...parts.ids],
    place: Buffer.from(parts.place).toString('base64'),
    inGraph: Buffer.from(parts.inGraph).toString('base64'),
    growing: parts.growingLabels.length,
  };
  writeSynced(join(target, 'meta.json'), JSON.stringify(meta));
  const link = join(dir, `${CURRENT}.${randomBytes(4).toString('hex')}.tmp`);
  symlinkSync(name, link);
  renameSync(link, join(dir, CURRENT));
  for (const entry of readdirSync(dir)) {
    if (entry !== name && (entry.startsWith('snap-') || entry.endsWith('.tmp'))) rmSync(join(dir, entry), { recursive: true, force: true });
  }
  return target;
}

/** Whether `dir` holds a snapshot. */
export function hasIndexSnapshot(dir: string): boolean {
  return existsSync(join(dir, CURRENT));
}

/** Restores the snapshot `dir/current`; `overrides` may change search-time options (efSearch, sealing). */
export async function loadIndex(dir: string, overrides: Partial<AnnIndexOptions> = {}): Promise<AnnIndex> {
  let target: string;
  let meta: Meta;
  try {
    target = join(dir, readlinkSync(join(dir, CURRENT)));
    meta = JSON.parse(readFileSync(join(target, 'meta.json'), 'utf8')) as Meta;
  } catch (err) {
    throw new ThawError('INDEX_CORRUPT', `no readable index snapshot in ${dir} (expected ${CURRENT} → snap-*/meta.json)`, { cause: err });
  }
  if (meta.format !== FORMAT) throw new ThawError('INDEX_CORRUPT', `index snapshot format ${meta.format}, this build reads ${FORMAT}`);
  const dim = meta.options.dim;
  const rowsBuf = readFileSync(join(target, 'growing.f32'));
  const labelsBuf = readFileSync(join(target, 'growing-labels.i32'));
  if (labelsBuf.byteLength !== meta.growing * 4 || rowsBuf.byteLength !== meta.growing * dim * 4) {
    throw new ThawError('INDEX_CORRUPT', `the growing segment files of ${target} do not hold ${meta.growing} items of ${dim} floats`);
  }
  // Copies: a Buffer may sit at an offset that is not a multiple of 4 inside Node's pool.
  const growingRows = new Float32Array(new Uint8Array(rowsBuf).buffer);
  const growingLabels = new Int32Array(new Uint8Array(labelsBuf).buffer);
  const parts: AnnIndexParts = { ids: meta.ids, place: new Uint8Array(Buffer.from(meta.place, 'base64')), inGraph: new Uint8Array(Buffer.from(meta.inGraph, 'base64')), growingRows, growingLabels };
  const graphFile = join(target, 'graph.hnsw');
  return AnnIndex.restore({ ...meta.options, ...overrides, dim }, (graph) => graph.readIndexSync(graphFile), parts);
}
