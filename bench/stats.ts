/** Small helpers of the benchmarks: percentiles, aligned tables, option parsing. Benchmarks print, never assert. */
import { ConfigError } from '../lib/errors.js';

/** The q-quantile (0..1) of `values` by nearest rank; NaN for an empty list. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx] ?? Number.NaN;
}

/** Renders rows as an aligned Markdown table (readable in a terminal and pasteable into the README). */
export function markdownTable(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [header.map(String), ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string => '| ' + r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ') + ' |';
  return [line(cells[0] ?? []), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.slice(1).map(line)].join('\n');
}

export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(3);
}

/** A positive number option (an integer unless `integer` is false); throws ConfigError naming `key`. */
export function positiveOption(key: string, s: string, integer = true): number {
  const x = Number(s);
  if (!Number.isFinite(x) || x <= 0 || (integer && !Number.isInteger(x))) throw new ConfigError(key, `must be a positive ${integer ? 'integer' : 'number'}, got "${s}"`);
  return x;
}
