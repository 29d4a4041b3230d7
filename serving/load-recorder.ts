/**
 * Records a live server's load as the resource manager replays it (`thaw serve --record-load FILE`,
 * then `thaw serve tune --load FILE`): the arrivals of the valid scoring requests of one model, in
 * the format of serving/load-recording.ts, so the stage settings are searched on the traffic they
 * will serve rather than on a synthetic one.
 *
 * - `t` is when the request's headers arrived (ms from the first recorded arrival). A request is
 *   recorded once its body is parsed and valid, so one whose body took longer to arrive than a later
 *   one's is written with the later one's `t` (clamped: a recording's `t` never goes back).
 * - A request refused before its body was read (admission under overload) has no body to record: it
 *   is counted (`refusedUnread`), so a recording made under overload says how much load it misses.
 * - Bounded: at most `maxArrivals` arrivals; past that, and while the file's writer is more than
 *   `MAX_BUFFERED_BYTES` behind, arrivals are counted (`overMax`, `writerBehind`), not written. The
 *   counts are logged when the recording stops and are in `stats()`.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { ConfigError, errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { LOAD_FORMAT } from './load-recording.js';

/** Bytes the file's writer may hold unwritten before arrivals are counted instead of recorded. */
export const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

export interface LoadRecorderOptions {
  /** The file written (created or truncated). */
  file: string;
  /** The deadline of a request without an `x-deadline-ms` header (ms): the recording's header. */
  deadlineMs: number;
  /** Most arrivals recorded (count). */
  maxArrivals: number;
  /** The model whose requests are recorded (a note in the header). */
  model: string;
  logger?: Logger;
}

export interface LoadRecorderStats {
  recorded: number;
  /** Valid requests past `maxArrivals`. */
  overMax: number;
  /** Valid requests not written because the file's writer was behind. */
  writerBehind: number;
  /** Requests refused before their body was read (no body to record). */
  refusedUnread: number;
}

export class LoadRecorder {
  private t0: number | undefined;
  private lastT = 0;
  private readonly counts: LoadRecorderStats = { recorded: 0, overMax: 0, writerBehind: 0, refusedUnread: 0 };
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly out: WriteStream,
    private readonly opts: LoadRecorderOptions,
    private readonly log: Logger,
  ) {}

  /** Creates the file and writes its header; a ConfigError (key `recordLoad`) when it cannot be written. */
  static async open(opts: LoadRecorderOptions): Promise<LoadRecorder> {
    const out = createWriteStream(opts.file, { flags: 'w' });
    try {
      await once(out, 'open');
    } catch (err) {
      throw new ConfigError('recordLoad', `cannot write the load recording ${opts.file}: ${errorMessage(err)}`, { cause: err });
    }
    const log = (opts.logger ?? silentLogger).child({ recording: opts.file });
    const recorder = new LoadRecorder(out, opts, log);
    out.on('error', (err) => log.error('load recording failed; no more arrivals are written', { error: errorMessage(err) }));
    out.write(JSON.stringify({ format: LOAD_FORMAT, deadlineMs: opts.deadlineMs, note: `recorded by thaw serve (model ${opts.model}) at ${new Date().toISOString()}` }) + '\n');
    log.info('recording the load', { model: opts.model, maxArrivals: opts.maxArrivals });
    return recorder;
  }

  /**
   * Records one valid request: `arrivedAt` is performance.now() when its headers arrived, `body`
   * the parsed body, `deadlineMs` its `x-deadline-ms` (undefined: the recording's default).
   */
  record(arrivedAt: number, body: unknown, deadlineMs: number | undefined): void {
    if (this.closed !== undefined || this.out.errored !== null) return;
    if (this.counts.recorded >= this.opts.maxArrivals) {
      if (this.counts.overMax++ === 0) this.log.info('the recording is full; later requests are counted, not recorded', { maxArrivals: this.opts.maxArrivals });
      return;
    }
    if (this.out.writableLength > MAX_BUFFERED_BYTES) {
      this.counts.writerBehind++;
      return;
    }
    this.t0 ??= arrivedAt;
    const t = Math.max(this.lastT, Math.round((arrivedAt - this.t0) * 1000) / 1000);
    this.lastT = t;
    this.out.write(JSON.stringify({ t, ...(deadlineMs === undefined ? {} : { deadlineMs }), body }) + '\n');
    this.counts.recorded++;
  }

  /** Counts a request refused before its body was read. */
  refusedUnread(): void {
    if (this.closed === undefined) this.counts.refusedUnread++;
  }

  stats(): LoadRecorderStats {
    return { ...this.counts };
  }

  /** Flushes and closes the file, and logs what was recorded and what was not. Idempotent. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      const done = once(this.out, 'close').then(
        () => undefined,
        () => undefined,
      );
      this.out.end();
      await done;
      const s = this.counts;
      const since = this.t0 === undefined ? 0 : performance.now() - this.t0;
      this.log.info('load recording closed', { ...s, spanMs: Math.round(since), file: this.opts.file });
    })());
  }
}
