/**
 * The releases the scoring API serves. Here the FM's (`thaw serve --adapter fm-adagrad`, the
 * default); the meta adapters' releases are followed in serving/adapter-release.ts.
 *
 * The FM release: the workers' shared FM, followed through the same release
 * pointer and the same watcher as the workers (model-store/release-sync.ts), with the key prefixes
 * of its state epoch (consumers/release-adapter.ts), so serving reads exactly the states the
 * `fm-adagrad` workers of that release write.
 *
 * Swaps are atomic: the pipeline takes a new release at the start of a fetch tick (serving/
 * pipeline.ts); every request of the tick is fetched AND scored under that one release, a request
 * never mixes two. A corrupt or incompatible release is refused by the watcher (checksums, type,
 * state layout) and the release in use keeps serving.
 */
import { epochAdapterSegment, stateEpochOf } from '../consumers/release-adapter.js';
import { safeguardSegment } from '../consumers/state-scopes.js';
import { ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { scopeKeyPrefix } from '../model-store/keys.js';
import { ReleaseWatcher, type ReleaseWatcherOptions } from '../model-store/release-sync.js';
import type { ReleaseStore } from '../model-store/releases.js';
import { fmStateSize } from '../models/fm-entity.js';
import type { FactorizationMachine } from '../models/fm.js';
import { architectureOf, fmFromRelease } from '../models/onnx/bundle.js';
import type { Side } from '../schemas/types.js';
import type { AdapterModel } from './adapter-model.js';
import { FmKernel } from './fm-kernel.js';

/** The adapter whose states serving reads (the two-sided FM's workers). */
export const SERVED_ADAPTER = 'fm-adagrad';

/** Where a release's states live in the store. */
export interface StateKeys {
  /** First key segment. @default 'thaw' */
  keyPrefix: string;
  /** The workers' namespace. @default 'live' */
  namespace: string;
  /** Whose safeguard states to read, or off. */
  safeguard: Side | 'off';
}

/** What every servable release has, whatever scores it. */
export interface ReleaseBase {
  /** The id prediction rows carry: `<model>/<version>`. */
  id: string;
  version: string;
  /** When it was published, unix ms (its staleness is now − this). */
  createdAtMs: number;
  /** Key prefixes (`prefix:ns:side:segment:`) of each side's states under this release's state epoch. */
  userPrefix: string;
  itemPrefix: string;
  /** Key prefix of the configured side's safeguard states (ids `p<partition>`); undefined when off. */
  safeguardPrefix: string | undefined;
}

/** One servable FM release: the fm-adagrad workers' states, scored by the typed-array kernel. */
export interface ServingRelease extends ReleaseBase {
  kernel: FmKernel;
  /** Absent: an FM release (see AdapterServingRelease). */
  adapter?: undefined;
}

/**
 * A release of a meta-learned adapter (emerg, coldnas, fixed-adaptive), scored through the
 * adapter's own code (serving/adapter-model.ts). `userPrefix`/`itemPrefix`: the adapter's side
 * holds its own states, the other side the cross-side partner's (the views its worker reads).
 */
export interface AdapterServingRelease extends ReleaseBase {
  adapter: AdapterModel;
  kernel?: undefined;
}

/** Any release the scoring pipeline serves. */
export type ServedRelease = ServingRelease | AdapterServingRelease;

/** Floats the state cache keeps per entity for `release` (serving/state-cache.ts). */
export function cacheWidthOf(release: ServedRelease): number {
  return release.adapter === undefined ? release.kernel.width : release.adapter.width;
}

/** Floats read from a stored state of `side` for `release` (at most its cache width). */
export function readWidthOf(release: ServedRelease, side: Side): number {
  return release.adapter === undefined ? release.kernel.width : release.adapter.readWidth(side);
}

/** Where the pipeline gets its release from (`R`: what kind of release it gives). */
export interface ReleaseSource<R extends ServedRelease = ServedRelease> {
  /** The release in use. */
  current(): R;
  /** A newer release once (the pipeline swaps to it), else undefined. Never waits. */
  take(): R | undefined;
  /** Looks for a newly promoted release now, not at the next poll (resolves once it is ready for `take()` or refused). */
  checkNow(): Promise<void>;
  /** Releases refused so far (corrupt or incompatible; the one in use kept serving). */
  refusedCount(): number;
  stop(): Promise<void>;
}

/** A servable release of `fm` whose states live under state epoch `epoch` (undefined: the base epoch). */
export function servingRelease(fm: FactorizationMachine, version: string, createdAtMs: number, epoch: string | undefined, keys: StateKeys): ServingRelease {
  const segment = epochAdapterSegment(SERVED_ADAPTER, epoch);
  const prefixOf = (side: Side, seg: string): string => scopeKeyPrefix(keys.keyPrefix, { namespace: keys.namespace, side, adapter: seg });
  return {
    id: fm.release,
    version,
    createdAtMs,
    kernel: new FmKernel(fm),
    userPrefix: prefixOf('user', segment),
    itemPrefix: prefixOf('item', segment),
    safeguardPrefix: keys.safeguard === 'off' ? undefined : prefixOf(keys.safeguard, safeguardSegment(segment)),
  };
}

/** A release that never changes (the demo, tests, benches). */
export function fixedRelease<R extends ServedRelease>(release: R): ReleaseSource<R> {
  return { current: () => release, take: () => undefined, checkNow: () => Promise.resolve(), refusedCount: () => 0, stop: () => Promise.resolve() };
}

export interface ReleaseFollowerOptions extends StateKeys {
  store: ReleaseStore;
  /** Model name in the release store. @default 'fm' */
  model?: string;
  /** Interval between polls of the release directory (ms). @default 10_000 */
  pollIntervalMs?: number;
  /** Kafka release announcements (checked at once). @default none: poll only */
  kafka?: ReleaseWatcherOptions<ServingRelease>['kafka'];
  /** Called when a release is refused (after the watcher logged it). */
  onRefused?: (error: ThawError, version: string) => void;
  logger?: Logger;
}

/**
 * Follows the current release of an FM model like a worker does. Throws RELEASE_NOT_FOUND without a
 * current release and RELEASE_INCOMPATIBLE when it is not an FM: serving cannot start without one.
 */
export async function followReleases(opts: ReleaseFollowerOptions): Promise<ReleaseSource<ServingRelease>> {
  const model = opts.model ?? 'fm';
  const logger = opts.logger ?? silentLogger;
  const version = await opts.store.current(model);
  if (version === undefined)
    throw new ThawError(
      'RELEASE_NOT_FOUND',
      `no current release of model ${model} in ${opts.store.root}: make one with \`thaw train fm|emerg|coldnas|fixed-adaptive --release-dir ${opts.store.root}\` or \`thaw train --online\` (see thaw help)`,
    );
  const first = await opts.store.load(model, version);
  const arch = architectureOf(first);
  if (arch.type !== 'fm')
    throw new ThawError(
      'RELEASE_INCOMPATIBLE',
      `release ${model}/${version} is a ${arch.type} model; adapter fm-adagrad runs on fm releases (serve a ${arch.type} release with the adapter that runs on it: --adapter emerg|coldnas|fixed-adaptive, see thaw help serve)`,
    );
  const build = async (rel: typeof first): Promise<ServingRelease> => {
    const fm = fmFromRelease(rel);
    const epoch = await stateEpochOf(opts.store, rel.manifest, logger);
    return servingRelease(fm, rel.manifest.version, rel.manifest.createdAtMs, epoch, opts);
  };
  let refused = 0;
  const watcher = new ReleaseWatcher<ServingRelease>({
    store: opts.store,
    model,
    expect: { type: 'fm', stateLayout: { adapter: SERVED_ADAPTER, stateSize: fmStateSize(arch.k) } },
    build,
    layoutOf: (r) => ({ adapter: SERVED_ADAPTER, stateSize: fmStateSize(r.kernel.k) }),
    pollIntervalMs: opts.pollIntervalMs ?? 10_000,
    logger,
    ...(opts.kafka === undefined ? {} : { kafka: opts.kafka }),
    onRefused: (error, refusedVersion) => {
      refused++;
      opts.onRefused?.(error, refusedVersion);
    },
  });
  let active = (await watcher.start()).value;
  return {
    current: () => active,
    take: () => {
      const next = watcher.take();
      if (next === undefined) return undefined;
      active = next.value;
      return active;
    },
    checkNow: () => watcher.checkNow(),
    refusedCount: () => refused,
    stop: () => watcher.stop(),
  };
}
