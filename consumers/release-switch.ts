/**
 * A worker's shared-model release in use, and the switch to the next one (consumers/worker.ts): one
 * BatchProcessor per release, taken only at the start of a micro-batch so that a batch never mixes
 * releases, and each replaced adapter disposed once the micro-batches still running on it (other
 * partitions) are done.
 */
import type { Adapter } from '../adapters/types.js';
import type { PredictionSink } from '../analytics/types.js';
import type { Logger } from '../lib/log.js';
import type { EntityStore, StateScope } from '../model-store/types.js';
import { BatchProcessor } from './processor.js';
import { epochAdapterSegment } from './release-adapter.js';
import type { SafeguardOptions } from './safeguard.js';
import type { AdapterReleaseSource } from './worker-types.js';

export interface ReleaseSwitchOptions {
  /** The watcher whose releases are taken; undefined: the initial adapter for ever. */
  releases: AdapterReleaseSource | undefined;
  /** The worker's scope: rows' namespace and adapter name (states move with the release's epoch). */
  scope: StateScope;
  store: EntityStore;
  sink: PredictionSink;
  /** The other side's adapter read by the cross-side read, if any. */
  crossAdapter: string | undefined;
  safeguard: SafeguardOptions | false | undefined;
  logger: Logger;
  /** The release at start. */
  initial: { adapter: Adapter; stateEpoch?: string | undefined; crossEpoch?: string | undefined; version?: string | undefined; createdAtMs?: number | undefined };
  /** Told of every release taken (the metrics' release gauge). */
  onTaken: (release: string, createdAtMs: number | undefined) => void;
}

export class ReleaseSwitch {
  private current: BatchProcessor;
  /** Version and publication time (unix ms) of the release in use, if known. */
  version: string | undefined;
  createdAtMs: number | undefined;
  /** Releases taken since start. */
  switches = 0;
  /** Micro-batches running on each adapter. */
  private readonly inUse = new Map<Adapter, number>();
  /** Replaced adapters still in use: disposed when their last micro-batch is done. */
  private readonly retired = new Set<Adapter>();

  constructor(private readonly opts: ReleaseSwitchOptions) {
    const { initial } = opts;
    this.current = this.processorFor(initial.adapter, initial.stateEpoch, initial.crossEpoch);
    this.version = initial.version;
    this.createdAtMs = initial.createdAtMs;
  }

  /** The processor of the release in use. */
  get processor(): BatchProcessor {
    return this.current;
  }

  /**
   * The processor a micro-batch runs on: the release the watcher has ready, if any, else the one in
   * use. Held until `done(processor.adapter)`.
   */
  acquire(): BatchProcessor {
    this.take();
    const p = this.current;
    this.inUse.set(p.adapter, (this.inUse.get(p.adapter) ?? 0) + 1);
    return p;
  }

  /** One micro-batch less on `adapter`; disposes it if it was replaced and this was the last one. */
  done(adapter: Adapter): void {
    const n = (this.inUse.get(adapter) ?? 1) - 1;
    if (n > 0) {
      this.inUse.set(adapter, n);
      return;
    }
    this.inUse.delete(adapter);
    if (this.retired.delete(adapter)) adapter.dispose?.();
  }

  /**
   * Switches to a release the watcher has ready. Building the processor is synchronous and cheap (the
   * adapter was built by the watcher), so consumption does not pause.
   */
  private take(): void {
    const next = this.opts.releases?.take();
    if (next === undefined) return;
    const old = this.current.adapter;
    const from = old.release;
    this.current = this.processorFor(next.value.adapter, next.value.stateEpoch, next.value.crossEpoch);
    // Its kept tensors go once the batches still running on it (other partitions) are done.
    if (this.inUse.has(old)) this.retired.add(old);
    else old.dispose?.();
    this.version = next.version;
    this.createdAtMs = next.createdAtMs;
    this.switches++;
    this.opts.onTaken(next.value.adapter.release, next.createdAtMs);
    this.opts.logger.info('release taken', {
      from,
      to: next.value.adapter.release,
      version: next.version,
      entityStates: next.reinitStates ? 'reinit' : 'keep',
      stateEpoch: next.value.stateEpoch ?? 'base',
    });
  }

  /**
   * A processor for `adapter` whose states live in `epoch`. The scope (hence the rows' namespace and
   * adapter name) is the worker's own; only the store's keys move with the epoch (release-adapter.ts).
   */
  private processorFor(adapter: Adapter, epoch: string | undefined, crossEpoch: string | undefined): BatchProcessor {
    const { scope, crossAdapter, safeguard } = this.opts;
    const stateScope = { ...scope, adapter: epochAdapterSegment(scope.adapter, epoch) };
    const other = scope.side === 'user' ? 'item' : 'user';
    const cross = crossAdapter === undefined ? undefined : ({ scope: { namespace: scope.namespace, side: other, adapter: epochAdapterSegment(crossAdapter, crossEpoch) } } as const);
    return new BatchProcessor({
      adapter,
      store: this.opts.store,
      sink: this.opts.sink,
      scope,
      stateScope,
      ...(cross === undefined ? {} : { cross }),
      ...(safeguard === undefined ? {} : { safeguard }),
      logger: this.opts.logger,
    });
  }
}
