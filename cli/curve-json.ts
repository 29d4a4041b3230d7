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

/** `scope: false` leaves out release and namespace (the demo has one of each). */
export function curvesJson(rows: readonly CurveRow[], opts: { scope?: boolean } = {}): CurveJson[] {
  return rows.map((r) => {
    const day = (r as { day?: unknown }).day;
    return {
      adapter: r.adapter,
      side: r.side,
      ...(opts.scope === false ? {} : { release: r.release, namespace: r.namespace }),
      bucket: r.bucket,
      ...(typeof day === 'string' ? { day } : {}),
      n: r.n,
      ctr: fin(r.ctr),
      auc: fin(r.auc),
      logLoss: fin(r.logLoss),
    };
  });
}
