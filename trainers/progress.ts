/**
 * Minimal progress reporting for training loops (rate and ETA), logged at most every `everyMs`
 * through the JSON logger so stdout stays free for results.
 */
import type { Logger } from '../lib/log.js';

export class Progress {
  private done = 0;
  private readonly started = Date.now();
  private last = 0;

  constructor(
    private readonly logger: Logger,
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'examples',
    private readonly everyMs = 5000,
  ) {}

  tick(n: number, fields: Record<string, unknown> = {}): void {
    this.done += n;
    const now = Date.now();
    if (now - this.last < this.everyMs && this.done < this.total) return;
    this.last = now;
    const sec = (now - this.started) / 1000;
    const rate = this.done / Math.max(sec, 1e-9);
    this.logger.info(this.label, { done: this.done, total: this.total, [`${this.unit}PerSec`]: Math.round(rate), etaSec: Math.round((this.total - this.done) / Math.max(rate, 1e-9)), ...fields });
  }

  /** Units per second since the start. */
  rate(): number {
    return this.done / Math.max((Date.now() - this.started) / 1000, 1e-9);
  }
}
