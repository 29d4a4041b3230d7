/**
 * A token bucket for `thaw produce --rate`: `take(n)` waits until n tokens accumulated at `rate`
 * per second (burst up to one second's worth), so the long-run rate is exact and short pauses are
 * caught up without unbounded bursts. Rate 0 means unlimited.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly capacity: number;

  constructor(
    private readonly rate: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.capacity = Math.max(1, rate);
    this.tokens = 0;
    this.last = now();
  }

  /** Milliseconds to wait before `n` tokens are available (0 if now); takes them. */
  reserve(n: number): number {
    if (this.rate <= 0) return 0;
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
    this.tokens -= n; // may go negative: the debt is the wait
    return this.tokens >= 0 ? 0 : (-this.tokens / this.rate) * 1000;
  }

  /** Waits for `n` tokens; rejects with an AbortError if `signal` aborts. */
  async take(n: number, signal?: AbortSignal): Promise<void> {
    const waitMs = this.reserve(n);
    if (waitMs > 0) await sleep(waitMs, undefined, signal === undefined ? {} : { signal });
  }
}
