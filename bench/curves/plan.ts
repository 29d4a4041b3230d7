/**
 * What the curves bench runs, as pure data: the workers of each side (adapter × release), which of
 * them run together, the evaluation window (the history filter) and the options of `bench/curves/run.ts`.
 *
 *   item: none (FM), fm-adagrad (FM), none (EmerG release, frozen), emerg
 *   user: none (FM), fm-adagrad (FM), none (ColdNAS release) / coldnas, none (fixed-adaptive release) / fixed-adaptive
 *
 * The FM is ONE two-sided release (`fm`) that both sides' workers run. Its `fm-adagrad` workers read
 * the other side's fresh state (the cross-side read, consumers/cross-side.ts; `thaw run`'s
 * `--cross-adapter auto`): the two share a namespace and run together (`groupsOf`), as two
 * deployed workers do. `none` reads nothing. The meta-learned workers run without the read: in a
 * replay their partner (the other side's fm-adagrad, several times faster) would be ahead of them,
 * and a state newer than the event is refused, so the read would mostly not happen; the stream
 * evaluation (`thaw eval --protocol stream`, bench/peer-vw) measures them with it, in lockstep.
 *
 * `none` over a meta-learned release is the FrozenAdapter (adapters/frozen.ts): the release's initial
 * states, never adapted; the lift of the meta adapter over it is its online adaptation alone, and
 * the lift of `none` (FM) → `none` (meta release) is the shared model's.
 */
import { ConfigError } from '../../lib/errors.js';
import type { Side } from '../../schemas/types.js';

export const CURVE_ADAPTERS = ['none', 'fm-adagrad', 'emerg', 'coldnas', 'fixed-adaptive'] as const;
export type CurveAdapter = (typeof CURVE_ADAPTERS)[number];

/** Release kinds a run needs; `fm` is the two-sided shared FM both sides run. */
export type ReleaseKind = 'fm' | 'emerg' | 'coldnas' | 'fixed-adaptive';

/** The adapter whose other-side states a cross-reading worker reads (the fm-adagrad pair's partner). */
export const CROSS_ADAPTER = 'fm-adagrad';

/** One worker of a run: adapter `adapter` over the current release of `kind`, on `side`. */
export interface WorkerSpec {
  side: Side;
  adapter: 'none' | 'fm-adagrad' | 'emerg' | 'coldnas' | 'fixed-adaptive';
  kind: ReleaseKind;
  /** Short unique label, used in namespaces, group ids and logs, e.g. `item-none-emerg`. */
  label: string;
  /** True for a meta-learned release (adapter or its frozen baseline): may run on a prefix only. */
  meta: boolean;
  /** Reads the other side's `CROSS_ADAPTER` states in its namespace (the fm-adagrad workers). */
  cross: boolean;
}

const META_OF_SIDE: Readonly<Record<Side, readonly ('emerg' | 'coldnas' | 'fixed-adaptive')[]>> = {
  item: ['emerg'],
  user: ['coldnas', 'fixed-adaptive'],
};

export function parseAdapters(text: string): CurveAdapter[] {
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw new ConfigError('adapters', `at least one of ${CURVE_ADAPTERS.join(', ')}`);
  for (const n of names) {
    if (!(CURVE_ADAPTERS as readonly string[]).includes(n)) throw new ConfigError('adapters', `unknown adapter "${n}"; known: ${CURVE_ADAPTERS.join(', ')}`);
  }
  return [...new Set(names)] as CurveAdapter[];
}

/**
 * Workers of one side for the selected adapters. `none` adds the FM baseline and, for every
 * selected meta adapter of the side, the frozen baseline over that adapter's release.
 */
export function workerPlan(side: Side, adapters: readonly CurveAdapter[]): WorkerSpec[] {
  const out: WorkerSpec[] = [];
  const has = (a: CurveAdapter): boolean => adapters.includes(a);
  if (has('none')) out.push({ side, adapter: 'none', kind: 'fm', label: `${side}-none-fm`, meta: false, cross: false });
  if (has('fm-adagrad')) out.push({ side, adapter: 'fm-adagrad', kind: 'fm', label: `${side}-fm-adagrad`, meta: false, cross: true });
  for (const m of META_OF_SIDE[side]) {
    if (!has(m)) continue;
    if (has('none')) out.push({ side, adapter: 'none', kind: m, label: `${side}-none-${m}`, meta: true, cross: false });
    out.push({ side, adapter: m, kind: m, label: `${side}-${m}`, meta: true, cross: false });
  }
  return out;
}

/**
 * The workers of `plan` in the order they run, grouped: the cross-reading workers (both sides'
 * fm-adagrad) run together, every other worker alone. Groups keep plan order (by first member).
 */
export function groupsOf(plan: readonly WorkerSpec[]): WorkerSpec[][] {
  const cross = plan.filter((w) => w.cross);
  const groups: WorkerSpec[][] = [];
  for (const w of plan) {
    if (!w.cross) groups.push([w]);
    else if (w === cross[0]) groups.push(cross);
  }
  return groups;
}

/**
 * Only the workers labelled in `labels` (e.g. `item-none-emerg,item-emerg`), in plan order: one
 * process per group of workers, so the parts of a long run share the cores (merge.ts joins them).
 * Throws ConfigError('workers') for a label that is not in `plan`.
 */
export function selectWorkers(plan: readonly WorkerSpec[], labels: readonly string[] | undefined): WorkerSpec[] {
  if (labels === undefined) return [...plan];
  const known = new Set(plan.map((w) => w.label));
  for (const l of labels) {
    if (!known.has(l)) throw new ConfigError('workers', `unknown worker "${l}" for the selected adapters and sides; known: ${[...known].join(', ')}`);
  }
  return plan.filter((w) => labels.includes(w.label));
}

/** Both sides' workers, item first. */
export function fullPlan(adapters: readonly CurveAdapter[]): WorkerSpec[] {
  return [...workerPlan('item', adapters), ...workerPlan('user', adapters)];
}

/** Release kinds `plan` needs. */
export function kindsOf(plan: readonly WorkerSpec[]): ReleaseKind[] {
  return [...new Set(plan.map((w) => w.kind))];
}

/**
 * The evaluation window's lower bound: curves count only events strictly after the last event any
 * release was trained on. Releases record `historyEndMs` = the time of their history's LAST event,
 * so the bound is `max(historyEndMs) + 1` (`event_time_ms >= since`): the last history event and
 * anything tied with it are excluded, and no score comes from data a shared model trained on.
 */
export function evaluationSince(historyEndMs: readonly number[]): number {
  if (historyEndMs.length === 0 || historyEndMs.some((t) => !Number.isFinite(t))) {
    throw new ConfigError('historyEndMs', 'every release must record a finite metrics.historyEndMs (trained for the stream)');
  }
  return Math.max(...historyEndMs) + 1;
}

/**
 * Namespace of a worker's states and rows (NAMESPACE_RE: lower case, ≤ 63 chars): its own, but one
 * shared by the cross-reading workers (each reads the other's states in its own namespace, and
 * their rows differ by side).
 */
export function namespaceOf(runId: string, w: WorkerSpec): string {
  return `c${runId}-${w.cross ? CROSS_ADAPTER : w.label}`.toLowerCase().slice(0, 63);
}
