/**
 * Adapters built from shared-parameter releases, for workers that follow the current release
 * (model-store/release-sync.ts) instead of a fixed model file.
 *
 * Entity states across a release. A release declares `entityStatePolicy`:
 * - `keep`: states written under the previous release stay valid; the worker keeps its state keys.
 * - `reinit`: the release changed what states mean; entities must start afresh.
 * Re-initialisation is done by a STATE EPOCH: the version of the nearest release, walking the
 * `parent` lineage from the release itself, that declared `reinit` (none: the base epoch, the
 * plain keys every worker used before releases existed). States live under the adapter key segment
 * `${adapter}.r${epoch}` (see `epochAdapterSegment`), so a reinit release reads no old state and starts every
 * entity with `initialState`, while:
 * - the analytics namespace of prediction rows is untouched (changing the worker's namespace would
 *   also relabel every row and split warm-up curves in two: rows must keep the worker's namespace);
 * - the keys stay inside the worker's namespace, so promoteNamespace/dropNamespace cover them;
 * - the epoch is a function of the release alone, so a restarted worker, another member of the
 *   group, or a rollback finds the same keys: rolling back from a reinit release to its parent goes
 *   back to the parent's states, as the parent left them (the predictions of the rolled-back release
 *   are restored exactly; events seen meanwhile were applied to the newer epoch only).
 * The old epoch's keys are not deleted here (their TTL, if any, or an operator removes them).
 * Dedup stays exact within an epoch (lastOffset is per key); across a reinit switch, a redelivery
 * of a batch already applied under the old epoch is applied once to the new epoch's fresh states
 * (its rows are rewritten with the same event ids, which the prediction log de-duplicates).
 */
