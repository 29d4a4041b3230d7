import type { CurveRow } from '../analytics/types.js';

/** A curve point as `--json` prints it: NaN (one class only) becomes null, valid JSON. */
export interface CurveJson {
  adapter: string;
  side: string;
  release?: string;
  namespace?: string;
  bucket: string;
  day?: string;
  n: number;
  ctr: number | null;
  auc: number | null;
  logLoss: number | null;
}

const fin = (x: number): number | null => (Number.isFinite(x) ? x : null);

export interface CurvesJsonOptions {
  /** Include release and namespace. @default true */
  scope?: boolean;
  /**
   * Include the release even when `scope` is false (the demo: one namespace, but a release per
   * shared model, whose `none` baselines must stay apart). @default the value of `scope`
   */
  release?: boolean;
}

/** Curve rows as `--json` prints them; `scope: false` leaves out the namespace (and the release unless `release: true`). */
export function curvesJson(rows: readonly CurveRow[], opts: CurvesJsonOptions = {}): CurveJson[] {
  const scope = opts.scope !== false;
  const release = opts.release ?? scope;
  return rows.map((r) => {
    const day = (r as { day?: unknown }).day;
    return {
      adapter: r.adapter,
      side: r.side,
      ...(release ? { release: r.release } : {}),
      ...(scope ? { namespace: r.namespace } : {}),
      bucket: r.bucket,
      ...(typeof day === 'string' ? { day } : {}),
      n: r.n,
      ctr: fin(r.ctr),
      auc: fin(r.auc),
      logLoss: fin(r.logLoss),
    };
  });
}
