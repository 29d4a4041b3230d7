/**
 * Bounded, append-only disk spool: where prediction rows wait while ClickHouse is unreachable.
 *
 * - Data lives in segment files `seg-<seq>.jsonl` (one JSONEachRow line per row). `append` writes and
 *   fsyncs before it resolves, so a resolved append survives a crash. A failed append truncates the
 *   segment back, so a half-written batch never sits in front of later rows.
 * - Segments are replayed oldest first (`oldest`), and a segment is deleted (`remove`) only after the
 *   caller has inserted all its rows. A crash between insert and delete re-inserts the segment: the
 *   prediction log de-duplicates by event id, so that is harmless.
 * - A torn last line (crash during a write that therefore never resolved) is ignored on replay.
 * - Bounded: when `maxBytes` would be exceeded, `append` waits for the drainer to free space, up to
 *   `fullWaitMs`, then rejects with SPOOL_ERROR. Rows are never dropped: the caller sees the rejection
 *   (or a late resolve), which is the backpressure the consumer needs to stop committing offsets.
 */
import { mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, ThawError } from '../lib/errors.js';

export interface DiskSpoolOptions {
  /** Directory of the segment files; created if missing. One spool per directory. */
  dir: string;
  /** Bytes the spool may hold on disk in total. @default 1_073_741_824 (1 GiB) */
  maxBytes?: number;
  /** A segment is sealed and a new one started past this size, in bytes. @default 16_777_216 (16 MiB) */
  segmentBytes?: number;
  /** How long `append` waits for space when the spool is full, in ms, before rejecting. @default 30_000 */
  fullWaitMs?: number;
}

export interface SpoolSegment {
  /** Sequence number; segments replay in ascending order. */
  readonly seq: number;
  readonly path: string;
  /** Complete lines of the segment (a torn tail is cut off), each ending in '\n'. */
  readonly text: string;
}

const SEGMENT = /^seg-(\d{12})\.jsonl$/;
const segName = (seq: number): string => `seg-${String(seq).padStart(12, '0')}.jsonl`;

function positive(value: number | undefined, fallback: number, key: string): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0) throw new ConfigError(key, `must be a positive number, got ${String(value)}`);
  return v;
}

export class DiskSpool {
  readonly dir: string;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  private readonly fullWaitMs: number;
  /** seq → bytes on disk, for every segment not yet removed. */
  private readonly sizes = new Map<number, number>();
  private total = 0;
  private nextSeq = 1;
  private current: { seq: number; fh: FileHandle } | null = null;
  /** Serialises file operations (appends, sealing, removal). */
  private lock: Promise<void> = Promise.resolve();
  private spaceWaiters: (() => void)[] = [];
  private closed = false;

  private constructor(opts: DiskSpoolOptions) {
    if (typeof opts.dir !== 'string' || opts.dir.length === 0) throw new ConfigError('spoolDir', 'must be a directory path');
    this.dir = opts.dir;
    this.maxBytes = positive(opts.maxBytes, 1024 ** 3, 'spoolMaxBytes');
    this.segmentBytes = positive(opts.segmentBytes, 16 * 1024 ** 2, 'spoolSegmentBytes');
    this.fullWaitMs = positive(opts.fullWaitMs, 30_000, 'spoolFullWaitMs');
  }

  /** Opens (or creates) the spool in `opts.dir`; existing segments are kept for replay. */
  static async open(opts: DiskSpoolOptions): Promise<DiskSpool> {
    const spool = new DiskSpool(opts);
    try {
      await mkdir(spool.dir, { recursive: true });
      for (const name of await readdir(spool.dir)) {
        const m = SEGMENT.exec(name);
        if (m?.[1] === undefined) continue;
        const seq = Number(m[1]);
        const size = (await stat(join(spool.dir, name))).size;
        spool.sizes.set(seq, size);
        spool.total += size;
        spool.nextSeq = Math.max(spool.nextSeq, seq + 1);
      }
    } catch (err) {
      throw new ThawError('SPOOL_ERROR', `cannot open spool directory ${spool.dir}`, { cause: err });
    }
    return spool;
  }

  /** Bytes currently held. */
  get sizeBytes(): number {
    return this.total;
  }

  get segmentCount(): number {
    return this.sizes.size;
  }

  get isEmpty(): boolean {
    return this.sizes.size === 0;
  }

