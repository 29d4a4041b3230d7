/**
 * Admission control by queue delay against a deadline (JIZHI's load shedding): a request is
 * admitted only if the time it has already spent, plus the wait of the oldest request in each stage
 * queue, plus the recent service time of the stages, fits its deadline (header `x-deadline-ms`, or
 * the server's default). The queue waits are read live from the queues, so the estimate falls as
 * soon as the queues drain: a server that refused a burst does not keep refusing on stale data.
 * A refused request gets 503 with Retry-After, never a place in an unbounded queue.
 */
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
const ALPHA = 0.1;

/** Moving averages of each batch stage's latency: a fetch round trip, a model micro-batch (ms). */
export class Admission {
  private fetchMs = 0;
  private modelMs = 0;

  observeService(stage: 'fetch' | 'model', ms: number): void {
    if (stage === 'fetch') this.fetchMs += ALPHA * (ms - this.fetchMs);
    else this.modelMs += ALPHA * (ms - this.modelMs);
  }

  /** Expected service time of a new request through the stages (ms). */
  serviceMs(): number {
    return this.fetchMs + this.modelMs;
  }
}
