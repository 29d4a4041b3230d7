/**
 * The releases the release-switch bench switches between: the shared FM at the library's default
 * size (2^18 buckets, k 8: about 9 MB of weights, three files of that size with the ONNX graph and
 * the legacy FM file) and an EmerG of the library's default size over the item-side event layout of
 * the spine bench's stream. Weights are seeded random: what a switch costs depends on the sizes,
 * not on how well a model is trained. The worker and the publisher (a child process, as the online
 * trainer is) build them the same way.
 */
import type { Bundle } from '../../models/onnx/bundle.js';
import { bundleCtr, bundleFm } from '../../models/onnx/bundle.js';
import { initBackend } from '../../models/backend.js';
import { Emerg } from '../../models/emerg.js';
import { fieldLayoutOf, inferEventLayout } from '../../models/event-layout.js';
import { FactorizationMachine } from '../../models/fm.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { benchSource } from '../spine/fixtures.js';

/** Release kinds the bench switches, with the adapter a worker runs on each. */
export const SWITCH_KINDS = ['fm', 'emerg'] as const;
export type SwitchKind = (typeof SWITCH_KINDS)[number];

export const ADAPTER_OF: Readonly<Record<SwitchKind, string>> = { fm: 'fm-adagrad', emerg: 'emerg' };

/** Events the EmerG event layout is inferred from (the spine bench's stream, as its adapters). */
const LAYOUT_EVENTS = 20_000;

/**
 * Release files of `kind`, seeded by `seed` (a new seed gives other weights of the same shapes).
 * EmerG needs the TensorFlow.js backend: `initBackend` is called here.
 */
export async function switchBundle(kind: SwitchKind, seed: number): Promise<Bundle> {
  if (kind === 'fm') return bundleFm(FactorizationMachine.create({ seed: seed + 1, release: `bench-fm-${seed}` }), { entityStatePolicy: 'keep' });
  await initBackend('auto');
  const layout = inferEventLayout('item', [...syntheticStream(benchSource(LAYOUT_EVENTS)).events()]);
  const model = new Emerg({ layout: fieldLayoutOf(layout), vocab: layout.vocab, seed: seed + 1 });
  return bundleCtr(model, { eventLayout: layout, entityStatePolicy: 'keep' });
}

/** Total bytes of a bundle's files. */
export function bundleBytes(b: Bundle): number {
  return Object.values(b.files).reduce((s, f) => s + f.length, 0);
}
