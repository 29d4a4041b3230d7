/**
 * Follows the retrieval snapshot directory of `thaw serve --retrieval DIR`: when a new snapshot
 * lands there (`thaw retrieval build --out DIR` again: new towers, so a new item tower), it is
 * loaded and the index rebuilt for it off the request path, then swapped in
 * (serving/retrieve-rebuild.ts); until then the old towers and index keep serving.
 *
 * A new snapshot is recognised by its encoder's `meta.json` (inode, size, modification time): the
 * snapshot writer renames the encoder directory into place after the index is written
 * (retrieval/index/encoder-snapshot.ts), so a changed encoder means a whole new snapshot. One
 * rebuild at a time; a snapshot that fails to load or rebuild is logged, counted and not retried
 * until the directory changes again.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { loadRetrievalSnapshot } from '../retrieval/index/encoder-snapshot.js';
import type { AnnIndexOptions } from '../retrieval/index/options.js';
import { rebuildAndSwap, type RebuildOptions, type RebuildResult } from './retrieve-rebuild.js';
import type { RetrievalService } from './retrieve.js';

export interface RetrievalReloaderOptions {
  /** The snapshot directory the service was loaded from. */
  dir: string;
  service: RetrievalService;
  /** How often the directory is checked (ms); 0: never (only `check()` calls). @default 10_000 */
  pollMs?: number;
  /** Index options applied to every loaded snapshot (efSearch, sealing), as at start. @default none */
  indexOverrides?: Partial<AnnIndexOptions>;
  /** Chunking of the rebuild. @default RebuildOptions' defaults */
  rebuild?: Omit<RebuildOptions, 'aborted'>;
  logger?: Logger;
}

/** What the reloader did since start. */
export interface ReloadCounts {
  rebuilds: number;
  failed: number;
}

export class RetrievalReloader {
  readonly counts: ReloadCounts = { rebuilds: 0, failed: 0 };
  private seen: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RebuildResult | undefined> | undefined;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly opts: RetrievalReloaderOptions) {
    this.log = (opts.logger ?? silentLogger).child({ component: 'retrieval-reload' });
  }

  /** Remembers the snapshot in use and starts polling (when `pollMs` > 0). */
  async start(): Promise<void> {
    this.seen = await this.identity();
    const pollMs = this.opts.pollMs ?? 10_000;
    if (pollMs > 0) {
      this.timer = setInterval(() => void this.check(), pollMs);
      this.timer.unref();
    }
  }

  /** Stops polling and a rebuild in progress (the index in use keeps serving). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  /**
   * Rebuilds and swaps when the directory holds a snapshot other than the one in use; resolves with
   * what the rebuild did, or undefined when nothing changed, a rebuild already runs, or it failed.
   */
  check(): Promise<RebuildResult | undefined> {
    this.running ??= this.reload().finally(() => (this.running = undefined));
    return this.running;
  }

  private async reload(): Promise<RebuildResult | undefined> {
    const identity = await this.identity();
    if (this.stopped || identity === undefined || identity === this.seen) return undefined;
    this.seen = identity;
    const t0 = performance.now();
    try {
      const next = await loadRetrievalSnapshot(this.opts.dir, this.opts.indexOverrides ?? {});
      const result = await rebuildAndSwap(this.opts.service, next, { ...this.opts.rebuild, aborted: () => this.stopped });
      this.counts.rebuilds++;
      this.log.info('retrieval: new item tower, index rebuilt and swapped', { dir: this.opts.dir, seconds: Math.round(performance.now() - t0) / 1000, ...result });
      return result;
    } catch (err) {
      this.counts.failed++;
      this.log.error('retrieval: the new snapshot was not swapped in; the one in use keeps serving', { dir: this.opts.dir, error: errorMessage(err) });
      return undefined;
    }
  }

  /** The encoder's identity in the directory, undefined when unreadable (a snapshot being replaced). */
  private async identity(): Promise<string | undefined> {
    try {
      const s = await stat(join(this.opts.dir, 'encoder', 'meta.json'));
      return `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return undefined;
    }
  }
}
