/**
 * Prediction sinks of a stream evaluation: one that batches the evaluation's many small writes into
 * large inserts (an offline run needs no per-batch durability, a worker does), and one that drops
 * the rows of the history (the release was trained on them: they are replayed, not scored).
 */
import type { PredictionRow, PredictionSink } from '../../analytics/types.js';

/** Buffers rows and writes them to `inner` `flushRows` at a time (bounded memory). */
export class BatchingSink implements PredictionSink {
  private buffer: PredictionRow[] = [];
  /** Rows handed to the inner sink so far. */
  written = 0;

  constructor(
    private readonly inner: PredictionSink,
    private readonly flushRows = 100_000,
  ) {}

  async write(rows: readonly PredictionRow[]): Promise<void> {
    for (const r of rows) this.buffer.push(r);
    if (this.buffer.length >= this.flushRows) await this.drain();
  }

  async flush(): Promise<void> {
    await this.drain();
    await this.inner.flush();
  }

  async close(): Promise<void> {
    await this.flush();
    await this.inner.close();
  }

  private async drain(): Promise<void> {
    if (this.buffer.length === 0) return;
    const rows = this.buffer;
    this.buffer = [];
    await this.inner.write(rows);
    this.written += rows.length;
  }
}

/** Accepts and forgets every row. */
export const DISCARD_SINK: PredictionSink = {
  write: () => Promise.resolve(),
  flush: () => Promise.resolve(),
  close: () => Promise.resolve(),
};
