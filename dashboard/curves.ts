/**
 * The warm-up curves the dashboard shows, from the prediction log (ClickHouse server or chDB) through
 * analytics/curves.ts' queryCurves (the query `thaw curves` runs): all days pooled, and one curve per
 * UTC day. Series carry their style from analytics/palette.ts, so the page draws them as the SVG plot
 * does. Query results are kept for `refreshMs`, so page loads do not each run the query.
 */
import { queryCurves, type CurveFilter, type CurveSource } from '../analytics/curves.js';
import { curveStyles } from '../analytics/palette.js';
import { BUCKETS, CURVE_BUCKETS, type CurveRow } from '../analytics/types.js';
import { errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';

export interface CurvesViewOptions {
  source: CurveSource;
  /** Namespaces shown (one or several). */
  namespaces: readonly string[];
  /** Curve per release (false: releases pooled, the release label ''). @default true */
  byRelease?: boolean;
  /** How long a query's result is served before the next request runs it again, in ms. @default 30000 */
  refreshMs?: number;
  /** @default Date.now */
  clock?: () => number;
  /** @default silentLogger */
  logger?: Logger;
}

/** One line of a chart: an (adapter, namespace, release) on one side. */
export interface CurveSeries {
  label: string;
  adapter: string;
  namespace: string;
  release: string;
  color: string;
  dash: boolean;
  /** AUC per bucket (BUCKETS order); null: no rows, or one class only. */
  auc: (number | null)[];
  /** Events per bucket. */
  n: number[];
}

/** What `/api/curves` returns. */
export interface CurvesResponse {
  buckets: readonly string[];
  namespaces: readonly string[];
  /** Days present (YYYY-MM-DD, UTC), ascending. */
  days: string[];
  /** The day shown ('all': every day pooled). */
  day: string;
  sides: { item: CurveSeries[]; user: CurveSeries[] };
  /** Unix ms of the query's result. */
  queriedAtMs: number;
  /** Set when the last query failed (the previous result, if any, is still served). */
  error: string | null;
}

interface Cached {
  atMs: number;
  pooled: CurveRow[];
  daily: (CurveRow & { day: string })[];
}

export class CurvesView {
  private cached: Cached | undefined;
  private pending: Promise<Cached> | undefined;
  private lastError: string | null = null;
  private readonly refreshMs: number;
  private readonly clock: () => number;
  private readonly logger: Logger;

  constructor(private readonly opts: CurvesViewOptions) {
    this.refreshMs = opts.refreshMs ?? 30_000;
    this.clock = opts.clock ?? Date.now;
    this.logger = opts.logger ?? silentLogger;
  }

  /** The curves of `day` ('all' or YYYY-MM-DD); a failing query keeps serving the last result, with the error. */
  async get(day = 'all'): Promise<CurvesResponse> {
    let data = this.cached;
    if (data === undefined || this.clock() - data.atMs >= this.refreshMs) {
      try {
        data = await this.refresh();
        this.lastError = null;
      } catch (err) {
        this.lastError = errorMessage(err);
        this.logger.warn('curve query failed', { error: this.lastError });
      }
    }
    const rows = data === undefined ? [] : day === 'all' ? data.pooled : data.daily.filter((r) => r.day === day);
    return {
      buckets: BUCKETS,
      namespaces: this.opts.namespaces,
      days: data === undefined ? [] : [...new Set(data.daily.map((r) => r.day))].sort(),
      day,
      sides: seriesBySide(rows),
      queriedAtMs: data?.atMs ?? 0,
      error: this.lastError,
    };
  }

  /** One query round at a time, shared by concurrent requests. */
  private refresh(): Promise<Cached> {
    this.pending ??= (async () => {
      const filter: CurveFilter = { namespace: this.opts.namespaces, byRelease: this.opts.byRelease ?? true };
      const pooled = await queryCurves(this.opts.source, filter);
      const daily = (await queryCurves(this.opts.source, { ...filter, byDay: true })) as (CurveRow & { day: string })[];
      const fresh = { atMs: this.clock(), pooled, daily };
      this.cached = fresh;
      return fresh;
    })().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }
}

/** Rows grouped into series per side, styled together (an adapter has one colour on both sides). */
export function seriesBySide(rows: readonly CurveRow[]): { item: CurveSeries[]; user: CurveSeries[] } {
  const namespaces = new Set(rows.map((r) => r.namespace)).size > 1;
  const map = new Map<string, { side: string; s: CurveSeries }>();
  for (const r of rows) {
    const id = [r.side, r.adapter, r.namespace, r.release].join('\u0000');
    let entry = map.get(id);
    if (entry === undefined) {
      const where = [namespaces ? r.namespace : '', r.release].filter((x) => x !== '').join(' ');
      const s: CurveSeries = {
        label: where === '' ? r.adapter : `${r.adapter} (${where})`,
        adapter: r.adapter,
        namespace: r.namespace,
        release: r.release,
        color: '',
        dash: false,
        auc: BUCKETS.map(() => null),
        n: BUCKETS.map(() => 0),
      };
      entry = { side: r.side, s };
      map.set(id, entry);
    }
    const i = CURVE_BUCKETS.indexOf(r.bucket);
    if (i < 0 || i >= BUCKETS.length) continue;
    entry.s.auc[i] = Number.isFinite(r.auc) ? r.auc : null;
    entry.s.n[i] = r.n;
  }
  // Legend order: by (namespace, release), each adapter followed by its own none.
  const order = (e: { s: CurveSeries }): string => [e.s.namespace, e.s.release, e.s.adapter === 'none' ? '1' : '0', e.s.adapter].join('\u0000');
  const entries = [...map.values()].sort((a, b) => order(a).localeCompare(order(b)));
  const styles = curveStyles(entries.map((e) => ({ adapter: e.s.adapter, side: e.side, namespace: e.s.namespace, release: e.s.release })));
  entries.forEach((e, i) => {
    const st = styles[i];
    if (st !== undefined) Object.assign(e.s, st);
  });
  return { item: entries.filter((e) => e.side === 'item').map((e) => e.s), user: entries.filter((e) => e.side === 'user').map((e) => e.s) };
}
