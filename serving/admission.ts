/**
 * Admission control by queue delay against a deadline (JIZHI's load shedding): a request is
 * admitted only if the time it has already spent, plus the wait of the oldest request in each stage
 * queue, plus the recent service time of the stages, fits its deadline (header `x-deadline-ms`, or
 * the server's default). The queue waits are read live from the queues, so the estimate falls as
 * soon as the queues drain: a server that refused a burst does not keep refusing on stale data.
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

/** Weight of the newest observation in the moving averages of service time. */
const ALPHA = 0.2;
/**
 * Half-life of an estimate that no observation refreshes (ms). Only admitted requests are observed:
 * without the decay, one slow spell (a GC pause, a slow read) could raise the estimate above every
 * deadline, refuse every request, and so never be corrected (measured: a closed loop of 32 clients
 * got nothing but 503s after one overload).
 */
const STALE_HALF_LIFE_MS = 200;

/** Moving averages of each batch stage's latency: a fetch round trip, a model micro-batch (ms). */
export class Admission {
  private fetchMs = 0;
  private modelMs = 0;
  private fetchAt = 0;
  private modelAt = 0;

  observeService(stage: 'fetch' | 'model', ms: number, now: number = performance.now()): void {
    if (stage === 'fetch') {
      this.fetchMs = this.decayed(this.fetchMs, this.fetchAt, now) * (1 - ALPHA) + ALPHA * ms;
      this.fetchAt = now;
    } else {
      this.modelMs = this.decayed(this.modelMs, this.modelAt, now) * (1 - ALPHA) + ALPHA * ms;
      this.modelAt = now;
    }
  }

  /** Expected service time of a new request through the stages (ms). */
  serviceMs(now: number = performance.now()): number {
    return this.decayed(this.fetchMs, this.fetchAt, now) + this.decayed(this.modelMs, this.modelAt, now);
  }

  private decayed(ms: number, at: number, now: number): number {
    const idle = now - at;
    return idle <= STALE_HALF_LIFE_MS ? ms : ms * Math.pow(0.5, (idle - STALE_HALF_LIFE_MS) / STALE_HALF_LIFE_MS);
  }
}
