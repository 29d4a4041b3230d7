/** A small random-init EmerG over a synthetic stream's item layout, shared by the adapter tests. */
import type { LoadedRelease } from '../../../model-store/releases.js';
import { Emerg } from '../../../models/emerg.js';
import { fieldLayoutOf, inferEventLayout, type EventLayout } from '../../../models/event-layout.js';
import { bundleCtr, type BundleOptions } from '../../../models/onnx/bundle.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { syntheticStream } from '../../../sources/synthetic.js';

export function streamEvents(n: number, seed = 5): LabelledEvent[] {
  return [...syntheticStream({ seed, events: n, users: 80, items: 120 }).events()];
}

/** The first event of each of `n` distinct items. */
export function distinctItems(events: readonly LabelledEvent[], n: number): LabelledEvent[] {
  const seen = new Set<string>();
  const out: LabelledEvent[] = [];
  for (const e of events) {
    if (seen.has(e.itemId)) continue;
    seen.add(e.itemId);
    out.push(e);
    if (out.length === n) break;
  }
  return out;
}

export function emergFixture(seed = 9, events: readonly LabelledEvent[] = streamEvents(600)): { model: Emerg; layout: EventLayout; events: readonly LabelledEvent[] } {
  const layout = inferEventLayout('item', events, { vocab: 2048, maxSlots: 3 });
  const model = new Emerg({ layout: fieldLayoutOf(layout), vocab: layout.vocab, dim: 4, layers: 2, genHidden: 8, seed });
  return { model, layout, events };
}

/** An in-memory loaded release of `bundle` (no checksums needed by the adapter builders). */
export function loadedRelease(b: { architecture: unknown; files: Record<string, Buffer> }, model = 'emerg', version = 'v1'): LoadedRelease {
  return { manifest: { model, version, parent: null, createdAtMs: 0, architecture: b.architecture, metrics: {}, files: {} }, files: b.files };
}

export function emergRelease(model: Emerg, layout: EventLayout | undefined, opts: BundleOptions = {}): LoadedRelease {
  return loadedRelease(bundleCtr(model, { ...opts, ...(layout === undefined ? {} : { eventLayout: layout }) }));
}
