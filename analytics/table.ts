/** Warm-up curves as an aligned text table (what `thaw curves` and `thaw demo` print). */
import { type CurveRow, CURVE_BUCKETS } from './types.js';

export interface CurveTableOptions {
  /**
   * Add a `release` column after `side`. Rows of several releases (e.g. the `none` baselines of
   * different shared models) are otherwise indistinguishable. @default true when the rows hold more than one release
   */
  release?: boolean;
  /** `sorted`: by adapter, side, release, bucket; `input`: the caller's order. @default 'sorted' */
  order?: 'sorted' | 'input';
}

function fmt(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

/**
 * One line per row, sorted by adapter, side, release, then bucket in BUCKETS order (namespace is
 * not a column: filter to one, or rows of several appear one after another).
 */
export function formatCurveTable(rows: readonly CurveRow[], opts: CurveTableOptions = {}): string {
  const withRelease = opts.release ?? new Set(rows.map((r) => r.release)).size > 1;
  const headers = ['adapter', 'side', ...(withRelease ? ['release'] : []), 'bucket', 'events', 'CTR', 'AUC', 'log loss'];
  /** Numeric columns (the last four) are right-aligned. */
  const firstNumeric = headers.length - 4;
  const sorted =
    opts.order === 'input'
      ? [...rows]
      : [...rows].sort(
          (a, b) => a.adapter.localeCompare(b.adapter) || a.side.localeCompare(b.side) || a.release.localeCompare(b.release) || CURVE_BUCKETS.indexOf(a.bucket) - CURVE_BUCKETS.indexOf(b.bucket),
        );
  const cells: string[][] = [headers, ...sorted.map((r) => [r.adapter, r.side, ...(withRelease ? [r.release] : []), r.bucket, String(r.n), fmt(r.ctr, 4), fmt(r.auc, 4), fmt(r.logLoss, 4)])];
  const widths = headers.map((_, c) => Math.max(...cells.map((row) => (row[c] ?? '').length)));
  const line = (row: string[]): string =>
    row
      .map((cell, c) => (c >= firstNumeric ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const [head, ...body] = cells;
  return [line(head ?? []), rule, ...body.map(line)].join('\n') + '\n';
}