import { createHash } from 'node:crypto';
import { createAdapterFromRelease, type ReleaseAdapterOptions } from '../adapters/registry.js';
import type { Adapter } from '../adapters/types.js';
import { ConfigError, ThawError, errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { ADAPTER_RE } from '../model-store/keys.js';
import { ReleaseWatcher, type ReleaseWatcherOptions } from '../model-store/release-sync.js';
import type { LoadedRelease, ReleaseManifest, ReleaseStore } from '../model-store/releases.js';
import { initBackend } from '../models/backend.js';
import { architectureOf, type ReleaseKind } from '../models/onnx/bundle.js';
import type { Side } from '../schemas/types.js';

/** What a worker runs from one release: the adapter and the state epoch its states live under. */
export interface ReleasedAdapter {
  adapter: Adapter;
  /** Version of the release that last re-initialised states in this lineage; undefined = base epoch. */
  stateEpoch: string | undefined;
  /** State epoch of the cross-side partner's states (the partner model's lineage); undefined = base epoch. */
  crossEpoch: string | undefined;
}

/** Whose states of the other side a worker reads (consumers/cross-side.ts). */
export interface CrossSidePartner {
  /** The other side's adapter, e.g. `fm-adagrad`. */
  adapter: string;
  /** Its release model in the same release directory (for its state epoch), e.g. `fm`. */
  model: string;
}

/**
 * The default partner of `adapter` on a worker of `model`: every adapter but `none` reads the other
 * side's `fm-adagrad` (the two-sided FM runs on both sides); an fm-adagrad worker reads its own
 * model's, a meta-learned one reads model `fm`. `none` reads nothing.
 */
export function defaultPartner(adapter: string, model: string): CrossSidePartner | undefined {
  if (adapter === 'none') return undefined;
  return { adapter: 'fm-adagrad', model: adapter === 'fm-adagrad' ? model : 'fm' };
}

/** The state epoch of `model`'s current release (base epoch when it has none). */
export async function currentEpochOf(store: ReleaseStore, model: string, logger: Logger = silentLogger): Promise<string | undefined> {
  const version = await store.current(model);
  if (version === undefined) return undefined;
  const manifest = (await store.list(model)).find((m) => m.version === version);
  return manifest === undefined ? undefined : stateEpochOf(store, manifest, logger);
}

export interface AdapterReleaseWatcherOptions {
  store: ReleaseStore;
  /** Model name in the release store, e.g. `fm`. */
  model: string;
  /** Adapter name (adapters/registry.ts); it must run on the release's type (`ADAPTERS_BY_RELEASE`). */
  adapter: string;
  side: Side;
  /** Passed to `createAdapterFromRelease`, per adapter name. @default the adapter's defaults */
  adapterOptions?: ReleaseAdapterOptions;
  /** The cross-side partner, whose state epoch each release resolves. @default none */
  cross?: CrossSidePartner;
  /** Interval between polls of the release directory, in milliseconds. @default 60_000 */
  pollIntervalMs?: number;
  /** Kafka announcements (topic default 'thaw.releases'). @default none (poll only) */
  kafka?: ReleaseWatcherOptions<ReleasedAdapter>['kafka'];
  /** Redis release pointer channel. @default none (poll only) */
  redis?: ReleaseWatcherOptions<ReleasedAdapter>['redis'];
  onRelease?: ReleaseWatcherOptions<ReleasedAdapter>['onRelease'];
  onRefused?: ReleaseWatcherOptions<ReleasedAdapter>['onRefused'];
  /** Clock, unix ms. @default Date.now */
  now?: () => number;
  /** @default silentLogger */
  logger?: Logger;
}

/** The adapter key segment of states of `epoch` (base epoch: the adapter name itself). */
export function epochAdapterSegment(adapter: string, epoch: string | undefined): string {
  if (epoch === undefined) return adapter;
  const plain = `${adapter}.r${epoch}`;
  // Versions are free-form names (up to 128 chars); keys need ADAPTER_RE: fall back to a digest.
  return ADAPTER_RE.test(plain) ? plain : `${adapter}.h${createHash('sha256').update(epoch).digest('hex').slice(0, 16)}`;
}

/**
 * State epoch of `manifest`: its own version if it declares `reinit`, else its parent's epoch.
 * A parent missing from the store ends the walk at the base epoch (logged): such lineage can only
 * come from a deleted release, whose states, if any, are the base ones.
 */
export async function stateEpochOf(store: ReleaseStore, manifest: ReleaseManifest, logger: Logger = silentLogger): Promise<string | undefined> {
  const byVersion = new Map<string, ReleaseManifest>();
  for (const m of await store.list(manifest.model)) byVersion.set(m.version, m);
  const seen = new Set<string>();
  let m: ReleaseManifest | undefined = manifest;
  while (m !== undefined && !seen.has(m.version)) {
    seen.add(m.version);
    if (architectureOf({ manifest: m, files: {} }).entityStatePolicy === 'reinit') return m.version;
    if (m.parent === null) return undefined;
    const parent: ReleaseManifest | undefined = byVersion.get(m.parent);
    if (parent === undefined) logger.warn('release parent not found; using the base state epoch', { model: manifest.model, version: m.version, parent: m.parent });
    m = parent;
  }
  return undefined;
}

/** Builds the adapter of a verified release of any kind the registry runs. */
function buildAdapter(opts: AdapterReleaseWatcherOptions, rel: LoadedRelease): Adapter {
  return createAdapterFromRelease(opts.adapter, opts.side, rel, opts.adapterOptions);
}

/**
 * A ReleaseWatcher of adapters `opts.adapter` over the releases of `opts.model` (not started: call
 * `start()`, then hand it to the worker). The layout the worker's states are checked against is the
 * one of the current release's adapter: at start nothing else is known about the states stored.
 * Throws RELEASE_NOT_FOUND when the model has no current release, and the load/build error when
 * the current one cannot be used (a worker cannot start without shared parameters).
 */
export async function createAdapterReleaseWatcher(opts: AdapterReleaseWatcherOptions): Promise<ReleaseWatcher<ReleasedAdapter>> {
  if (opts.side !== 'user' && opts.side !== 'item') throw new ConfigError('side', `must be user or item, got ${String(opts.side)}`);
  const logger = opts.logger ?? silentLogger;
  const version = await opts.store.current(opts.model);
  if (version === undefined)
    throw new ThawError(
      'RELEASE_NOT_FOUND',
      `no current release of model ${opts.model} in ${opts.store.root}: make one with \`thaw train fm|emerg|coldnas|fixed-adaptive --release-dir ${opts.store.root}\` or \`thaw train --online\` (see thaw help)`,
    );
  let first: Adapter;
  let type: ReleaseKind;
  try {
    const rel = await opts.store.load(opts.model, version);
    type = architectureOf(rel).type;
    // The model family runs on TensorFlow.js: pick its backend once, before the first model call.
    if (type !== 'fm') await initBackend('auto', logger);
    first = buildAdapter(opts, rel);
  } catch (err) {
    if (err instanceof ThawError || err instanceof ConfigError) throw err;
    throw new ThawError('RELEASE_INCOMPATIBLE', `release ${opts.model}/${version} cannot be used: ${errorMessage(err)}`, { cause: err });
  }
  const stateLayout = { adapter: first.name, stateSize: first.stateSize };
  // Built only to learn the state layout: start() builds the adapter the worker runs.
  first.dispose?.();
  return new ReleaseWatcher<ReleasedAdapter>({
    store: opts.store,
    model: opts.model,
    // A worker keeps the release type it started with: an emerg worker refuses a coldnas release
    // (RELEASE_INCOMPATIBLE, logged, the release in use stays); adapter and state size are checked
    // on the adapter each release builds (layoutOf), under the state-epoch rules above.
    expect: { type, stateLayout },
    build: async (rel) => {
      const stateEpoch = await stateEpochOf(opts.store, rel.manifest, logger);
      // The partner on the same model follows this release's lineage; another model, its own current one.
      const cross = opts.cross;
      const crossEpoch = cross === undefined ? undefined : cross.model === opts.model ? stateEpoch : await currentEpochOf(opts.store, cross.model, logger);
      return { adapter: buildAdapter(opts, rel), stateEpoch, crossEpoch };
    },
    // A release replaced before the worker took it: its adapter never ran (the worker disposes the ones it replaces).
    discard: (v) => v.adapter.dispose?.(),
    layoutOf: (v) => ({ adapter: v.adapter.name, stateSize: v.adapter.stateSize }),
    logger,
    ...(opts.pollIntervalMs === undefined ? {} : { pollIntervalMs: opts.pollIntervalMs }),
    ...(opts.kafka === undefined ? {} : { kafka: opts.kafka }),
    ...(opts.redis === undefined ? {} : { redis: opts.redis }),
    ...(opts.onRelease === undefined ? {} : { onRelease: opts.onRelease }),
    ...(opts.onRefused === undefined ? {} : { onRefused: opts.onRefused }),
    ...(opts.now === undefined ? {} : { now: opts.now }),
  });
}
