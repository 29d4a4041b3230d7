/**
 * The item training/evaluation data of a directory, whatever its kind: MovieLens-100K (the
 * CVAR/EmerG warm-up split, evaluation/warmup-split.ts) or Meta-Embedding's ML-1M splits
 * (evaluation/metaemb-ml1m.ts). The kind is told by the files present, as `thaw eval` does.
 */
import { buildMetaEmbSplit, isMetaEmbDir } from './metaemb-ml1m.js';
import type { ProtocolSplit } from './warmup-protocol.js';
import { buildWarmupSplit } from './warmup-split.js';

export type ItemDataFormat = 'ml-100k' | 'metaemb-ml1m';

export interface ItemData {
  format: ItemDataFormat;
  /** Hot (old) items train; new items' batches are the protocol's warm and test rows. */
  split: ProtocolSplit;
}

/** The kind of an item data directory: Meta-Embedding's TSV batches when all are present, else MovieLens-100K. */
export function itemDataFormat(dir: string): ItemDataFormat {
  return isMetaEmbDir(dir) ? 'metaemb-ml1m' : 'ml-100k';
}

/** Loads `dir` (asserting the published sizes of its kind unless `assertSizes` is false). */
export function loadItemData(dir: string, opts: { assertSizes?: boolean } = {}): ItemData {
  const format = itemDataFormat(dir);
  return { format, split: format === 'metaemb-ml1m' ? buildMetaEmbSplit(dir, opts) : buildWarmupSplit(dir, opts) };
}
