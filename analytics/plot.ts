/**
 * Warm-up curves as a self-contained SVG line plot: x = prior-interaction bucket (categorical, BUCKETS
 * order), y = AUC, one line with markers per (adapter, side, release). Pure string building: no DOM, no
 * fonts or scripts to fetch, so the file renders anywhere. Buckets with NaN AUC (one class only) leave a
 * gap. Colours follow analytics/palette.ts (as the dashboard does): an adapter keeps its hue in every
 * panel, its `none` shares it, dashed. Each marker's tooltip gives the bucket's AUC and its events (n);
 * the legend sits in columns under the plot.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { curveStyles, type SeriesStyle } from './palette.js';
import { BUCKETS, type CurveRow, CURVE_BUCKETS } from './types.js';

export interface PlotOptions {
  /** Title above the plot. @default 'Warm-up curves' */
  title?: string;
  /** Image width, in px. @default 800 */
  width?: number;
  /** Image height, in px. @default 480 */
  height?: number;
  /** Series label of a row (rows with the same label form one line). @default `adapter / side (release)` */
  label?: (row: CurveRow) => string;
  /**
   * Rows of every panel drawn with the same colours (renderCurvesBySideSvg passes both sides' rows,
   * so an adapter's shade is the same in each panel). @default the rows plotted
   */
  styleRows?: readonly CurveRow[];
}

/** Escapes text for XML content and attribute values. */
export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

interface Series {
  label: string;
  /** The series' first row: its colour's key. */
  key: CurveRow;
  auc: (number | undefined)[];
  /** Events per bucket. */
  n: (number | undefined)[];
}

/** `adapter / side (release)`; the release left out when empty (curves pooled over releases). */
function defaultLabel(r: CurveRow): string {
  return r.release === '' ? `${r.adapter} / ${r.side}` : `${r.adapter} / ${r.side} (${r.release})`;
}

/** Groups rows into series, one per label. */
function seriesOf(rows: readonly CurveRow[], labelOf: (row: CurveRow) => string = defaultLabel): Series[] {
  const map = new Map<string, Series>();
  for (const r of rows) {
    const label = labelOf(r);
    let s = map.get(label);
    if (s === undefined) {
      s = { label, key: r, auc: BUCKETS.map(() => undefined), n: BUCKETS.map(() => undefined) };
      map.set(label, s);
    }
    const i = CURVE_BUCKETS.indexOf(r.bucket);
    if (i >= 0 && i < BUCKETS.length) {
      s.n[i] = r.n;
      if (Number.isFinite(r.auc)) s.auc[i] = r.auc;
    }
  }
  return [...map.values()].sort((a, b) => a.label.localeCompare(b.label));
}

/** Each series' style, computed over `styleRows` so that several panels agree. */
function stylesOf(series: readonly Series[], styleRows: readonly CurveRow[] | undefined): SeriesStyle[] {
  const keys = [...series.map((s) => s.key), ...(styleRows ?? [])];
  return curveStyles(keys).slice(0, series.length);
}

/** y-axis range and tick step: a "nice" step (1, 2 or 5 × 10^k) giving about 5–10 ticks. */
function yScale(values: number[]): { lo: number; hi: number; step: number } {
  let lo = values.length > 0 ? Math.min(...values) : 0.5;
  let hi = values.length > 0 ? Math.max(...values) : 1;
  if (hi - lo < 0.02) {
    lo -= 0.01;
    hi += 0.01;
  }
  const raw = (hi - lo) / 6;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  lo = Math.max(0, Math.floor(lo / step) * step);
  hi = Math.min(1, Math.ceil(hi / step) * step);
  if (hi <= lo) hi = lo + step;
  return { lo, hi, step };
}

const num = (x: number): string => (Math.round(x * 100) / 100).toString();

