/**
 * A prequential arm without Kafka: consumers/processor.ts BatchProcessor over an in-memory entity
 * store and a sink that keeps (score, label, prior count) of every row, with the adapter swappable
 * between batches the way a worker swaps releases (entity states kept: same store and scope).
 */
import type { Adapter } from '../../adapters/types.js';
import { BUCKETS, bucketOf, type Bucket, type PredictionRow, type PredictionSink } from '../../analytics/types.js';
import { BatchProcessor, type BatchItem } from '../../consumers/processor.js';
import { auc } from '../../lib/metrics.js';
import { MemoryEntityStore } from '../../model-store/memory-store.js';
import { at, defined } from '../../lib/at.js';

/** Keeps every row's score, label and bucket in typed arrays (no strings kept). */
export class CollectingSink implements PredictionSink {
  scores = new Float32Array(1 << 16);
  labels = new Uint8Array(1 << 16);
  prior = new Int32Array(1 << 16);
  n = 0;
  write(rows: readonly PredictionRow[]): Promise<void> {
    if (this.n + rows.length > this.scores.length) {
      let cap = this.scores.length * 2;
      while (cap < this.n + rows.length) cap *= 2;
      const grow = <T extends Float32Array | Uint8Array | Int32Array>(a: T, make: (n: number) => T): T => {
        const b = make(cap);
        b.set(a.subarray(0, this.n));
        return b;
      };
      this.scores = grow(this.scores, (c) => new Float32Array(c));
      this.labels = grow(this.labels, (c) => new Uint8Array(c));
      this.prior = grow(this.prior, (c) => new Int32Array(c));
    }
    for (const r of rows) {
      this.scores[this.n] = r.score;
      this.labels[this.n] = r.label;
      this.prior[this.n] = r.priorCount;
      this.n++;
    }
    return Promise.resolve();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

export interface BucketAuc {
  bucket: Bucket | 'all';
  n: number;
  auc: number;
}

/** AUC overall and per warm-up bucket of the collected rows. */
export function bucketAucs(sink: CollectingSink): BucketAuc[] {
  const by = new Map<string, { s: number[]; y: number[] }>();
  for (const b of [...BUCKETS, 'all']) by.set(b, { s: [], y: [] });
  for (let i = 0; i < sink.n; i++) {
    for (const key of [bucketOf(at(sink.prior, i)), 'all']) {
      const g = defined(by.get(key), `bucket ${key}`);
      g.s.push(at(sink.scores, i));
      g.y.push(at(sink.labels, i));
    }
  }
  return [...by].map(([bucket, g]) => ({ bucket: bucket as Bucket | 'all', n: g.s.length, auc: g.s.length > 0 ? auc(g.s, g.y) : NaN }));
}

export class PrequentialArm {
  readonly sink = new CollectingSink();
  readonly store = new MemoryEntityStore();
  private processor: BatchProcessor;
  private adapter: Adapter;
  /** Adapter swaps so far. */
  swaps = 0;

  constructor(
    readonly name: string,
    adapter: Adapter,
  ) {
    this.adapter = adapter;
    this.processor = this.build(adapter);
  }

  /** Swaps the adapter between batches (states kept: same store and scope). */
  swap(adapter: Adapter): void {
    // Retire the old adapter's kept tensors (adapters that hold some expose dispose()).
    (this.adapter as { dispose?: () => void }).dispose?.();
    this.adapter = adapter;
    this.processor = this.build(adapter);
    this.swaps++;
  }

  async process(items: readonly BatchItem[]): Promise<void> {
    await this.processor.process(items);
  }

  private build(adapter: Adapter): BatchProcessor {
    return new BatchProcessor({ adapter, store: this.store, sink: this.sink, scope: { namespace: 'bench', side: adapter.side, adapter: adapter.name } });
  }
}
