/**
 * What `thaw eval --protocol stream` runs: release families and their adapters, per side.
 *
 * A FAMILY is a release kind with its adapters: `fm` (the two-sided shared FM: `fm-adagrad` on both
 * sides), `emerg` (items), `coldnas` and `fixed-adaptive` (users). Each family also runs its own
 * `none` on each side it adapts (the same release, never adapted, no cross-side read), and its rows
 * go to a namespace of their own (the prediction log keeps one row per namespace, adapter, side and
 * event). An adapter reads the other side's states of its PARTNER: the same adapter where it runs
 * on both sides (`fm-adagrad`), else the other side's `fm-adagrad` (consumers/cross-side.ts).
 */
import type { Side } from '../../schemas/types.js';

export const FAMILIES = ['fm', 'emerg', 'coldnas', 'fixed-adaptive'] as const;
export type Family = (typeof FAMILIES)[number];

/** The adapter of each family (its `none` runs beside it). */
export const FAMILY_ADAPTER: Readonly<Record<Family, string>> = { fm: 'fm-adagrad', emerg: 'emerg', coldnas: 'coldnas', 'fixed-adaptive': 'fixed-adaptive' };

/** The sides each family adapts. */
export const FAMILY_SIDES: Readonly<Record<Family, readonly Side[]>> = { fm: ['user', 'item'], emerg: ['item'], coldnas: ['user'], 'fixed-adaptive': ['user'] };

/** Adapter names accepted by `--adapters`. */
export const STREAM_ADAPTERS = FAMILIES.map((f) => FAMILY_ADAPTER[f]);

/** The family of an adapter name of `--adapters`, or undefined. */
export function familyOf(adapter: string): Family | undefined {
  return FAMILIES.find((f) => FAMILY_ADAPTER[f] === adapter);
}

/** The namespace of a family's rows and states. */
export function namespaceOf(family: Family): string {
  return `eval-${family}`;
}

/** Namespace of the peers' rows. */
export const PEER_NAMESPACE = 'eval-peer';

/**
 * The partner whose states every adapter reads on the other side: the FM family's `fm-adagrad` (the
 * only adapter that runs on both sides; its views start [bias, variance], which every adapter reads).
 */
export const PARTNER = { family: 'fm', adapter: 'fm-adagrad' } as const satisfies { family: Family; adapter: string };
