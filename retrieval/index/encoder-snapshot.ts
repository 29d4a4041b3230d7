/**
 * A retrieval snapshot directory, what `thaw serve --retrieval DIR` loads:
 *   DIR/encoder/  the dual encoder's towers (options, item and user tables, the history map H, raw
 *                 little-endian float32) and the ids of the items it was trained on (their id rows
 *                 are used; any other item's vector comes from its features alone);
 *   DIR/index/    the ANN index of the catalogue's item vectors (retrieval/index/snapshot.ts).
 * The index is written first, then the encoder directory beside its final name and renamed into
 * place: a reader that sees a new encoder sees the index written with it (serving/retrieve-reload.ts
 * watches the encoder).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ThawError } from '../../lib/errors.js';
import { DualEncoder, type DualEncoderOptions } from '../towers.js';
import type { AnnIndex } from './ann-index.js';
import { loadIndex, saveIndex } from './snapshot.js';
import type { AnnIndexOptions } from './options.js';

const FORMAT = 1;

interface EncoderMeta {
  format: number;
  options: Required<DualEncoderOptions>;
  knownItems: string[];
}

/** A loaded retrieval snapshot. */
export interface RetrievalSnapshot {
  encoder: DualEncoder;
  /** Items whose id row the encoder learned. */
  knownItems: ReadonlySet<string>;
  index: AnnIndex;
}

function f32(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function readF32(path: string, length: number, what: string): Float32Array {
  const buf = readFileSync(path);
  if (buf.byteLength !== length * 4) throw new ThawError('INDEX_CORRUPT', `${what} (${path}) holds ${buf.byteLength} bytes, expected ${length * 4}`);
  return new Float32Array(new Uint8Array(buf).buffer);
}

/** Writes the index to `dir/index`, then the encoder to `dir/encoder`. */
export function saveRetrievalSnapshot(dir: string, encoder: DualEncoder, knownItems: Iterable<string>, index: AnnIndex): void {
  mkdirSync(dir, { recursive: true });
  saveIndex(index, join(dir, 'index'));
  const tmp = join(dir, `encoder.${randomBytes(4).toString('hex')}.tmp`);
  mkdirSync(tmp);
  const meta: EncoderMeta = { format: FORMAT, options: encoder.opts, knownItems: [...knownItems] };
  writeFileSync(join(tmp, 'item.f32'), f32(encoder.itemTable));
  writeFileSync(join(tmp, 'user.f32'), f32(encoder.userTable));
  writeFileSync(join(tmp, 'h.f32'), f32(encoder.h));
  writeFileSync(join(tmp, 'meta.json'), JSON.stringify(meta));
  const target = join(dir, 'encoder');
  if (existsSync(target)) rmSync(target, { recursive: true, force: true });
  renameSync(tmp, target);
}

/** Loads `dir` (saveRetrievalSnapshot's layout); INDEX_CORRUPT when a part is missing or the parts disagree. */
export async function loadRetrievalSnapshot(dir: string, indexOverrides: Partial<AnnIndexOptions> = {}): Promise<RetrievalSnapshot> {
  const encDir = join(dir, 'encoder');
  let meta: EncoderMeta;
  try {
    meta = JSON.parse(readFileSync(join(encDir, 'meta.json'), 'utf8')) as EncoderMeta;
  } catch (err) {
    throw new ThawError('INDEX_CORRUPT', `no readable retrieval snapshot in ${dir} (expected encoder/meta.json; build one with \`thaw retrieval build\`)`, { cause: err });
  }
  if (meta.format !== FORMAT) throw new ThawError('INDEX_CORRUPT', `retrieval snapshot format ${meta.format}, this build reads ${FORMAT}`);
  const encoder = new DualEncoder(meta.options);
  const { dim, itemBuckets, userBuckets } = meta.options;
  encoder.itemTable.set(readF32(join(encDir, 'item.f32'), itemBuckets * dim, 'the item table'));
  encoder.userTable.set(readF32(join(encDir, 'user.f32'), userBuckets * dim, 'the user table'));
  encoder.h.set(readF32(join(encDir, 'h.f32'), dim * dim, 'the history map'));
  const index = await loadIndex(join(dir, 'index'), indexOverrides);
  if (index.dim !== dim) throw new ThawError('INDEX_CORRUPT', `the index of ${dir} holds vectors of ${index.dim} floats, its encoder makes ${dim}`);
  return { encoder, knownItems: new Set(meta.knownItems), index };
}
