/**
 * Options of the ANN index (retrieval/index/ann-index.ts), compiled once into a validated,
 * fully resolved form; a bad value stops start-up with a ConfigError naming the key.
 */
import { ConfigError } from '../../lib/errors.js';

export interface AnnIndexOptions {
  /** Vector width (floats). Required. */
  dim: number;
  /** HNSW graph degree (links per node; layer 0 holds 2·m). @default 16 */
  m?: number;
  /** HNSW candidate list while inserting (higher: better graph, slower inserts). @default 100 */
  efConstruction?: number;
  /** HNSW candidate list while searching (raised to k when lower). @default 400 */
  efSearch?: number;
  /** Graph capacity allocated up front (items); doubled when full. @default 1024 */
  initialCapacity?: number;
  /** Most items sealed from the growing segment into the graph per event-loop turn. @default 8 */
  sealChunk?: number;
  /** Time budget of one sealing turn (ms): the chunk stops early when it is spent. @default 1 */
  sealBudgetMs?: number;
  /** The background sealer starts a round when the growing segment holds at least this many items. @default 1 */
  sealMinItems?: number;
  /** HNSW random seed (levels of new nodes): same seed and inserts, same graph. @default 100 */
  seed?: number;
}

export type ResolvedAnnIndexOptions = Required<AnnIndexOptions>;

export const ANN_INDEX_DEFAULTS: Omit<ResolvedAnnIndexOptions, 'dim'> = {
  m: 16,
  efConstruction: 100,
  efSearch: 400,
  initialCapacity: 1024,
  sealChunk: 8,
  sealBudgetMs: 1,
  sealMinItems: 1,
  seed: 100,
};

function int(key: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new ConfigError(key, `must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

/** Validates and fills defaults; throws ConfigError naming the key. */
export function resolveAnnIndexOptions(opts: AnnIndexOptions): ResolvedAnnIndexOptions {
  const r = { ...ANN_INDEX_DEFAULTS, ...opts };
  int('dim', r.dim, 1, 4096);
  int('m', r.m, 2, 128);
  int('efConstruction', r.efConstruction, 1, 10_000);
  int('efSearch', r.efSearch, 1, 10_000);
  int('initialCapacity', r.initialCapacity, 1, 1 << 30);
  int('sealChunk', r.sealChunk, 1, 1_000_000);
  int('sealMinItems', r.sealMinItems, 1, 1 << 30);
  int('seed', r.seed, 0, 2 ** 31 - 1);
  if (!(Number.isFinite(r.sealBudgetMs) && r.sealBudgetMs > 0)) throw new ConfigError('sealBudgetMs', `must be a positive number of milliseconds, got ${r.sealBudgetMs}`);
  return r;
}