export function renderCurvesSvg(rows: readonly CurveRow[], opts: PlotOptions = {}): string {
  const width = opts.width ?? 800;
  const height = opts.height ?? 480;
  const title = opts.title ?? 'Warm-up curves';
  const series = seriesOf(rows, opts.label);
  const styles = stylesOf(series, opts.styleRows);
  // Legend in columns under the plot: a column fits the longest label at ~6.5 px per character of the 11 px font.
  const m = { left: 64, right: 16, top: 40, bottom: 56 };
  const pw = width - m.left - m.right;
  const colW = 34 + 6.5 * Math.max(0, ...series.map((s) => s.label.length));
  const cols = Math.max(1, Math.min(series.length, Math.floor(pw / colW)));
  const legendRows = Math.ceil(series.length / cols);
  m.bottom += legendRows * 16;
  const ph = Math.max(40, height - m.top - m.bottom);
  const all = series.flatMap((s) => s.auc.filter((v): v is number => v !== undefined));
  const { lo, hi, step } = yScale(all);
  const x = (i: number): number => m.left + ((i + 0.5) * pw) / BUCKETS.length;
  const y = (v: number): number => m.top + ph - ((v - lo) / (hi - lo)) * ph;

  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${num(m.left + pw / 2)}" y="24" text-anchor="middle" font-size="16">${xmlEscape(title)}</text>`);
  // Grid and y ticks.
  out.push(`<g class="y-axis">`);
  for (let v = lo, k = 0; v <= hi + step / 2 && k < 50; v = lo + ++k * step) {
    const yy = num(y(v));
    out.push(`<line x1="${m.left}" y1="${yy}" x2="${m.left + pw}" y2="${yy}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${m.left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${v.toFixed(step < 0.01 ? 3 : 2)}</text>`);
  }
  out.push(`<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${m.top + ph}" stroke="#000000"/>`);
  out.push(`<text transform="translate(18 ${num(m.top + ph / 2)}) rotate(-90)" text-anchor="middle">AUC</text>`);
  out.push(`</g>`);
  // x ticks.
  out.push(`<g class="x-axis">`);
  out.push(`<line x1="${m.left}" y1="${m.top + ph}" x2="${m.left + pw}" y2="${m.top + ph}" stroke="#000000"/>`);
  BUCKETS.forEach((b, i) => {
    const xx = num(x(i));
    out.push(`<line x1="${xx}" y1="${m.top + ph}" x2="${xx}" y2="${m.top + ph + 5}" stroke="#000000"/>`);
    out.push(`<text x="${xx}" y="${m.top + ph + 18}" text-anchor="middle">${xmlEscape(b)}</text>`);
  });
  out.push(`<text x="${num(m.left + pw / 2)}" y="${m.top + ph + 36}" text-anchor="middle">prior interactions of the entity (n: events per bucket, on hover)</text>`);
  out.push(`</g>`);
  // One path + markers per series.
  series.forEach((s, si) => {
    const { color, dash } = styles[si] ?? { color: '#000000', dash: false };
    let d = '';
    let pen = false;
    s.auc.forEach((v, i) => {
      if (v === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${num(x(i))} ${num(y(v))} `;
      pen = true;
    });
    out.push(`<g class="series" data-label="${xmlEscape(s.label)}">`);
    out.push(`<path d="${d.trim()}" fill="none" stroke="${color}" stroke-width="2"${dash ? ' stroke-dasharray="6 4"' : ''}/>`);
    s.auc.forEach((v, i) => {
      const n = s.n[i] ?? 0;
      if (v !== undefined)
        out.push(
          `<circle cx="${num(x(i))}" cy="${num(y(v))}" r="3.5" fill="${color}"><title>${xmlEscape(`${s.label} ${BUCKETS[i] ?? ''}: AUC ${v.toFixed(4)}, n ${n.toLocaleString('en-US')}`)}</title></circle>`,
        );
    });
    out.push(`</g>`);
  });
  // Legend.
  out.push(`<g class="legend">`);
  series.forEach((s, si) => {
    const { color, dash } = styles[si] ?? { color: '#000000', dash: false };
    const ly = m.top + ph + 52 + Math.floor(si / cols) * 16;
    const lx = num(m.left + (si % cols) * colW);
    out.push(`<line x1="${lx}" y1="${ly}" x2="${num(m.left + (si % cols) * colW + 20)}" y2="${ly}" stroke="${color}" stroke-width="2"${dash ? ' stroke-dasharray="5 3"' : ''}/>`);
    out.push(`<text x="${num(m.left + (si % cols) * colW + 26)}" y="${ly}" dominant-baseline="middle" font-size="11">${xmlEscape(s.label)}</text>`);
  });
  out.push(`</g>`);
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}

const SIDES = ['item', 'user'] as const;

/**
 * One SVG with a panel per side present (item left, user right), each the plot of that side's rows:
 * every adapter of the side side by side, labelled `adapter (release)` when the side has several
 * releases (so the `none` baselines of different shared models stay apart). `width`/`height` are
 * per panel; `title` gets ": item side" / ": user side" appended.
 */
export function renderCurvesBySideSvg(rows: readonly CurveRow[], opts: PlotOptions = {}): string {
  const w = opts.width ?? 720;
  const h = opts.height ?? 440;
  const panels = SIDES.filter((s) => rows.some((r) => r.side === s));
  const inner = panels.map((side, i) => {
    const own = rows.filter((r) => r.side === side);
    const several = new Set(own.map((r) => r.release)).size > 1;
    const label = opts.label ?? ((r: CurveRow) => (several ? `${r.adapter} (${r.release})` : r.adapter));
    const svg = renderCurvesSvg(own, { title: `${opts.title ?? 'Warm-up curves'}: ${side} side`, width: w, height: h, label, styleRows: rows }).replace(/^<\?xml[^>]*>\s*/, '');
    // A nested <svg> is positioned by x/y: the panel keeps its own coordinates.
    return svg.replace('<svg ', `<svg x="${i * w}" y="0" `);
  });
  const width = Math.max(1, panels.length) * w;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${h}" viewBox="0 0 ${width} ${h}">`,
    `<rect width="${width}" height="${h}" fill="#ffffff"/>`,
    ...inner,
    '</svg>',
    '',
  ].join('\n');
}

/** Writes an SVG (or any text) to `path`, creating the directory. */
export async function writePlot(path: string, svg: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, svg, 'utf8');
}
