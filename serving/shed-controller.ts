/**
 * The online half of the resource manager (JIZHI's): the shedding threshold adapts from live
 * feedback. Admission (serving/admission.ts) predicts a request's latency and refuses it when the
 * prediction exceeds `threshold × deadline`. The prediction is a model (CPU per request, fetch
 * round time) and is wrong when the machine changes under it: neighbours take the CPU, the HTTP
 * layer queues in sockets, GC grows. The controller closes the loop on what admission promised:
 * it watches the ADMITTED requests' latency as a share of their own deadline and moves the
 * threshold by AIMD, as TCP moves its window:
 *
 *   - a window whose p99 ratio (latency / deadline) is above `targetRatio`: multiplicative
 *     decrease (threshold × `decrease`), so a sustained misprediction is corrected in a few windows;
 *   - a window whose p99 ratio is below `lowRatio` AND that refused requests: additive increase
 *     (+ `increase`), so an over-cautious prediction gives back goodput slowly;
 *   - otherwise, or a window without refusals (nothing to admit more of): hold. Increasing while
 *     nothing is refused would wind the threshold up with no effect, to overshoot at the next burst.
 *
 * The threshold stays in [`minThreshold`, `maxThreshold`]. Requests dropped past their deadline
 * in a queue ('late') count as admitted with their (over-deadline) latency: they are what the
 * controller exists to prevent. Pure logic over injected times: unit-tested with a fake clock.
 */
import { ConfigError } from '../lib/errors.js';

export interface ShedControllerOptions {
  /** The p99 of admitted latency / deadline a window must stay under (ratio). @default 0.8 */
  targetRatio?: number;
  /** Below this p99 ratio a window that refused requests raises the threshold (ratio). @default 0.5 */
  lowRatio?: number;
  /** Lowest threshold (× deadline). @default 0.05 */
  minThreshold?: number;
  /** Highest threshold (× deadline); above 1 lets a pessimistic prediction admit more. @default 1.5 */
  maxThreshold?: number;
  /** Additive increase per window (× deadline). @default 0.05 */
  increase?: number;
  /** Multiplicative decrease per window (factor in (0, 1)). @default 0.7 */
  decrease?: number;
  /** A window closes after at least this long (ms)... @default 100 */
  windowMs?: number;
  /** ...and at least this many admitted requests finished (count). @default 20 */
  windowAnswers?: number;
}

export type ShedControllerConfig = Required<ShedControllerOptions>;

export const SHED_CONTROLLER_DEFAULTS: ShedControllerConfig = {
  targetRatio: 0.8,
  lowRatio: 0.5,
  minThreshold: 0.05,
  maxThreshold: 1.5,
  increase: 0.05,
  decrease: 0.7,
  windowMs: 100,
  windowAnswers: 20,
};

/** The options with their defaults, validated (ConfigError naming `serving.shedControl.<key>`). */
export function shedControllerConfig(opts: ShedControllerOptions = {}): ShedControllerConfig {
  const c = { ...SHED_CONTROLLER_DEFAULTS, ...opts };
  const bad = (key: keyof ShedControllerOptions, what: string): never => {
    throw new ConfigError(`serving.shedControl.${key}`, `${what}, got ${String(c[key])}`);
  };
  const positive = (key: keyof ShedControllerOptions): void => {
    if (!(Number.isFinite(c[key]) && c[key] > 0)) bad(key, 'must be a positive number');
  };
  for (const key of Object.keys(SHED_CONTROLLER_DEFAULTS) as (keyof ShedControllerOptions)[]) positive(key);
  if (c.lowRatio >= c.targetRatio) bad('lowRatio', `must be below targetRatio (${c.targetRatio})`);
  if (c.minThreshold > c.maxThreshold) bad('minThreshold', `must be at most maxThreshold (${c.maxThreshold})`);
  if (c.decrease >= 1) bad('decrease', 'must be below 1');
  if (!Number.isSafeInteger(c.windowAnswers)) bad('windowAnswers', 'must be an integer');
  return c;
}

/** What the last closed window saw and did. */
export interface ShedWindow {
  /** p99 of latency / deadline of the admitted requests it saw. */
  p99Ratio: number;
  answers: number;
  refusals: number;
  action: 'decrease' | 'increase' | 'hold';
}

/** The AIMD controller of the shedding threshold. */
export class ShedController {
  readonly config: ShedControllerConfig;
  private value = 1;
  private ratios = new Float64Array(64);
  private n = 0;
  private refusals = 0;
  private windowAt: number;
  private last: ShedWindow | undefined;
  /** Admitted requests finished, and those finished past their deadline, since start. */
  private finishedCount = 0;
  private pastDeadlineCount = 0;

  /** @param now the clock's time at start (ms) */
  constructor(opts: ShedControllerOptions = {}, now = 0) {
    this.config = shedControllerConfig(opts);
    this.value = Math.min(this.config.maxThreshold, Math.max(this.config.minThreshold, 1));
    this.windowAt = now;
  }

  /** The current threshold: admission refuses a request whose predicted latency exceeds threshold × its deadline. */
  get threshold(): number {
    return this.value;
  }

  /** The last closed window (undefined before the first). */
  get lastWindow(): ShedWindow | undefined {
    return this.last;
  }

  /** Admitted requests finished (answered or dropped late) since start. */
  get finished(): number {
    return this.finishedCount;
  }

  /** Of those, finished after their deadline. */
  get pastDeadline(): number {
    return this.pastDeadlineCount;
  }

  /** An admitted request finished `latencyMs` after arrival with a budget of `deadlineMs`. Returns the window it closed, if any. */
  observe(latencyMs: number, deadlineMs: number, now: number): ShedWindow | undefined {
    if (this.n === this.ratios.length) {
      const grown = new Float64Array(2 * this.n);
      grown.set(this.ratios);
      this.ratios = grown;
    }
    this.ratios[this.n++] = latencyMs / deadlineMs;
    this.finishedCount++;
    if (latencyMs > deadlineMs) this.pastDeadlineCount++;
    return this.maybeClose(now);
  }

  /** A request was refused at admission (deadline or queue-full). */
  refused(now: number): ShedWindow | undefined {
    this.refusals++;
    return this.maybeClose(now);
  }

  private maybeClose(now: number): ShedWindow | undefined {
    if (this.n < this.config.windowAnswers || now - this.windowAt < this.config.windowMs) return undefined;
    const view = this.ratios.subarray(0, this.n).sort();
    const p99Ratio = view[Math.min(this.n - 1, Math.ceil(0.99 * this.n) - 1)] ?? 0;
    const c = this.config;
    let action: ShedWindow['action'] = 'hold';
    if (p99Ratio > c.targetRatio) {
      this.value = Math.max(c.minThreshold, this.value * c.decrease);
      action = 'decrease';
    } else if (p99Ratio < c.lowRatio && this.refusals > 0 && this.value < c.maxThreshold) {
      this.value = Math.min(c.maxThreshold, this.value + c.increase);
      action = 'increase';
    }
    this.last = { p99Ratio, answers: this.n, refusals: this.refusals, action };
    this.n = 0;
    this.refusals = 0;
    this.windowAt = now;
    return this.last;
  }
}
