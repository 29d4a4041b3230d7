/** Tables (Markdown) and the side-by-side SVG of a curves run. */
import { renderCurvesBySideSvg } from '../../analytics/plot.js';
import { BUCKETS, type CurveRow, CURVE_BUCKETS } from '../../analytics/types.js';
import type { Side } from '../../schemas/types.js';
import { at } from '../../lib/at.js';

const SIDES: readonly Side[] = ['item', 'user'];

function fmt(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

/** The release's model name (`emerg/2026…` → `emerg`): enough to tell the baselines apart. */
export function releaseModel(release: string): string {
  const slash = release.indexOf('/');
  return slash < 0 ? release : release.slice(0, slash);
}

function order(a: CurveRow, b: CurveRow): number {
  return (
    SIDES.indexOf(a.side) - SIDES.indexOf(b.side) ||
    releaseModel(a.release).localeCompare(releaseModel(b.release)) ||
    (a.adapter === 'none' ? -1 : 0) - (b.adapter === 'none' ? -1 : 0) ||
    a.adapter.localeCompare(b.adapter) ||
    CURVE_BUCKETS.indexOf(a.bucket) - CURVE_BUCKETS.indexOf(b.bucket)
  );
}

/** Long table: side, adapter, release, bucket, n, AUC, log loss (one line per curve point). */
export function longTable(rows: readonly CurveRow[]): string {
  const out = ['| side | adapter | release | bucket | n | AUC | log loss |', '|---|---|---|---|--:|--:|--:|'];
  for (const r of [...rows].sort(order)) {
    out.push(`| ${r.side} | ${r.adapter} | ${releaseModel(r.release)} | ${r.bucket} | ${r.n} | ${fmt(r.auc, 4)} | ${fmt(r.logLoss, 4)} |`);
  }
  return out.join('\n') + '\n';
}

/** Compact table: one line per (side, adapter, release), AUC per bucket, events in the window. */
export function aucTable(rows: readonly CurveRow[]): string {
  const groups = new Map<string, CurveRow[]>();
  for (const r of [...rows].sort(order)) {
    const key = `${r.side}\u0000${r.adapter}\u0000${r.release}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const out = [`| side | adapter | release | ${BUCKETS.join(' | ')} | events |`, `|---|---|---|${BUCKETS.map(() => '--:').join('|')}|--:|`];
  for (const g of groups.values()) {
    const first = at(g, 0);
    const auc = BUCKETS.map((b) => {
      const r = g.find((x) => x.bucket === b);
      return r === undefined ? '' : fmt(r.auc, 3);
    });
    out.push(`| ${first.side} | ${first.adapter} | ${releaseModel(first.release)} | ${auc.join(' | ')} | ${g.reduce((s, r) => s + r.n, 0)} |`);
  }
  return out.join('\n') + '\n';
}

/**
 * One SVG with a panel per side (item left, user right), each the analytics plot of that side's
 * rows: every adapter of the side, the release in the legend when several appear (the baselines).
 */
export function sideBySideSvg(rows: readonly CurveRow[], title: string): string {
  // Legend labels carry the release when several appear: its model name is enough (and fits).
  return renderCurvesBySideSvg(
    rows.map((r) => ({ ...r, release: releaseModel(r.release) })),
    { title, width: 720, height: 420 },
  );
}
