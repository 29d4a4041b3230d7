/**
 * Admission control by queue delay against a deadline (JIZHI's load shedding): a request is
 * admitted only if the time it has already spent, plus the rounds of each stage queued ahead of it
 * and its own, at the stages' recent round times (serving/pipeline.ts `expectedServiceMs`), fits its
 * deadline (header `x-deadline-ms`, or the server's default). The queues are read live, so the
 * estimate falls as soon as they drain: a server that refused a burst does not keep refusing.
 * A refused request gets 503 with Retry-After, never a place in an unbounded queue.
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

/** Observations of a stage's round time kept; the estimate is their median (robust to one GC pause). */
const WINDOW = 16;
/**
 * Half-life of an estimate that no observation refreshes (ms). Only admitted requests are observed:
 * without the decay, one slow spell (a GC pause, a slow read) could raise the estimate above every
 * deadline, refuse every request, and so never be corrected (measured: a closed loop of 32 clients
 * got nothing but 503s after one overload).
 */
const STALE_HALF_LIFE_MS = 200;

/** The median of a stage's recent round times, decaying while nothing refreshes it. */
class RoundTime {
  private readonly ring = new Float64Array(WINDOW);
  private readonly sorted = new Float64Array(WINDOW);
  private n = 0;
  private next = 0;
  private median = 0;
  private at = 0;

  observe(ms: number, now: number): void {
    this.ring[this.next] = ms;
    this.next = (this.next + 1) % WINDOW;
    this.n = Math.min(this.n + 1, WINDOW);
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

/** Recent round times of the batch stages: a fetch round trip, a model micro-batch (ms). */
export class Admission {
  private readonly fetch = new RoundTime();
  private readonly model = new RoundTime();

  observeService(stage: 'fetch' | 'model', ms: number, now: number = performance.now()): void {
    (stage === 'fetch' ? this.fetch : this.model).observe(ms, now);
  }

  fetchMs(now: number = performance.now()): number {
    return this.fetch.value(now);
  }

  modelMs(now: number = performance.now()): number {
    return this.model.value(now);
  }

  /** Expected service time of a new request through empty stages (ms). */
  serviceMs(now: number = performance.now()): number {
    return this.fetchMs(now) + this.modelMs(now);
  }
}