  private withLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async waitForSpace(bytes: number): Promise<void> {
    const deadline = Date.now() + this.fullWaitMs;
    while (this.total + bytes > this.maxBytes) {
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) {
        throw new ThawError('SPOOL_ERROR', `spool full: ${this.total} of ${this.maxBytes} bytes used, ${bytes} more requested`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.spaceWaiters.push(done);
      });
    }
  }

  /**
   * Appends complete JSONEachRow lines (each ending in '\n') and fsyncs. Resolves once durable; waits
   * while the spool is full (see the module comment).
   */
  async append(lines: string): Promise<void> {
    if (this.closed) throw new ThawError('LIFECYCLE', 'spool is closed');
    if (lines.length === 0) return;
    if (!lines.endsWith('\n')) throw new ThawError('SPOOL_ERROR', 'spool append must be complete lines');
    const buf = Buffer.from(lines, 'utf8');
    if (buf.length > this.maxBytes) throw new ThawError('SPOOL_ERROR', `batch of ${buf.length} bytes exceeds spool maxBytes ${this.maxBytes}`);
    for (;;) {
      await this.waitForSpace(buf.length);
      const written = await this.withLock(async () => {
        if (this.total + buf.length > this.maxBytes) return false; // raced with another append
        await this.appendLocked(buf);
        return true;
      });
      if (written) return;
    }
  }

  private async appendLocked(buf: Buffer): Promise<void> {
    let cur = this.current;
    if (cur !== null && (this.sizes.get(cur.seq) ?? 0) >= this.segmentBytes) {
      await this.sealLocked();
      cur = null;
    }
    if (cur === null) {
      const seq = this.nextSeq++;
      try {
        cur = { seq, fh: await open(join(this.dir, segName(seq)), 'a') };
      } catch (err) {
        throw new ThawError('SPOOL_ERROR', `cannot create spool segment in ${this.dir}`, { cause: err });
      }
      this.current = cur;
      this.sizes.set(seq, 0);
      await this.syncDir();
    }
    const before = this.sizes.get(cur.seq) ?? 0;
    try {
      await cur.fh.write(buf, 0, buf.length);
      await cur.fh.datasync();
    } catch (err) {
      // Cut the partial batch off so later rows never follow a torn line.
      await cur.fh.truncate(before).catch(() => undefined);
      throw new ThawError('SPOOL_ERROR', `spool write failed in ${this.dir}`, { cause: err });
    }
    this.sizes.set(cur.seq, before + buf.length);
    this.total += buf.length;
  }

  private async sealLocked(): Promise<void> {
    const cur = this.current;
    this.current = null;
    if (cur !== null) await cur.fh.close().catch(() => undefined);
  }

  /** A new directory entry is durable only once the directory itself is synced. */
  private async syncDir(): Promise<void> {
    const dh = await open(this.dir, 'r').catch(() => null);
    if (dh === null) return;
    await dh.sync().catch(() => undefined);
    await dh.close().catch(() => undefined);
  }

  /** The oldest segment (sealing it first if it is being appended to), or null when empty. */
  oldest(): Promise<SpoolSegment | null> {
    return this.withLock(async () => {
      const seq = Math.min(...this.sizes.keys());
      if (!Number.isFinite(seq)) return null;
      if (this.current?.seq === seq) await this.sealLocked();
      const path = join(this.dir, segName(seq));
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        throw new ThawError('SPOOL_ERROR', `cannot read spool segment ${path}`, { cause: err });
      }
      return { seq, path, text: text.slice(0, text.lastIndexOf('\n') + 1) };
    });
  }

  /** Deletes a segment whose rows are safely stored elsewhere, freeing its space. */
  remove(seg: SpoolSegment): Promise<void> {
    return this.withLock(async () => {
      await unlink(seg.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw new ThawError('SPOOL_ERROR', `cannot delete spool segment ${seg.path}`, { cause: err });
      });
      this.forget(seg.seq);
    });
  }

  /** Moves an unreplayable segment aside (`.bad`), out of the replay order, and returns its new path. */
  quarantine(seg: SpoolSegment): Promise<string> {
    return this.withLock(async () => {
      const to = `${seg.path}.bad`;
      await rename(seg.path, to).catch((err: unknown) => {
        throw new ThawError('SPOOL_ERROR', `cannot quarantine spool segment ${seg.path}`, { cause: err });
      });
      this.forget(seg.seq);
      return to;
    });
  }

  private forget(seq: number): void {
    this.total -= this.sizes.get(seq) ?? 0;
    this.sizes.delete(seq);
    const waiters = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const w of waiters) w();
  }

  /** Closes the open segment; remaining segments stay on disk for the next `open`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.withLock(() => this.sealLocked());
    const waiters = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const w of waiters) w();
  }
}
