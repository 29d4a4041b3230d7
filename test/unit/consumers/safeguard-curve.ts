/** The warm-up curve of one adapter behind the BatchProcessor, for the safeguard tests. */
import type { Adapter } from '../../../adapters/types.js';
import { BUCKETS, bucketOf } from '../../../analytics/types.js';
import { BatchProcessor } from '../../../consumers/processor.js';
import { auc } from '../../../lib/metrics.js';
import { MemoryEntityStore } from '../../../model-store/memory-store.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { RecordingSink } from './fakes.js';

/**
 * AUC per warm-up bucket (the adapter's side) of the events after the first `history`, with each
 * bucket's size. The history (which trained the release: the shared model is in-sample there)
 * builds the entity states with the safeguard off; the safeguard (if on) starts with the scored
 * events, as on a worker deployed after the history. Micro-batches of 500 events.
 */
export async function bucketCurve(adapter: Adapter, events: readonly LabelledEvent[], history: number, safeguard: boolean): Promise<Map<string, { auc: number; n: number }>> {
  const sink = new RecordingSink();
  const store = new MemoryEntityStore();
  const scope = { namespace: 't', side: adapter.side, adapter: adapter.name };
  const replay = new BatchProcessor({ adapter, store, sink, scope, safeguard: false });
  const proc = new BatchProcessor({ adapter, store, sink, scope, ...(safeguard ? {} : { safeguard: false }) });
  for (let i = 0; i < events.length; i += 500) await (i < history ? replay : proc).process(events.slice(i, i + 500).map((event, j) => ({ offset: i + j, event })));
  const late = new Set(events.slice(history).map((e) => e.eventId));
  const out = new Map<string, { auc: number; n: number }>();
  for (const b of BUCKETS) {
    const rows = sink.rows.filter((r) => late.has(r.eventId) && bucketOf(r.priorCount) === b);
    out.set(b, {
      auc: auc(
        rows.map((r) => r.score),
        rows.map((r) => r.label),
      ),
      n: rows.length,
    });
  }
  return out;
}
