import type { Side } from '../schemas/types.js';

/** One prequential prediction: the score an entity's state gave an event before learning from it. */
export interface PredictionRow {
  eventId: string;
  /** Event time, unix ms. */
  eventTimeMs: number;
  side: Side;
  entityId: string;
  /** Interactions the entity had before this event (the warm-up curve's x axis). */
  priorCount: number;
  score: number;
  label: 0 | 1;
  adapter: string;
  release: string;
  namespace: string;
}

export interface PredictionSink {
  /**
   * Accepts rows; resolves once they are durable (in ClickHouse, or in the local disk spool during
   * an outage). Applies backpressure by resolving late, never by growing memory without bound.
   */
  write(rows: readonly PredictionRow[]): Promise<void>;
  /** Pushes everything spooled or buffered into ClickHouse. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Warm-up curve buckets of the prior interaction count. */
export const BUCKETS = ['0', '1-2', '3-5', '6-10', '11-20', '21-50', '51+'] as const;
export type Bucket = (typeof BUCKETS)[number];

export function bucketOf(priorCount: number): Bucket {
  if (priorCount <= 0) return '0';
  if (priorCount <= 2) return '1-2';
  if (priorCount <= 5) return '3-5';
  if (priorCount <= 10) return '6-10';
  if (priorCount <= 20) return '11-20';
  if (priorCount <= 50) return '21-50';
  return '51+';
}

/** The early rows pooled: entities with 1 to 5 prior interactions (buckets 1-2 and 3-5). */
export const EARLY_BUCKET = '1-5' as const;
/** A bucket of a curve row: one of BUCKETS, or the pooled early rows. */
export type CurveBucket = Bucket | typeof EARLY_BUCKET;
/** Every curve bucket in display order: BUCKETS, then the pooled early rows. */
export const CURVE_BUCKETS: readonly CurveBucket[] = [...BUCKETS, EARLY_BUCKET];

/** One point of a warm-up curve. */
export interface CurveRow {
  adapter: string;
  side: Side;
  /** The release of the rows ('' when rows of several releases are pooled: CurveFilter.byRelease false). */
  release: string;
  namespace: string;
  bucket: CurveBucket;
  n: number;
  ctr: number;
  /** NaN when a bucket has only one class. */
  auc: number;
  logLoss: number;
}

/** Anything the curve queries can read from: a ClickHouse server, a cluster, chDB. */
export interface CurveSource {
  query(sql: string): Promise<Record<string, unknown>[]>;
  readonly database?: string;
  readonly table?: string;
  /** Set when `table` is Thaw's Distributed table over this cluster (analytics/cluster.ts). */
  readonly cluster?: string | undefined;
}

/** A sink (or any client) that can run statements as well as queries. */
export interface SqlTarget extends CurveSource {
  command(sql: string): Promise<void>;
  /**
   * With a `cluster`: every shard's (and replica's) local table, where the statements a Distributed
   * table refuses (ALTER ... DELETE) run.
   */
  readonly shards?: readonly SqlTarget[] | undefined;
}
