/**
 * What the release-switch bench records beside the spine bench's decorators (bench/spine/instrument.ts):
 *   - LoopLagSampler   a timer every `periodMs`; each tick's lateness is how long the event loop was
 *                      blocked (no I/O callback, no batch ran) just before it, stamped in unix ms;
 *   - TakeRecorder     around the worker's release source: when the worker took each release (the
 *                      start of the first micro-batch on it), and every call of the adapters it hands
 *                      out (a Proxy times predictThenAdapt, predictThenAdaptSequence, initialStates);
 *   - GcRecorder       every garbage collection of the process (PerformanceObserver 'gc').
 * None changes what the worker does.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import type { Adapter } from '../../adapters/types.js';
import type { AdapterReleaseSource } from '../../consumers/worker.js';
import type { ReleasedAdapter } from '../../consumers/release-adapter.js';
import type { ActiveRelease, ReleaseStatus } from '../../model-store/release-sync.js';

export class LoopLagSampler {
  /** Ticks later than `minLateMs`: when (unix ms, at the late tick) and by how much (ms). */
  readonly late: { atMs: number; lateMs: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private last = 0;

  constructor(
    private readonly periodMs = 5,
    private readonly minLateMs = 2,
  ) {}

  start(): void {
    this.last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      const late = now - this.last - this.periodMs;
      this.last = now;
      if (late > this.minLateMs) this.late.push({ atMs: Date.now(), lateMs: late });
    }, this.periodMs);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The longest stall that ended in [fromMs, toMs] (unix ms); 0 if none above `minLateMs`. */
  maxIn(fromMs: number, toMs: number): number {
    let m = 0;
    for (const x of this.late) if (x.atMs >= fromMs && x.atMs <= toMs && x.lateMs > m) m = x.lateMs;
    return m;
  }
}

/** One timed adapter call: the release it ran on, when it ended (unix ms), how long, how many events. */
export interface AdapterCall {
  release: string;
  atMs: number;
  ms: number;
  events: number;
}

const TIMED = new Set<PropertyKey>(['predictThenAdapt', 'predictThenAdaptSequence', 'initialStates']);

/** Events of a timed call's first argument (an AdapterBatch, or an event list). */
function eventsOf(arg: unknown): number {
  if (Array.isArray(arg)) return arg.length;
  const events = (arg as { events?: unknown } | undefined)?.events;
  return Array.isArray(events) ? events.length : 0;
}

export class TakeRecorder implements AdapterReleaseSource {
  /** Releases the worker took, with the moment (unix ms). */
  readonly taken: { version: string; atMs: number }[] = [];
  /** Every timed call of the adapters handed out, in order. */
  readonly calls: AdapterCall[] = [];
  private readonly proxies = new WeakMap<Adapter, Adapter>();
  private readonly wrapped = new WeakMap<ActiveRelease<ReleasedAdapter>, ActiveRelease<ReleasedAdapter>>();

  constructor(private readonly inner: AdapterReleaseSource) {}

  activeRelease(): ActiveRelease<ReleasedAdapter> | undefined {
    const a = this.inner.activeRelease();
    return a === undefined ? undefined : this.wrap(a);
  }

  take(): ActiveRelease<ReleasedAdapter> | undefined {
    const next = this.inner.take();
    if (next === undefined) return undefined;
    this.taken.push({ version: next.version, atMs: Date.now() });
    return this.wrap(next);
  }

  current(): ReleaseStatus | undefined {
    return this.inner.current();
  }

  /** The same release with its adapter behind a timing Proxy (one Proxy per adapter: identity stays stable). */
  private wrap(r: ActiveRelease<ReleasedAdapter>): ActiveRelease<ReleasedAdapter> {
    const known = this.wrapped.get(r);
    if (known !== undefined) return known;
    const out = { ...r, value: { ...r.value, adapter: this.proxyOf(r.value.adapter, r.version) } };
    this.wrapped.set(r, out);
    return out;
  }

  private proxyOf(adapter: Adapter, release: string): Adapter {
    const known = this.proxies.get(adapter);
    if (known !== undefined) return known;
    const calls = this.calls;
    const proxy = new Proxy(adapter, {
      get(target, key, receiver) {
        const v: unknown = Reflect.get(target, key, receiver);
        if (typeof v !== 'function' || !TIMED.has(key)) return v;
        return (...args: unknown[]): unknown => {
          const t0 = performance.now();
          const out: unknown = Reflect.apply(v as (...a: unknown[]) => unknown, target, args);
          calls.push({ release, atMs: Date.now(), ms: performance.now() - t0, events: eventsOf(args[0]) });
          return out;
        };
      },
    });
    this.proxies.set(adapter, proxy);
    return proxy;
  }
}

/** Every garbage collection of this process: when it ended (unix ms) and how long it paused, ms. */
export class GcRecorder {
  readonly pauses: { atMs: number; ms: number }[] = [];
  private readonly observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) this.pauses.push({ atMs: performance.timeOrigin + e.startTime + e.duration, ms: e.duration });
  });

  start(): void {
    this.observer.observe({ entryTypes: ['gc'] });
  }

  stop(): void {
    this.observer.disconnect();
  }

  /** GC pause time that ended in [fromMs, toMs], ms. */
  sumIn(fromMs: number, toMs: number): number {
    let sum = 0;
    for (const p of this.pauses) if (p.atMs >= fromMs && p.atMs <= toMs) sum += p.ms;
    return sum;
  }
}
