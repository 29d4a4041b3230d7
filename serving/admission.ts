/**
 * Admission control by queue delay against a deadline (JIZHI's load shedding): a request is
 * admitted only if the time it has already spent, plus the delay the work admitted before it puts
 * ahead of it, plus its own service, fits its deadline (header `x-deadline-ms`, or the server's
 * default). A refused request gets 503 with Retry-After, never a place in an unbounded queue.
 *
 * The prediction (`predictMs`): a server process is one thread, so the requests in flight are
 * served one CPU slice after another; the delay ahead of a new request is
 *
 *     max(fetch round trip, requests in flight × CPU per request)  +  CPU per request
 *
 * (its state read overlaps the CPU work ahead of it). CPU per request is the event loop's ACTIVE
 * time per answered request over the last windows (`performance.eventLoopUtilization`): it counts
 * everything the thread does for a request (HTTP parsing, the body's JSON, the stages, the
 * response, GC), and a process starved of CPU by its neighbours sees it grow.
 *
 * Why not the stages' round times (the first estimator): a coalesced read's round time hardly grows
 * with the requests it carries, and the model stage's batch time leaves out the HTTP work, so at
 * 2-4× capacity the first estimator admitted ~200 requests per turn of the event loop, each turn then
 * took hundreds of ms, requests waited in the sockets where no deadline sees them, and the admitted
 * ones came out past their deadline.
 *
 * Refusals cost CPU too (HTTP parsing, the 503), and that CPU is in the active time but not in the
 * answered count. A window with more refusals than answers therefore does not update the estimate
 * (it keeps the one measured nearer capacity): counting it inflated the CPU per request, admitted
 * fewer, answered fewer, inflated it further, and goodput collapsed at 3× capacity (measured: 28
 * good answers/s of a capacity of 1,175/s). In windows with fewer refusals the estimate is at most
 * a little high, which only shortens the queue.
 */
import { performance } from 'node:perf_hooks';
import { ThawError } from '../lib/errors.js';

/** Why a request was refused: queues full, deadline unmeetable, deadline passed while queued, server starting or stopping. */
export type ShedReason = 'queue-full' | 'deadline' | 'late' | 'starting' | 'stopping';

/** A request refused by admission control, or dropped once past its deadline: HTTP 503. */
export class OverloadedError extends ThawError {
  override readonly name = 'OverloadedError';
  readonly reason: ShedReason;
  constructor(reason: ShedReason, message: string) {
    super('OVERLOADED', message);
    this.reason = reason;
  }
}

/**
 * An OverloadedError without a stack trace. Refusals are the server's normal answer under overload
 * (thousands per second), and capturing a stack for each showed in its CPU profile; where a request
 * was refused is said by its reason.
 */
export function overloaded(reason: ShedReason, message: string): OverloadedError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new OverloadedError(reason, message);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** The clock and the event loop's cumulative active time (ms); injectable for tests. */
export interface LoopClock {
  now(): number;
  activeMs(): number;
}

/** performance.now() and the event loop utilization's active time. */
export const PROCESS_LOOP_CLOCK: LoopClock = {
  now: () => performance.now(),
  activeMs: () => performance.eventLoopUtilization().active,
};

/** Observations of the fetch round time kept; the estimate is their median (robust to one GC pause). */
const FETCH_WINDOW = 16;
/**
 * Half-life of a fetch round time that no observation refreshes (ms): one slow read must not keep
 * a stale estimate above every deadline when nothing is admitted to correct it.
 */
const STALE_HALF_LIFE_MS = 200;
/** The CPU per request is measured over windows of at least this long (ms) and this many answers. */
const COST_WINDOW_MS = 50;
const COST_WINDOW_ANSWERS = 8;
/** Weight of a new window in the CPU-per-request estimate (an exponential moving average). */
const COST_ALPHA = 0.3;

/** The median of the recent fetch round times, decaying while nothing refreshes it. */
class RoundTime {
  private readonly ring = new Float64Array(FETCH_WINDOW);
  private readonly sorted = new Float64Array(FETCH_WINDOW);
  private n = 0;
  private next = 0;
  private median = 0;
  private at = 0;

  observe(ms: number, now: number): void {
    this.ring[this.next] = ms;
    this.next = (this.next + 1) % FETCH_WINDOW;
    this.n = Math.min(this.n + 1, FETCH_WINDOW);
    const view = this.sorted.subarray(0, this.n);
    view.set(this.ring.subarray(0, this.n));
    view.sort();
    this.median = view[this.n >> 1] ?? 0;
    this.at = now;
  }

  value(now: number): number {
    const idle = now - this.at;
    return idle <= STALE_HALF_LIFE_MS ? this.median : this.median * Math.pow(0.5, (idle - STALE_HALF_LIFE_MS) / STALE_HALF_LIFE_MS);
  }
}

/** The admission estimate: fetch round trips and the CPU per answered request. */
export class Admission {
  private readonly fetch = new RoundTime();
  private readonly clock: LoopClock;
  private cost = 0;
  private windowAt: number;
  private windowActive: number;
  private windowAnswers = 0;
  private windowRefusals = 0;

  constructor(clock: LoopClock = PROCESS_LOOP_CLOCK) {
    this.clock = clock;
    this.windowAt = clock.now();
    this.windowActive = clock.activeMs();
  }

  /** A coalesced read took `ms` from send to reply. */
  observeFetch(ms: number, now: number = this.clock.now()): void {
    this.fetch.observe(ms, now);
  }

  /** `n` admitted requests were answered (or dropped late): closes a cost window when one is due. */
  answered(n = 1): void {
    this.windowAnswers += n;
    this.closeWindow();
  }

  /** `n` requests were refused at admission. */
  refused(n = 1): void {
    this.windowRefusals += n;
    this.closeWindow();
  }

  private closeWindow(): void {
    if (this.windowAnswers + this.windowRefusals < COST_WINDOW_ANSWERS) return;
    const now = this.clock.now();
    if (now - this.windowAt < COST_WINDOW_MS) return;
    const active = this.clock.activeMs();
    if (this.windowAnswers > 0 && this.windowRefusals <= this.windowAnswers) {
      const sample = (active - this.windowActive) / this.windowAnswers;
      this.cost = this.cost === 0 ? sample : this.cost + COST_ALPHA * (sample - this.cost);
    }
    this.windowAt = now;
    this.windowActive = active;
    this.windowAnswers = 0;
    this.windowRefusals = 0;
  }

  /** The event loop's active time per answered request (ms); 0 before the first window closed. */
  costMs(): number {
    return this.cost;
  }

  /** The recent fetch round time (ms). */
  fetchMs(now: number = this.clock.now()): number {
    return this.fetch.value(now);
  }

  /**
   * The predicted latency (ms) of a request that has waited `elapsedMs` so far, with `inFlight`
   * requests admitted before it and not yet answered.
   */
  predictMs(inFlight: number, elapsedMs: number, now: number = this.clock.now()): number {
    const cost = this.cost;
    return elapsedMs + Math.max(this.fetch.value(now), inFlight * cost) + cost;
  }
}
