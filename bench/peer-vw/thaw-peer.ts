/**
 * The Thaw side of the peer benchmark: per side, the shared FM is trained offline on the first part
 * of the stream (its hot entities), then every adapter runs the production BatchProcessor (predict,
 * then adapt) with an in-memory store over the stream in micro-batches.
 *
 * The processor also replays the training prefix (its rows are discarded): VW learns online from
 * the prefix too, so both sides enter the evaluation window having seen the same events, and an
 * entity's state and prior count there reflect its whole history, not just the window. The
 * processor's priorCount is checked against the count from the start of the stream.
 *
 * The meta-learned adapters (EmerG on items; ColdNAS and the fixed/adaptive split on users) run on
 * releases trained by trainers/event-trainer.ts `trainFromEvents` (its defaults) on the SAME prefix
 * as the FM, each beside its own `none`: a FrozenAdapter over that release (its initial states,
 * never adapted), so `<adapter>` − `none-<kind>` is the online adaptation alone.
 */
import { createAdapter, createAdapterFromRelease, type ReleaseAdapterOptions } from '../../adapters/registry.js';
import type { Adapter } from '../../adapters/types.js';
import type { PredictionRow, PredictionSink } from '../../analytics/types.js';
import { BatchProcessor, type BatchItem } from '../../consumers/processor.js';
import { ThawError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { MemoryEntityStore } from '../../model-store/memory-store.js';
import type { FactorizationMachine } from '../../models/fm.js';
import type { LoadedRelease } from '../../model-store/releases.js';
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { trainFm } from '../../trainers/fm-trainer.js';
import { sideOfKind, type EventTrainerOptions } from '../../trainers/event-trainer.js';
import { META_KINDS, prepareMetaRelease, type MetaKind, type MetaReleaseInfo } from './meta-releases.js';

/** What an adapter of the benchmark may be built from: the shared FM and the meta-learned releases of the side. */
export interface PeerReleases {
  side: Side;
  /** Shared FM trained on the prefix with per-entity vectors of `side`. */
  fm: FactorizationMachine;
  /** Meta-learned releases trained on the same prefix (only those of `side` that an adapter asked for). */
  meta: Partial<Record<MetaKind, LoadedRelease>>;
  /** Options of the meta-learned adapters (e.g. a learning rate chosen on the prefix). @default the adapters' defaults */
  adapterOptions?: ReleaseAdapterOptions;
}

/** One adapter slot: the sides it runs on, the meta-learned release it needs (if any), how to build it. */
export interface PeerAdapter {
  sides: readonly Side[];
  needs?: MetaKind;
  build: (r: PeerReleases) => Adapter;
}

function metaRelease(r: PeerReleases, kind: MetaKind): LoadedRelease {
  const rel = r.meta[kind];
  if (rel === undefined) throw new ThawError('USAGE', `no ${kind} release was prepared for the ${r.side} side`);
  return rel;
}

const BOTH: readonly Side[] = ['user', 'item'];
const meta = (kind: MetaKind, name: string): PeerAdapter => ({
  sides: [sideOfKind(kind)],
  needs: kind,
  build: (r) => createAdapterFromRelease(name, r.side, metaRelease(r, kind), r.adapterOptions),
});

/**
 * Adapters the benchmark runs, by name (the method's column). Adding one is one line here: its
 * sides, the release it needs, how to build it. `none-<kind>` is the frozen baseline of that release.
 */
export const PEER_ADAPTERS: Readonly<Record<string, PeerAdapter>> = {
  none: { sides: BOTH, build: (r) => createAdapter('none', r.side, r.fm) },
  'fm-adagrad': { sides: BOTH, build: (r) => createAdapter('fm-adagrad', r.side, r.fm) },
  'none-emerg': meta('emerg', 'none'),
  emerg: meta('emerg', 'emerg'),
  'none-coldnas': meta('coldnas', 'none'),
  coldnas: meta('coldnas', 'coldnas'),
  'none-fixed-adaptive': meta('fixed-adaptive', 'none'),
  'fixed-adaptive': meta('fixed-adaptive', 'fixed-adaptive'),
};

/** Adapter names of PEER_ADAPTERS that run on `side`, in `names` order. */
export function adaptersOfSide(names: readonly string[], side: Side): string[] {
  return names.filter((n) => PEER_ADAPTERS[n]?.sides.includes(side) === true);
}

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
  /** Options of the meta-learned releases' training (tests make it tiny). @default trainFromEvents' defaults */
  metaTrain?: Omit<EventTrainerOptions, 'kind' | 'events' | 'logger'>;
  /** Where meta-learned releases are kept and reused when trained on the same prefix. @default none: always train */
  releaseDir?: string;
  /** Options of the meta-learned adapters. @default their defaults */
  adapterOptions?: ReleaseAdapterOptions;
  /** Progress of the meta-learned releases' training. @default silent */
  logger?: Logger;
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
export async function runThawSide(
  events: readonly LabelledEvent[],
  prior: Int32Array,
  opts: ThawSideOptions,
): Promise<{ hotEntities: number; runs: AdapterRun[]; releases: MetaReleaseInfo[] }> {
  const batchSize = opts.batchSize ?? 500;
  for (const name of opts.adapters) {
    if (!(name in PEER_ADAPTERS)) throw new ThawError('USAGE', `unknown adapter "${name}"; known: ${Object.keys(PEER_ADAPTERS).join(', ')}`);
  }
  const names = adaptersOfSide(opts.adapters, opts.side);
  const trained = await trainFm(events.slice(0, opts.trainN), { side: opts.side, seed: opts.seed ?? 1, release: `peer-fm-${opts.side}` });
  const releases: PeerReleases = { side: opts.side, fm: trained.model, meta: {}, ...(opts.adapterOptions === undefined ? {} : { adapterOptions: opts.adapterOptions }) };
  const infos: MetaReleaseInfo[] = [];
  for (const kind of META_KINDS) {
    if (!names.some((n) => PEER_ADAPTERS[n]!.needs === kind)) continue;
    const { release, info } = await prepareMetaRelease(kind, events.slice(0, opts.trainN), { ...(opts.metaTrain === undefined ? {} : { train: opts.metaTrain }), ...(opts.releaseDir === undefined ? {} : { dir: opts.releaseDir }), ...(opts.logger === undefined ? {} : { logger: opts.logger }) });
    releases.meta[kind] = release;
    infos.push(info);
  }
  const positionOf = new Map<string, number>();
  events.forEach((ev, j) => positionOf.set(ev.eventId, j));
  if (positionOf.size !== events.length) throw new ThawError('DATA_FORMAT', 'event ids are not unique');

  const runs: AdapterRun[] = [];
  for (const name of names) {
    const adapter = PEER_ADAPTERS[name]!.build(releases);
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
    adapter.dispose?.();
    runs.push({ adapter: name, release: adapter.release, scores: sink.scores, ms });
  }
  return { hotEntities: trained.hotEntities, runs, releases: infos };
}
