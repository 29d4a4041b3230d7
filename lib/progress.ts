/**
 * Progress of long work (produce, replay, train): done/total, rate and ETA. On a TTY stderr it
 * redraws one line in place; otherwise (CI, files, pipes) it emits a JSON log line every
 * `logIntervalMs`. Never writes to stdout, which belongs to command output (tables, --json).
 * Redraws are throttled inside `tick`, so there is no timer to leak and no cost per event.
 */
import type { Logger } from './log.js';

export interface ProgressOptions {
  /** What is being counted, shown first: e.g. `produce`, `replay`. */
  label: string;
  /** Units expected in total; undefined when unknown (no percentage, no ETA). @default unknown */
  total?: number;
  /** Unit name shown after the rate, e.g. `events`. @default 'events' */
  unit?: string;
  /** Where a TTY line is drawn. @default process.stderr */
  stream?: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** Draw a TTY line (true) or log JSON lines (false). @default stream.isTTY */
  tty?: boolean;
  /** Receives the JSON lines when not on a TTY; nothing is logged without it. */
  logger?: Logger;
  /** Minimum time between TTY redraws, in ms. @default 100 */
  drawIntervalMs?: number;
  /** Minimum time between JSON log lines, in ms. @default 5_000 */
  logIntervalMs?: number;
  /** Clock in ms, for tests. @default performance.now */
  now?: () => number;
}

/** A point-in-time view of the progress. */
export interface ProgressSnapshot {
  label: string;
  done: number;
  total: number | undefined;
  /** Mean rate since start, units per second. */
  rate: number;
  /** Estimated seconds left; undefined without a total or a rate. */
  etaSec: number | undefined;
  elapsedSec: number;
}

export class Progress {
  private readonly o: Required<Omit<ProgressOptions, 'total' | 'logger'>> & Pick<ProgressOptions, 'logger'>;
  private total: number | undefined;
  private done = 0;
  private readonly startMs: number;
  private lastDrawMs = -Infinity;
  private lastLogMs: number;
  private drawn = false;
  private finished = false;

  constructor(opts: ProgressOptions) {
    const stream = opts.stream ?? process.stderr;
    this.o = {
      label: opts.label,
      unit: opts.unit ?? 'events',
      stream,
      tty: opts.tty ?? stream.isTTY === true,
      logger: opts.logger,
      drawIntervalMs: opts.drawIntervalMs ?? 100,
      logIntervalMs: opts.logIntervalMs ?? 5_000,
      now: opts.now ?? (() => performance.now()),
    };
    this.total = opts.total;
    this.startMs = this.o.now();
    this.lastLogMs = this.startMs;
  }

  /** Sets the total once it is known (e.g. after resolving a replay range). */
  setTotal(total: number | undefined): void {
    this.total = total;
  }

  /** Records `n` more units done and redraws or logs if its interval has passed. */
  tick(n = 1): void {
    this.done += n;
    const t = this.o.now();
    if (this.o.tty) {
      if (t - this.lastDrawMs >= this.o.drawIntervalMs) this.draw(t);
    } else if (t - this.lastLogMs >= this.o.logIntervalMs) {
      this.lastLogMs = t;
      this.o.logger?.info(`${this.o.label} progress`, this.fields(t));
    }
  }

  snapshot(t = this.o.now()): ProgressSnapshot {
    const elapsedSec = Math.max(0, (t - this.startMs) / 1000);
    const rate = elapsedSec > 0 ? this.done / elapsedSec : 0;
    const left = this.total === undefined ? undefined : Math.max(0, this.total - this.done);
    const etaSec = left === undefined || rate <= 0 ? undefined : left / rate;
    return { label: this.o.label, done: this.done, total: this.total, rate, etaSec, elapsedSec };
  }

  /** Draws or logs the final state once and ends the TTY line. Idempotent. */
  finish(): ProgressSnapshot {
    const t = this.o.now();
    const snap = this.snapshot(t);
    if (this.finished) return snap;
    this.finished = true;
    if (this.o.tty) {
      this.draw(t);
      if (this.drawn) this.o.stream.write('\n');
    } else {
      this.o.logger?.info(`${this.o.label} done`, this.fields(t));
    }
    return snap;
  }

  /** The one-line text form, e.g. `produce 120,000/200,000 (60.0%) 41.2k events/s ETA 2s`. */
  format(s: ProgressSnapshot = this.snapshot()): string {
    const parts = [s.label, s.total === undefined ? fmtInt(s.done) : `${fmtInt(s.done)}/${fmtInt(s.total)}`];
    if (s.total !== undefined && s.total > 0) parts.push(`(${((100 * s.done) / s.total).toFixed(1)}%)`);
    parts.push(`${fmtRate(s.rate)} ${this.o.unit}/s`);
    if (s.etaSec !== undefined) parts.push(`ETA ${fmtDuration(s.etaSec)}`);
    else parts.push(`elapsed ${fmtDuration(s.elapsedSec)}`);
    return parts.join(' ');
  }

  private draw(t: number): void {
    this.lastDrawMs = t;
    this.drawn = true;
    const cols = this.o.stream.columns ?? 120;
    // \r + clear line: the line is redrawn in place, never scrolls.
    this.o.stream.write(`\r\x1b[2K${this.format(this.snapshot(t)).slice(0, Math.max(20, cols - 1))}`);
  }

  private fields(t: number): Record<string, unknown> {
    const s = this.snapshot(t);
    return {
      done: s.done,
      ...(s.total === undefined ? {} : { total: s.total }),
      rate: Math.round(s.rate),
      ...(s.etaSec === undefined ? {} : { etaSec: Math.round(s.etaSec) }),
      elapsedSec: Math.round(s.elapsedSec * 10) / 10,
    };
  }
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtRate(r: number): string {
  if (r >= 1e6) return `${(r / 1e6).toFixed(2)}M`;
  if (r >= 1e4) return `${(r / 1e3).toFixed(1)}k`;
  return r.toFixed(r >= 100 ? 0 : 1);
}

/** Seconds as `42s`, `3m05s` or `1h02m`. */
export function fmtDuration(sec: number): string {
  const s = Math.round(sec);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
