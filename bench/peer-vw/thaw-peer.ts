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
import { COLDNAS_HISTORY_WINDOW } from '../../adapters/coldnas.js';
import { EMERG_ADAPTER_DEFAULTS } from '../../adapters/emerg.js';
import { META_KINDS, prepareMetaRelease, type MetaKind, type MetaReleaseInfo } from './meta-releases.js';

/** What an adapter of the benchmark may be built from: the shared FM and the meta-learned releases of the side. */
export interface PeerReleases {
  side: Side;
  /** Shared FM trained on the prefix with per-entity vectors of `side`. */
  fm: FactorizationMachine;
  /** Meta-learned releases trained on the same prefix (only those of `side` that an adapter asked for). */
  meta: Partial<Record<MetaKind, LoadedRelease>>;
}

/**
 * The step-size-like option of an adapter the benchmark chooses on a selection run (select.ts),
 * as VW's learning rate is chosen on the prefix.
 */
export interface PeerTuning {
  /** Name of the option (tables and JSON). */
  option: string;
  /** Values tried; contains `default`. */
  grid: readonly number[];
  /** The adapter's default value of the option. */
  default: number;
  /**
   * Rows the selection scores: `early` = 1-5 prior events (all rows when too few), `all` = every
   * row of the selection window (for options that only act on long histories).
   */
  rows: 'early' | 'all';
  /** The adapter options that set the option to `v`. */
  options: (v: number) => ReleaseAdapterOptions;
}

/** One adapter slot: the sides it runs on, the meta-learned release it needs (if any), how to build it. */
export interface PeerAdapter {
  sides: readonly Side[];
  needs?: MetaKind;
  build: (r: PeerReleases, opts: ReleaseAdapterOptions) => Adapter;
  /** Its step-size-like option chosen on the selection run. @default none: only the default runs */
  tune?: PeerTuning;
}

/** One column of a run: adapter `adapter` (a key of PEER_ADAPTERS) with `options`, shown as `column`. */
export interface PeerVariant {
  column: string;
  adapter: string;
  /** @default ThawSideOptions.adapterOptions */
  options?: ReleaseAdapterOptions;
}

function metaRelease(r: PeerReleases, kind: MetaKind): LoadedRelease {
  const rel = r.meta[kind];
  if (rel === undefined) throw new ThawError('USAGE', `no ${kind} release was prepared for the ${r.side} side`);
  return rel;
}

const BOTH: readonly Side[] = ['user', 'item'];
const meta = (kind: MetaKind, name: string, tune?: PeerTuning): PeerAdapter => ({
  sides: [sideOfKind(kind)],
  needs: kind,
  build: (r, opts) => createAdapterFromRelease(name, r.side, metaRelease(r, kind), opts),
  ...(tune === undefined ? {} : { tune }),
});

/**
 * Grids of the selection run. fm-adagrad: learning rate of e (the bias rate kept at twice it, the
 * default ratio 0.1/0.2); emerg: its step size; fixed-adaptive: the multiplier of the meta-learned
 * Meta-SGD rates; coldnas: historyWindow, which only acts past `window` events, so it is scored on
 * every row of the selection window, not the early ones.
 */
export const PEER_TUNING = {
  'fm-adagrad': { option: 'learningRate', grid: [0.03, 0.1, 0.3, 1], default: 0.1, rows: 'early', options: (v) => ({ 'fm-adagrad': { learningRate: v } }) },
  emerg: { option: 'learningRate', grid: [0.125, 0.25, 0.5, 1, 2], default: EMERG_ADAPTER_DEFAULTS.learningRate, rows: 'early', options: (v) => ({ emerg: { learningRate: v } }) },
  coldnas: { option: 'historyWindow', grid: [0, 5, 10, 20, 40, 60, 120], default: COLDNAS_HISTORY_WINDOW, rows: 'all', options: (v) => ({ coldnas: { historyWindow: v } }) },
  'fixed-adaptive': { option: 'lrScale', grid: [0.1, 0.25, 0.5, 1, 2], default: 1, rows: 'early', options: (v) => ({ 'fixed-adaptive': { lrScale: v } }) },
} as const satisfies Record<string, PeerTuning>;

