/**
 * The Thaw side of the peer benchmark: per side, the shared FM is trained offline on the first part
 * of the stream (its hot entities), then every adapter runs the production BatchProcessor (predict,
 * then adapt) with an in-memory store over the stream in micro-batches.
 *
 * The processor also replays the training prefix (its rows are discarded): VW learns online from
 * the prefix too, so both sides enter the evaluation window having seen the same events, and an
 * entity's state and prior count there reflect its whole history, not just the window. The
 * processor's priorCount is checked against the count from the start of the stream.
 */
import { createAdapter } from '../../adapters/registry.js';
import type { Adapter } from '../../adapters/types.js';
import type { PredictionRow, PredictionSink } from '../../analytics/types.js';
import { BatchProcessor, type BatchItem } from '../../consumers/processor.js';
import { ThawError } from '../../lib/errors.js';
import { MemoryEntityStore } from '../../model-store/memory-store.js';
import type { FactorizationMachine } from '../../models/fm.js';
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { trainFm } from '../../trainers/fm-trainer.js';

/** What an adapter of the benchmark may be built from (grows when meta-learned releases arrive). */
export interface PeerReleases {
  side: Side;
  /** Shared FM trained on the prefix with per-entity vectors of `side`. */
  fm: FactorizationMachine;
}

/**
 * Adapters the benchmark runs, by name. Adding one is one line here: the name and how to build it
 * from the releases (meta-learned adapters will add their release to PeerReleases).
 */
export const PEER_ADAPTERS: Readonly<Record<string, (r: PeerReleases) => Adapter>> = {
  none: (r) => createAdapter('none', r.side, r.fm),
  'fm-adagrad': (r) => createAdapter('fm-adagrad', r.side, r.fm),
};

/** Options of `runThawSide`. */
export interface ThawSideOptions {
  side: Side;
  /** Adapter names (keys of PEER_ADAPTERS). */
  adapters: readonly string[];
  /** Events of the training prefix: the FM is trained on events [0, trainN). */
  trainN: number;
  /** Events per BatchProcessor call. @default 500 */
  batchSize?: number;
  /** Seed of the FM trainer. @default 1 */
  seed?: number;
}

/** A sink that keeps only what the benchmark needs: the score and prior count per stream position. */
class ArraySink implements PredictionSink {
  constructor(
    private readonly positionOf: ReadonlyMap<string, number>,
    readonly scores: Float64Array,
    readonly prior: Int32Array,
  ) {}
  write(rows: readonly PredictionRow[]): Promise<void> {
    for (const r of rows) {
      const j = this.positionOf.get(r.eventId);
      if (j === undefined) return Promise.reject(new ThawError('DATA_FORMAT', `prediction for unknown event ${r.eventId}`));
      this.scores[j] = r.score;
      this.prior[j] = r.priorCount;
    }
    return Promise.resolve();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Scores of one adapter for every stream position, and the release it ran on. */
export interface AdapterRun {
  adapter: string;
  release: string;
  scores: Float64Array;
  ms: number;
}

/** Runs every adapter of one side over `events`; `prior` is the side's count from the stream start. */
export async function runThawSide(events: readonly LabelledEvent[], prior: Int32Array, opts: ThawSideOptions): Promise<{ hotEntities: number; runs: AdapterRun[] }> {
  const batchSize = opts.batchSize ?? 500;
  for (const name of opts.adapters) {
    if (!(name in PEER_ADAPTERS)) throw new ThawError('USAGE', `unknown adapter "${name}"; known: ${Object.keys(PEER_ADAPTERS).join(', ')}`);
  }
  const trained = await trainFm(events.slice(0, opts.trainN), { side: opts.side, seed: opts.seed ?? 1, release: `peer-fm-${opts.side}` });
  const positionOf = new Map<string, number>();
  events.forEach((ev, j) => positionOf.set(ev.eventId, j));
  if (positionOf.size !== events.length) throw new ThawError('DATA_FORMAT', 'event ids are not unique');

  const runs: AdapterRun[] = [];
  for (const name of opts.adapters) {
    const adapter = PEER_ADAPTERS[name]!({ side: opts.side, fm: trained.model });
    const sink = new ArraySink(positionOf, new Float64Array(events.length).fill(NaN), new Int32Array(events.length).fill(-1));
    const processor = new BatchProcessor({ adapter, store: new MemoryEntityStore(), sink, scope: { namespace: 'peer-vw', side: opts.side, adapter: adapter.name } });
    const t0 = performance.now();
    // Batches never straddle the prefix boundary, so the evaluation window starts on a batch edge.
    for (const [from, to] of [[0, opts.trainN], [opts.trainN, events.length]] as const) {
      for (let i = from; i < to; i += batchSize) {
        const items: BatchItem[] = [];
        for (let j = i; j < Math.min(i + batchSize, to); j++) items.push({ offset: j, event: events[j]! });
        await processor.process(items);
      }
    }
    const ms = performance.now() - t0;
    for (let j = 0; j < events.length; j++) {
      if (sink.prior[j] !== prior[j]) {
        throw new ThawError('MODEL_ERROR', `${name}/${opts.side}: processor priorCount ${sink.prior[j]} != stream count ${prior[j]} at position ${j}`);
      }
    }
    runs.push({ adapter: name, release: adapter.release, scores: sink.scores, ms });
  }
  return { hotEntities: trained.hotEntities, runs };
}
