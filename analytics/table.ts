/** Warm-up curves as an aligned text table (what `thaw curves` prints). */
import { BUCKETS, type CurveRow } from './types.js';

const HEADERS = ['adapter', 'side', 'bucket', 'events', 'CTR', 'AUC', 'log loss'] as const;
/** Numeric columns are right-aligned. */
const RIGHT = new Set([3, 4, 5, 6]);

function fmt(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

/**
 * One line per row, sorted by adapter, side, then bucket in BUCKETS order (release and namespace
 * are not columns: filter to one of each, or rows of several appear one after another).
 */
export function formatCurveTable(rows: readonly CurveRow[]): string {
  const sorted = [...rows].sort(
    (a, b) =>
      a.adapter.localeCompare(b.adapter) ||
      a.side.localeCompare(b.side) ||
      BUCKETS.indexOf(a.bucket) - BUCKETS.indexOf(b.bucket),
  );
  const cells: string[][] = [
    [...HEADERS],
    ...sorted.map((r) => [r.adapter, r.side, r.bucket, String(r.n), fmt(r.ctr, 4), fmt(r.auc, 4), fmt(r.logLoss, 4)]),
  ];
  const widths = HEADERS.map((_, c) => Math.max(...cells.map((row) => (row[c] ?? '').length)));
  const line = (row: string[]): string =>
    row
      .map((cell, c) => (RIGHT.has(c) ? cell.padStart(widths[c] ?? 0) : cell.padEnd(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const [head, ...body] = cells;
  return [line(head ?? []), rule, ...body.map(line)].join('\n') + '\n';
}