/**
 * Adapters the benchmark runs, by name (the method's column). Adding one is one line here: its
 * sides, the release it needs, how to build it. `none-<kind>` is the frozen baseline of that release.
 */
export const PEER_ADAPTERS: Readonly<Record<string, PeerAdapter>> = {
  none: { sides: BOTH, build: (r) => createAdapter('none', r.side, r.fm) },
  'fm-adagrad': { sides: BOTH, build: (r, o) => createAdapter('fm-adagrad', r.side, r.fm, o['fm-adagrad']), tune: PEER_TUNING['fm-adagrad'] },
  'none-emerg': meta('emerg', 'none'),
  emerg: meta('emerg', 'emerg', PEER_TUNING.emerg),
  'none-coldnas': meta('coldnas', 'none'),
  coldnas: meta('coldnas', 'coldnas', PEER_TUNING.coldnas),
  'none-fixed-adaptive': meta('fixed-adaptive', 'none'),
  'fixed-adaptive': meta('fixed-adaptive', 'fixed-adaptive', PEER_TUNING['fixed-adaptive']),
};

/** Adapter names of PEER_ADAPTERS that run on `side`, in `names` order. */
export function adaptersOfSide(names: readonly string[], side: Side): string[] {
  return names.filter((n) => PEER_ADAPTERS[n]?.sides.includes(side) === true);
}

/** Options of `runThawSide`. */
export interface ThawSideOptions {
  side: Side;
  /** Adapter names (keys of PEER_ADAPTERS; column = name, options = adapterOptions) or variants. */
  adapters: readonly (string | PeerVariant)[];
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
  /** Options of the adapters given by name. @default their defaults */
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
  /** The column (the adapter name, or the variant's column). */
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
  const all = opts.adapters.map((a): PeerVariant => (typeof a === 'string' ? { column: a, adapter: a } : a));
  for (const v of all) {
    if (!(v.adapter in PEER_ADAPTERS)) throw new ThawError('USAGE', `unknown adapter "${v.adapter}"; known: ${Object.keys(PEER_ADAPTERS).join(', ')}`);
  }
  if (new Set(all.map((v) => v.column)).size !== all.length) throw new ThawError('USAGE', 'two runs share a column name');
  const variants = all.filter((v) => PEER_ADAPTERS[v.adapter]!.sides.includes(opts.side));
  const trained = await trainFm(events.slice(0, opts.trainN), { seed: opts.seed ?? 1, release: `peer-fm-${opts.side}` });
  const releases: PeerReleases = { side: opts.side, fm: trained.model, meta: {} };
  const infos: MetaReleaseInfo[] = [];
  for (const kind of META_KINDS) {
    if (!variants.some((v) => PEER_ADAPTERS[v.adapter]!.needs === kind)) continue;
    const { release, info } = await prepareMetaRelease(kind, events.slice(0, opts.trainN), { ...(opts.metaTrain === undefined ? {} : { train: opts.metaTrain }), ...(opts.releaseDir === undefined ? {} : { dir: opts.releaseDir }), ...(opts.logger === undefined ? {} : { logger: opts.logger }) });
    releases.meta[kind] = release;
    infos.push(info);
  }
  const positionOf = new Map<string, number>();
  events.forEach((ev, j) => positionOf.set(ev.eventId, j));
  if (positionOf.size !== events.length) throw new ThawError('DATA_FORMAT', 'event ids are not unique');

  const runs: AdapterRun[] = [];
  for (const { column: name, adapter: kind, options } of variants) {
    const adapter = PEER_ADAPTERS[kind]!.build(releases, options ?? opts.adapterOptions ?? {});
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
  return { hotEntities: trained.hotEntities[opts.side], runs, releases: infos };
}
