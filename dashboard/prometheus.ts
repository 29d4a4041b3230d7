/**
 * The Prometheus text exposition format (version 0.0.4, what prom-client serves), read into samples,
 * and the few figures the dashboard takes from a worker's or a server's samples. No dependency: the
 * format is line-based, and only samples are needed (HELP/TYPE comments are skipped).
 */
import { ThawError } from '../lib/errors.js';

/** One sample line: `name{label="value",...} value [timestamp]`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

function parseValue(text: string, line: number): number {
  if (text === 'NaN') return NaN;
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  const v = Number(text);
  if (text === '' || Number.isNaN(v)) throw new ThawError('DATA_FORMAT', `metrics line ${line}: bad value ${JSON.stringify(text)}`);
  return v;
}

/** Reads `{a="x",b="y"}` from `s` at `i` (just past `{`); returns the labels and the index past `}`. */
function parseLabels(s: string, start: number, line: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start;
  const bad = (): ThawError => new ThawError('DATA_FORMAT', `metrics line ${line}: bad labels`);
  for (;;) {
    while (s[i] === ' ' || s[i] === ',') i++;
    if (s[i] === '}') return { labels, end: i + 1 };
    const name = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(s.slice(i))?.[0];
    if (name === undefined) throw bad();
    i += name.length;
    if (s[i] !== '=' || s[i + 1] !== '"') throw bad();
    i += 2;
    let value = '';
    for (; i < s.length && s[i] !== '"'; i++) {
      const c = s[i];
      if (c === '\\') {
        i++;
        const e = s[i];
        value += e === 'n' ? '\n' : (e ?? '');
      } else value += c;
    }
    if (s[i] !== '"') throw bad();
    i++;
    labels[name] = value;
  }
}

/** Parses a text exposition; throws DATA_FORMAT on a malformed sample line. */
export function parsePrometheusText(text: string): Sample[] {
  const out: Sample[] = [];
  text.split('\n').forEach((raw, idx) => {
    const s = raw.trim();
    if (s === '' || s.startsWith('#')) return;
    const name = NAME.exec(s)?.[0];
    if (name === undefined) throw new ThawError('DATA_FORMAT', `metrics line ${idx + 1}: no metric name`);
    let labels: Record<string, string> = {};
    let rest = s.slice(name.length);
    if (rest.startsWith('{')) {
      const parsed = parseLabels(rest, 1, idx + 1);
      labels = parsed.labels;
      rest = rest.slice(parsed.end);
    }
    const [value = ''] = rest.trim().split(/\s+/);
    out.push({ name, labels, value: parseValue(value, idx + 1) });
  });
  return out;
}

/** A cumulative histogram: `le` upper bounds (the last +Inf) and the count at or below each. */
export interface Histogram {
  le: number[];
  cumulative: number[];
  count: number;
}

/** The figures of one scrape the dashboard shows. */
export interface MetricsSnapshot {
  /** `worker`: thaw_events_total present; `server`: thaw_serve_requests_total; else `other`. */
  kind: 'worker' | 'server' | 'other';
  /** Events processed (worker) or requests answered (server), since the process started. */
  count: number;
  deadLetters: number | undefined;
  lag: number | undefined;
  /** Batch time (worker: thaw_batch_seconds) or request time (server: thaw_serve_request_seconds), seconds. */
  latency: Histogram | undefined;
  release: string | undefined;
  releaseAgeSec: number | undefined;
  namespace: string | undefined;
  side: string | undefined;
  adapter: string | undefined;
}

function sum(samples: readonly Sample[], name: string, where: (l: Record<string, string>) => boolean = () => true): number | undefined {
  const hits = samples.filter((s) => s.name === name && where(s.labels));
  return hits.length === 0 ? undefined : hits.reduce((a, s) => a + s.value, 0);
}

function histogram(samples: readonly Sample[], base: string): Histogram | undefined {
  const byLe = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${base}_bucket` || s.labels.le === undefined) continue;
    const le = parseValue(s.labels.le, 0);
    byLe.set(le, (byLe.get(le) ?? 0) + s.value);
  }
  if (byLe.size === 0) return undefined;
  const le = [...byLe.keys()].sort((a, b) => a - b);
  const cumulative = le.map((b) => byLe.get(b) ?? 0);
  return { le, cumulative, count: sum(samples, `${base}_count`) ?? cumulative[cumulative.length - 1] ?? 0 };
}

/** What the dashboard reads from one scrape of a worker (consumers/metrics.ts) or a server (serving/metrics.ts). */
export function snapshotOf(samples: readonly Sample[]): MetricsSnapshot {
  const processed = sum(samples, 'thaw_events_total', (l) => l.outcome === 'processed');
  const served = sum(samples, 'thaw_serve_requests_total');
  const kind = processed !== undefined ? 'worker' : served !== undefined ? 'server' : 'other';
  const info = samples.find((s) => (s.name === 'thaw_release_info' || s.name === 'thaw_serve_release_info') && s.value === 1);
  const age = sum(samples, kind === 'server' ? 'thaw_serve_release_age_seconds' : 'thaw_release_age_seconds');
  const events = samples.find((s) => s.name === 'thaw_events_total');
  const anyLabelled = samples.find((s) => s.labels.namespace !== undefined);
  return {
    kind,
    count: processed ?? served ?? 0,
    deadLetters: kind === 'worker' ? (sum(samples, 'thaw_dead_letters_total') ?? 0) : undefined,
    lag: sum(samples, 'thaw_consumer_lag'),
    latency: histogram(samples, kind === 'server' ? 'thaw_serve_request_seconds' : 'thaw_batch_seconds'),
    release: info?.labels.release,
    releaseAgeSec: age === undefined || !Number.isFinite(age) ? undefined : age,
    namespace: anyLabelled?.labels.namespace,
    side: events?.labels.side,
    adapter: events?.labels.adapter,
  };
}

/** The histogram of the observations between two scrapes (`before` undefined: all of `now`'s). */
export function histogramDelta(now: Histogram, before: Histogram | undefined): Histogram {
  if (before === undefined || before.le.length !== now.le.length || before.count > now.count) return now;
  return { le: now.le, cumulative: now.cumulative.map((c, i) => c - (before.cumulative[i] ?? 0)), count: now.count - before.count };
}

/**
 * The q-quantile of a cumulative histogram, interpolating linearly inside the bucket that holds it
 * (as PromQL's histogram_quantile); undefined when it holds no observation. In the +Inf bucket: its
 * lower bound.
 */
export function histogramQuantile(h: Histogram, q: number): number | undefined {
  const total = h.cumulative[h.cumulative.length - 1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  for (let i = 0; i < h.le.length; i++) {
    const upper = h.le[i] ?? Infinity;
    const cum = h.cumulative[i] ?? 0;
    if (cum < rank) continue;
    const lower = i === 0 ? 0 : (h.le[i - 1] ?? 0);
    if (!Number.isFinite(upper)) return lower;
    const below = i === 0 ? 0 : (h.cumulative[i - 1] ?? 0);
    const inBucket = cum - below;
    return inBucket <= 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
  }
  return h.le[h.le.length - 2];
}
