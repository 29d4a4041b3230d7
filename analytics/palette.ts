/**
 * Colours of warm-up curve series, shared by the SVG plot (analytics/plot.ts) and the dashboard
 * (dashboard/), so a curve looks the same in both:
 *
 * - an adapter keeps ONE hue everywhere (every panel, every page load): the known adapters have fixed
 *   slots, others take the free slots in name order;
 * - `none` (the unadapted baseline) takes the hue of the adapter it runs beside, the one other
 *   adapter of its (side, namespace, release) group, and is drawn dashed; a `none` with no such single
 *   partner is grey;
 * - when an adapter appears under several (namespace, release) groups on one side, each later group
 *   (in name order) is a lighter shade of its hue, and its `none` follows; an adapter with one group
 *   per side has its own hue in every panel.
 */

/** A curve series' identity: the columns a curve row is grouped by. */
export interface SeriesKey {
  adapter: string;
  side: string;
  namespace: string;
  release: string;
}

export interface SeriesStyle {
  /** CSS colour, `#rrggbb`. */
  color: string;
  /** Drawn dashed: the series is a `none` baseline. */
  dash: boolean;
}

/** The adapter whose rows are the unadapted baseline. */
export const BASELINE_ADAPTER = 'none';

/** Colour of a baseline with no single partner adapter. */
export const NEUTRAL_COLOR = '#7f7f7f';

/** Category 10 without its grey (kept for orphan baselines). */
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#bcbd22', '#17becf'] as const;

/** Adapters (and peers) with a fixed slot of PALETTE, so their colour never depends on what else is shown. */
const FIXED: readonly string[] = ['fm-adagrad', 'emerg', 'coldnas', 'fixed-adaptive', 'vw', 'counts'];

/** The hue of every adapter name (the baseline excluded). */
export function adapterColors(adapters: Iterable<string>): Map<string, string> {
  const out = new Map<string, string>();
  const others = [...new Set(adapters)].filter((a) => a !== BASELINE_ADAPTER && !FIXED.includes(a)).sort();
  FIXED.forEach((a, i) => out.set(a, PALETTE[i % PALETTE.length] ?? NEUTRAL_COLOR));
  others.forEach((a, i) => out.set(a, PALETTE[(FIXED.length + i) % PALETTE.length] ?? NEUTRAL_COLOR));
  return out;
}

/** `color` mixed with white: step 0 is the colour itself, each step 30 % lighter, at most 75 %. */
export function lighten(color: string, step: number): string {
  const t = Math.min(0.75, 0.3 * step);
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(color);
  if (m === null || t <= 0) return color;
  const mix = (hex: string | undefined): string =>
    Math.round(parseInt(hex ?? '0', 16) * (1 - t) + 255 * t)
      .toString(16)
      .padStart(2, '0');
  return `#${mix(m[1])}${mix(m[2])}${mix(m[3])}`;
}

const groupOf = (k: SeriesKey): string => `${k.namespace}\u0000${k.release}`;

/** The style of each key, in the keys' order (see the file comment for the rules). */
export function curveStyles(keys: readonly SeriesKey[]): SeriesStyle[] {
  const hues = adapterColors(keys.map((k) => k.adapter));
  // Shade index of each (adapter, side, group): the adapter's groups on that side in sorted order.
  const groupsOf = new Map<string, string[]>();
  const slot = (adapter: string, side: string): string => `${adapter}\u0000${side}`;
  for (const k of keys) {
    if (k.adapter === BASELINE_ADAPTER) continue;
    const list = groupsOf.get(slot(k.adapter, k.side)) ?? [];
    if (!list.includes(groupOf(k))) list.push(groupOf(k));
    groupsOf.set(slot(k.adapter, k.side), list);
  }
  for (const list of groupsOf.values()) list.sort();
  const colorOf = (adapter: string, side: string, group: string): string => lighten(hues.get(adapter) ?? NEUTRAL_COLOR, Math.max(0, groupsOf.get(slot(adapter, side))?.indexOf(group) ?? 0));
  return keys.map((k) => {
    if (k.adapter !== BASELINE_ADAPTER) return { color: colorOf(k.adapter, k.side, groupOf(k)), dash: false };
    const partners = new Set(keys.filter((o) => o.adapter !== BASELINE_ADAPTER && o.side === k.side && groupOf(o) === groupOf(k)).map((o) => o.adapter));
    const [partner] = partners;
    return { color: partners.size === 1 && partner !== undefined ? colorOf(partner, k.side, groupOf(k)) : NEUTRAL_COLOR, dash: true };
  });
}
