/**
 * Which adapter's states `thaw serve` serves (`--adapter`), and the releases it follows for each:
 * - `fm-adagrad` (the default): the FM release and both sides' fm-adagrad states, scored by the
 *   typed-array kernel (serving/release.ts `followReleases`, serving/fm-kernel.ts);
 * - `emerg` (item side), `coldnas` and `fixed-adaptive` (user side): the release of that adapter,
 *   followed through the SAME watcher the workers run (consumers/release-adapter.ts
 *   `createAdapterReleaseWatcher`: the same checks, the same adapter built by
 *   adapters/registry.ts `createAdapterFromRelease`, the same state epoch and cross-side partner
 *   epoch), scored through the adapter's own code (serving/adapter-model.ts).
 * The adapter must run on the release's type, as for `thaw run`: start-up fails with
 * RELEASE_INCOMPATIBLE otherwise (an `emerg` server on an fm release, `fm-adagrad` on a coldnas one).
 *
 * Keys. The adapter's side reads its own states under the release's state epoch
 * (`<prefix>:<ns>:<side>:<adapter>[.r<epoch>]:{id}`); the other side reads the cross-side partner's
 * states, whose views the worker adds to its logit (default: the other side's fm-adagrad states of
 * model `fm`, as `thaw run --cross-adapter auto`); the safeguard states are the adapter side's.
 */
import type { ReleaseAdapterOptions } from '../adapters/registry.js';
import { createAdapterReleaseWatcher, defaultPartner, epochAdapterSegment, type CrossSidePartner, type ReleasedAdapter } from '../consumers/release-adapter.js';
import { safeguardSegment } from '../consumers/state-scopes.js';
import { ConfigError } from '../lib/errors.js';
import { silentLogger } from '../lib/log.js';
import { scopeKeyPrefix } from '../model-store/keys.js';
import type { ActiveRelease } from '../model-store/release-sync.js';
import type { Side } from '../schemas/types.js';
import { AdapterModel } from './adapter-model.js';
import { followReleases, SERVED_ADAPTER, type AdapterServingRelease, type ReleaseFollowerOptions, type ReleaseSource, type StateKeys } from './release.js';

/** Adapters `thaw serve --adapter` serves. */
export const SERVED_ADAPTERS = ['fm-adagrad', 'emerg', 'coldnas', 'fixed-adaptive'] as const;
export type ServedAdapter = (typeof SERVED_ADAPTERS)[number];

/** The side each served meta adapter adapts (its release's event layout side). */
export const SIDE_OF_ADAPTER: Readonly<Record<Exclude<ServedAdapter, 'fm-adagrad'>, Side>> = { emerg: 'item', coldnas: 'user', 'fixed-adaptive': 'user' };

export function isServedAdapter(name: string): name is ServedAdapter {
  return (SERVED_ADAPTERS as readonly string[]).includes(name);
}

/**
 * The safeguard side a server of `adapter` mixes with: `auto` is the item side for fm-adagrad (either
 * worker logs a safeguarded score; the item worker's is the default) and the adapted side for a
 * meta adapter (only its worker logs scores). A meta adapter with the other side's safeguard is a
 * ConfigError: no worker logs that score.
 */
export function safeguardSideOf(adapter: ServedAdapter, safeguard: Side | 'off' | 'auto'): Side | 'off' {
  if (adapter === 'fm-adagrad') return safeguard === 'auto' ? 'item' : safeguard;
  const side = SIDE_OF_ADAPTER[adapter];
  if (safeguard === 'auto') return side;
  if (safeguard !== 'off' && safeguard !== side) {
    throw new ConfigError(
      'safeguard',
      `adapter ${adapter} adapts ${side}s: its scores are logged by the ${side} worker, whose safeguard is the ${side} side's; use ${side}, off or auto, not ${safeguard}`,
    );
  }
  return safeguard;
}

export interface ServedReleaseFollowerOptions extends ReleaseFollowerOptions {
  /** The adapter whose states are served. @default 'fm-adagrad' */
  adapter?: ServedAdapter;
  /** The adapters' options, as the workers run them (`adapterOptions` of `thaw run`). @default each adapter's defaults */
  adapterOptions?: ReleaseAdapterOptions;
  /**
   * A meta adapter's cross-side partner, as its workers' `--cross-adapter`/`--cross-model`:
   * undefined is the workers' default (`defaultPartner`: the other side's fm-adagrad of model
   * `fm`), null is off (the other side cold). Not for fm-adagrad, which reads both sides itself.
   */
  cross?: CrossSidePartner | null;
}

