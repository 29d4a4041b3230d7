/**
 * Scrapes the Prometheus endpoints of running workers (and servers) on an interval and keeps what the
 * dashboard shows of each: up or down (with why), rate, lag, batch latency, dead letters, release and
 * its age, and a short history of the rate. A target that fails (refused, timed out, not 200, not the
 * text format) is shown as down with the reason; the poller never throws and never stops polling.
 */
import { errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { redactUrl } from '../lib/url.js';
import { histogramDelta, histogramQuantile, parsePrometheusText, snapshotOf, type MetricsSnapshot } from './prometheus.js';

export interface TargetPollerOptions {
  /** Metrics URLs (`http://host:port/metrics`; a URL with no path gets `/metrics`). */
  targets: readonly string[];
  /** Time between two scrapes of every target, in ms. @default 5000 */
  pollMs?: number;
  /** A scrape slower than this fails (the target shows as down), in ms. @default 2000 */
  timeoutMs?: number;
  /** Points of rate history kept per target (count). @default 120 */
  historyPoints?: number;
  /** @default Date.now */
  clock?: () => number;
  /** @default silentLogger */
  logger?: Logger;
}

/** What `/api/workers` returns for one target. */
export interface TargetView {
  /** The URL scraped, credentials redacted. */
  url: string;
  up: boolean;
  /** Why the last scrape failed (when down). */
  error: string | null;
  /** Unix ms of the last successful scrape. */
  lastOkMs: number | null;
  kind: MetricsSnapshot['kind'] | null;
  namespace: string | null;
  side: string | null;
  adapter: string | null;
  /** Events (worker) or requests (server) per second between the last two successful scrapes. */
  ratePerSec: number | null;
  lag: number | null;
  /** Batch (worker) or request (server) time quantiles over the last interval (else since start), ms. */
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  deadLetters: number | null;
  release: string | null;
  /** Seconds since the release in use was published, as of now (scraped age + time since the scrape). */
  releaseAgeSec: number | null;
  /** Rate history: unix ms and events/s (null: target down at that time). */
  history: { t: number[]; rate: (number | null)[] };
}

interface TargetState {
  url: string;
  shown: string;
  last: { atMs: number; snap: MetricsSnapshot } | undefined;
  view: TargetView;
}

/** `http://h:p` → `http://h:p/metrics`; any other path is kept. */
export function metricsUrl(target: string): string {
  const u = new URL(target);
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/metrics';
  return u.toString();
}

const round = (x: number | undefined, digits = 3): number | null => (x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** digits) / 10 ** digits);

export class TargetPoller {
  private readonly states: TargetState[];
  private readonly pollMs: number;
  private readonly timeoutMs: number;
  private readonly historyPoints: number;
  private readonly clock: () => number;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;

  constructor(opts: TargetPollerOptions) {
    this.pollMs = opts.pollMs ?? 5000;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.historyPoints = opts.historyPoints ?? 120;
    this.clock = opts.clock ?? Date.now;
    this.logger = opts.logger ?? silentLogger;
    this.states = opts.targets.map((t) => {
      const url = metricsUrl(t);
      const shown = redactUrl(url);
      return { url, shown, last: undefined, view: emptyView(shown) };
    });
  }

  /** Scrapes every target now, then every `pollMs` until `stop()`. */
  start(): void {
    if (this.timer !== undefined || this.states.length === 0) return;
    this.inFlight = this.pollOnce();
    this.timer = setInterval(() => {
      if (this.inFlight !== undefined) return; // never pile scrapes up behind a slow target
      this.inFlight = this.pollOnce();
    }, this.pollMs);
  }

  /** One round of scrapes of every target (in parallel); never rejects. */
  async pollOnce(): Promise<void> {
    try {
      await Promise.all(this.states.map((s) => this.scrape(s)));
    } finally {
      this.inFlight = undefined;
    }
  }

  /** The current view of every target, in the order given. */
  views(): TargetView[] {
    const now = this.clock();
    return this.states.map((s) => {
      const v = s.view;
      const since = v.lastOkMs === null ? 0 : (now - v.lastOkMs) / 1000;
      return { ...v, releaseAgeSec: v.releaseAgeSec === null ? null : round(v.releaseAgeSec + since, 1), history: { t: [...v.history.t], rate: [...v.history.rate] } };
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  private async scrape(s: TargetState): Promise<void> {
    const at = this.clock();
    try {
      const res = await fetch(s.url, { signal: AbortSignal.timeout(this.timeoutMs), headers: { accept: 'text/plain' } });
      const body = await res.text();
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const snap = snapshotOf(parsePrometheusText(body));
      if (this.stopped) return;
      this.up(s, at, snap);
    } catch (err) {
      if (this.stopped) return;
      const reason = errorText(err, this.timeoutMs);
      if (s.view.up || s.view.error === null) this.logger.warn('metrics target down', { target: s.shown, reason });
      s.view = { ...s.view, up: false, error: reason, ratePerSec: null };
      this.push(s, at, null);
    }
  }

  private up(s: TargetState, at: number, snap: MetricsSnapshot): void {
    const prev = s.last;
    const dt = prev === undefined ? 0 : (at - prev.atMs) / 1000;
    // A counter that went down is a restarted process: no rate from that pair.
    const rate = prev !== undefined && dt > 0 && snap.count >= prev.snap.count ? (snap.count - prev.snap.count) / dt : undefined;
    let latency = snap.latency;
    if (latency !== undefined) {
      const delta = histogramDelta(latency, prev?.snap.latency);
      if (delta.count > 0) latency = delta;
    }
    if (!s.view.up && s.view.error !== null) this.logger.info('metrics target up', { target: s.shown });
    s.last = { atMs: at, snap };
    s.view = {
      ...s.view,
      up: true,
      error: null,
      lastOkMs: at,
      kind: snap.kind,
      namespace: snap.namespace ?? null,
      side: snap.side ?? null,
      adapter: snap.adapter ?? null,
      ratePerSec: round(rate, 1),
      lag: snap.lag ?? null,
      latencyP50Ms: round(latency === undefined ? undefined : (histogramQuantile(latency, 0.5) ?? NaN) * 1000, 2),
      latencyP99Ms: round(latency === undefined ? undefined : (histogramQuantile(latency, 0.99) ?? NaN) * 1000, 2),
      deadLetters: snap.deadLetters ?? null,
      release: snap.release ?? null,
      releaseAgeSec: round(snap.releaseAgeSec, 1),
    };
    this.push(s, at, round(rate, 1));
  }

  private push(s: TargetState, at: number, rate: number | null): void {
    const h = s.view.history;
    h.t.push(at);
    h.rate.push(rate);
    if (h.t.length > this.historyPoints) {
      h.t.shift();
      h.rate.shift();
    }
  }
}

function emptyView(url: string): TargetView {
  return {
    url,
    up: false,
    error: null,
    lastOkMs: null,
    kind: null,
    namespace: null,
    side: null,
    adapter: null,
    ratePerSec: null,
    lag: null,
    latencyP50Ms: null,
    latencyP99Ms: null,
    deadLetters: null,
    release: null,
    releaseAgeSec: null,
    history: { t: [], rate: [] },
  };
}

/** A short reason: `ECONNREFUSED`, `timed out after 2000 ms`, `HTTP 500`, a format error. */
function errorText(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `timed out after ${timeoutMs} ms`;
  // undici's fetch says `fetch failed`; why is in its cause (ECONNREFUSED, a blocked port, ...).
  const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return redactUrl(`${errorMessage(err)}: ${cause.message}`);
  return redactUrl(errorMessage(err));
}