/**
 * The releases of `opts.adapter` (see the file comment). Throws RELEASE_NOT_FOUND without a current
 * release, RELEASE_INCOMPATIBLE when the adapter does not run on it, ConfigError for a bad option.
 */
export async function followServedReleases(opts: ServedReleaseFollowerOptions): Promise<ReleaseSource> {
  const adapter = opts.adapter ?? SERVED_ADAPTER;
  if (!isServedAdapter(adapter)) throw new ConfigError('adapter', `must be one of ${SERVED_ADAPTERS.join(', ')}, got ${String(adapter)}`);
  if (adapter === 'fm-adagrad') {
    if (opts.cross !== undefined) throw new ConfigError('crossAdapter', "fm-adagrad is served with both sides' fm-adagrad states of its own release: no other cross-side partner");
    return followReleases(opts);
  }
  return followAdapterReleases({ ...opts, adapter });
}

/** The releases of a meta adapter, built by the workers' own release watcher. */
async function followAdapterReleases(opts: ServedReleaseFollowerOptions & { adapter: Exclude<ServedAdapter, 'fm-adagrad'> }): Promise<ReleaseSource> {
  const side = SIDE_OF_ADAPTER[opts.adapter];
  const safeguard = safeguardSideOf(opts.adapter, opts.safeguard);
  const model = opts.model ?? 'fm';
  const cross = opts.cross === undefined ? defaultPartner(opts.adapter, model) : (opts.cross ?? undefined);
  const keys: StateKeys & { side: Side; cross: CrossSidePartner | undefined } = { keyPrefix: opts.keyPrefix, namespace: opts.namespace, safeguard, side, cross };
  let refused = 0;
  const watcher = await createAdapterReleaseWatcher({
    store: opts.store,
    model,
    adapter: opts.adapter,
    side,
    ...(opts.adapterOptions === undefined ? {} : { adapterOptions: opts.adapterOptions }),
    ...(cross === undefined ? {} : { cross }),
    pollIntervalMs: opts.pollIntervalMs ?? 10_000,
    ...(opts.kafka === undefined ? {} : { kafka: opts.kafka }),
    onRefused: (error, version) => {
      refused++;
      opts.onRefused?.(error, version);
    },
    logger: opts.logger ?? silentLogger,
  });
  let active = adapterServingRelease(await watcher.start(), keys);
  // A replaced release may still score requests bound to it (at most their deadline): its
  // tensors are released once no request can use it any more.
  const retired = new Set<NodeJS.Timeout>();
  const retire = (old: AdapterServingRelease): void => {
    const timer = setTimeout(() => {
      retired.delete(timer);
      old.adapter.dispose();
    }, RETIRE_AFTER_MS);
    timer.unref();
    retired.add(timer);
  };
  return {
    current: () => active,
    take: () => {
      const next = watcher.take();
      if (next === undefined) return undefined;
      retire(active);
      active = adapterServingRelease(next, keys);
      return active;
    },
    checkNow: () => watcher.checkNow(),
    refusedCount: () => refused,
    stop: async () => {
      await watcher.stop();
      for (const t of retired) clearTimeout(t);
      retired.clear();
      active.adapter.dispose();
    },
  };
}

/** How long a replaced release's adapter is kept before its tensors are released (ms): beyond any request's deadline. */
const RETIRE_AFTER_MS = 60_000;

/** The servable form of a release the workers' watcher built. */
function adapterServingRelease(r: ActiveRelease<ReleasedAdapter>, keys: StateKeys & { side: Side; cross: CrossSidePartner | undefined }): AdapterServingRelease {
  const { adapter, stateEpoch, crossEpoch } = r.value;
  const other: Side = keys.side === 'user' ? 'item' : 'user';
  const prefixOf = (side: Side, segment: string): string => scopeKeyPrefix(keys.keyPrefix, { namespace: keys.namespace, side, adapter: segment });
  const own = epochAdapterSegment(adapter.name, stateEpoch);
  // Without a partner the other side is never used (cold); its keys still name the default partner's.
  const partner = epochAdapterSegment(keys.cross?.adapter ?? SERVED_ADAPTER, keys.cross === undefined ? undefined : crossEpoch);
  const ownPrefix = prefixOf(keys.side, own);
  const otherPrefix = prefixOf(other, partner);
  return {
    id: adapter.release,
    version: r.version,
    createdAtMs: r.createdAtMs,
    adapter: new AdapterModel(adapter, keys.cross !== undefined),
    userPrefix: keys.side === 'user' ? ownPrefix : otherPrefix,
    itemPrefix: keys.side === 'item' ? ownPrefix : otherPrefix,
    safeguardPrefix: keys.safeguard === 'off' ? undefined : prefixOf(keys.side, safeguardSegment(own)),
  };
}
