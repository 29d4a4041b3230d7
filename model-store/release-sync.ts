/**
 * Keeps a running worker on the current release of one model without pausing consumption:
 *
 * - polls `store.current(model)` every `pollIntervalMs`, and checks at once when an announcement
 *   arrives (Kafka topic `thaw.releases`, Redis channel `${prefix}:release:${model}`, see
 *   release-announce.ts): announcements are hints, CURRENT in the release directory is the truth;
 * - loads a new version off the hot path, verifying every checksum (ReleaseStore.load) and its
 *   compatibility with the running state layout (the manifest's `architecture.stateLayout` and
 *   `entityStatePolicy`), then builds the caller's object from it (an adapter, a model);
 * - a corrupt or incompatible release is refused (RELEASE_CORRUPT / RELEASE_INCOMPATIBLE, logged
 *   once per version, `onRefused`) and the release in use stays;
 * - the worker swaps only where it is safe, between micro-batches: `take()` returns the ready
 *   release once, else undefined. Nothing waits on I/O in `take()`.
 */
import { randomUUID } from 'node:crypto';
import { ConfigError, ThawError, errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { architectureOf, type ReleaseArchitecture, type ReleaseKind, type StateLayout } from '../models/onnx/bundle.js';
import { ensureTopics } from '../streams/admin.js';
import { BatchConsumer } from '../streams/batch-consumer.js';
import type { KafkaConnection } from '../streams/kafka.js';
import { decodeRelease } from '../streams/serde.js';
import { TOPICS } from '../streams/topics.js';
import { releasePointerKey } from './release-announce.js';
import type { RedisClient } from './redis-cluster.js';
import type { LoadedRelease, ReleaseManifest, ReleaseStore } from './releases.js';

/** A verified, built release. */
export interface ActiveRelease<T> {
  model: string;
  version: string;
  /** When the trainer published it, unix ms. */
  createdAtMs: number;
  /** When this process loaded and verified it, unix ms. */
  loadedAtMs: number;
  manifest: ReleaseManifest;
  architecture: ReleaseArchitecture;
  /** What `build` made of it (an adapter, a model). */
  value: T;
  /**
   * True when the release declares `entityStatePolicy: 'reinit'`: entity states written under the
   * previous release must not be used with it (start entities afresh, e.g. under a new state namespace).
   */
  reinitStates: boolean;
}

export interface ReleaseWatcherOptions<T> {
  store: ReleaseStore;
  /** Model name in the store. */
  model: string;
  /** What the running worker needs: model type (optional) and the entity state layout it holds now. */
  expect: { type?: ReleaseKind; stateLayout: StateLayout };
  /** Builds the object the worker runs from a verified release; a throw refuses the release. */
  build: (release: LoadedRelease, architecture: ReleaseArchitecture) => T | Promise<T>;
  /**
   * The entity state layout of a built value (for an Adapter: `{ adapter: a.name, stateSize: a.stateSize }`).
   * When given, compatibility is checked on what the worker will actually run (so an `fm` release
   * declared for `fm-adagrad` can also serve a `none` worker); otherwise on the manifest's declared
   * `stateLayout`. @default none
   */
  layoutOf?: (value: T) => StateLayout;
  /** Interval between polls of the release directory, in milliseconds. @default 60_000 */
  pollIntervalMs?: number;
  /** Subscribe to Kafka announcements (own consumer group per watcher, from the latest offset). */
  kafka?: { connection: KafkaConnection; /** @default 'thaw.releases' */ topic?: string };
  /** Subscribe to the Redis release pointer's channel (on a duplicate connection of `client`). */
  redis?: { client: RedisClient; /** @default 'thaw' */ prefix?: string };
  logger?: Logger;
  /** Called when a new release is verified and ready for `take()`. */
  onRelease?: (release: ActiveRelease<T>) => void;
  /**
   * Releases a built value that will never run: a ready release replaced by a newer one before
   * `take()`, or one still pending at `stop()` (an adapter's kept tensors). Values handed out by
   * `take()`/`start()` are the caller's to release. @default none
   */
  discard?: (value: T) => void;
  /** Called when a release is refused (once per version). */
  onRefused?: (error: ThawError, version: string) => void;
  /** Clock, unix ms. @default Date.now */
  now?: () => number;
}

/** Release in use, for metrics and logs. */
export interface ReleaseStatus {
  version: string;
  createdAtMs: number;
  loadedAtMs: number;
  /** now − createdAtMs, in milliseconds: how stale the shared parameters are. */
  ageMs: number;
}

export class ReleaseWatcher<T> {
  private readonly opts: ReleaseWatcherOptions<T>;
  private readonly pollMs: number;
  private readonly log: Logger;
  private readonly now: () => number;
  private layout: StateLayout;
  private active: ActiveRelease<T> | undefined;
  private pending: ActiveRelease<T> | undefined;
  private readonly refused = new Map<string, ThawError>();
  private checking: Promise<void> | undefined;
  private recheck = false;
  private timer: NodeJS.Timeout | undefined;
  private consumer: BatchConsumer | undefined;
  private subscriber: RedisClient | undefined;
  private stopped = false;

  constructor(opts: ReleaseWatcherOptions<T>) {
    const poll = opts.pollIntervalMs ?? 60_000;
    if (!Number.isFinite(poll) || poll < 10) throw new ConfigError('release.pollIntervalMs', `must be a number of milliseconds >= 10, got ${String(opts.pollIntervalMs)}`);
    if (typeof opts.model !== 'string' || opts.model === '') throw new ConfigError('release.model', 'must be a model name');
    const sl = opts.expect.stateLayout;
    if (typeof sl.adapter !== 'string' || !Number.isInteger(sl.stateSize) || sl.stateSize < 0)
      throw new ConfigError('release.expect.stateLayout', 'needs an adapter name and an integer stateSize >= 0');
    this.opts = opts;
    this.pollMs = poll;
    this.log = opts.logger ?? silentLogger;
    this.now = opts.now ?? Date.now;
    this.layout = { ...sl };
  }

  /**
   * Loads the current release (throws if there is none or it is refused: a worker cannot start
   * without shared parameters), then starts polling and the subscriptions. Returns the release in use.
   */
  async start(): Promise<ActiveRelease<T>> {
    const version = await this.opts.store.current(this.opts.model);
    if (version === undefined)
      throw new ThawError(
        'RELEASE_NOT_FOUND',
        `no current release of model ${this.opts.model} in ${this.opts.store.root}: make one with \`thaw train fm|emerg|coldnas|fixed-adaptive --release-dir ${this.opts.store.root}\` or \`thaw train --online\` (see thaw help)`,
      );
    this.active = await this.prepare(version);
    this.layout = this.layoutOfRelease(this.active);
    this.schedulePoll();
    if (this.opts.redis !== undefined) await this.subscribeRedis(this.opts.redis.client, this.opts.redis.prefix ?? 'thaw');
    if (this.opts.kafka !== undefined) await this.subscribeKafka(this.opts.kafka.connection, this.opts.kafka.topic ?? TOPICS.releases);
    this.log.info('release in use', { model: this.opts.model, version, createdAtMs: this.active.createdAtMs });
    return this.active;
  }

  /** The release that became ready since the last call, once; undefined otherwise. Call between micro-batches. */
  take(): ActiveRelease<T> | undefined {
    const next = this.pending;
    if (next === undefined) return undefined;
    this.pending = undefined;
    this.active = next;
    this.layout = this.layoutOfRelease(next);
    this.log.info('release switched', { model: next.model, version: next.version, reinitStates: next.reinitStates });
    return next;
  }

  /** The release in use (the last one started with or taken) and its age. */
  current(): ReleaseStatus | undefined {
    const a = this.active;
    if (a === undefined) return undefined;
    return { version: a.version, createdAtMs: a.createdAtMs, loadedAtMs: a.loadedAtMs, ageMs: this.now() - a.createdAtMs };
  }

  /** The in-use release with its built value. */
  activeRelease(): ActiveRelease<T> | undefined {
    return this.active;
  }

  /** Why `version` was refused, if it was. */
  refusal(version: string): ThawError | undefined {
    return this.refused.get(version);
  }

  /** Checks the release directory now (coalesced: concurrent calls share one check, plus one follow-up). */
  async checkNow(): Promise<void> {
    if (this.checking !== undefined) {
      this.recheck = true;
      return this.checking;
    }
    this.checking = (async () => {
      try {
        do {
          this.recheck = false;
          await this.checkOnce();
        } while (this.recheck && !this.stopped);
      } finally {
        this.checking = undefined;
      }
    })();
    return this.checking;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    const sub = this.subscriber;
    this.subscriber = undefined;
    if (sub !== undefined) sub.disconnect();
    const c = this.consumer;
    this.consumer = undefined;
    if (c !== undefined) await c.stop();
    await this.checking?.catch(() => undefined);
    const pending = this.pending;
    this.pending = undefined;
    if (pending !== undefined) this.opts.discard?.(pending.value);
  }

  private async checkOnce(): Promise<void> {
    let version: string | undefined;
    try {
      version = await this.opts.store.current(this.opts.model);
    } catch (err) {
      this.log.warn('cannot read the current release', { model: this.opts.model, error: errorMessage(err) });
      return;
    }
    const seen = this.pending?.version ?? this.active?.version;
    if (version === undefined || version === seen || this.refused.has(version)) return;
    try {
      const next = await this.prepare(version);
      if (this.stopped) {
        this.opts.discard?.(next.value);
        return;
      }
      if (this.pending !== undefined) this.opts.discard?.(this.pending.value);
      this.pending = next;
      this.log.info('release ready', { model: next.model, version, createdAtMs: next.createdAtMs });
      this.opts.onRelease?.(next);
    } catch (err) {
      const e =
        err instanceof ThawError && (err.code === 'RELEASE_CORRUPT' || err.code === 'RELEASE_INCOMPATIBLE' || err.code === 'RELEASE_NOT_FOUND')
          ? err
          : new ThawError('RELEASE_INCOMPATIBLE', `release ${this.opts.model}/${version} cannot be used: ${errorMessage(err)}`, { cause: err });
      this.refused.set(version, e);
      this.log.error('release refused; keeping the release in use', { model: this.opts.model, version, inUse: this.active?.version ?? null, code: e.code, error: e.message });
      this.opts.onRefused?.(e, version);
    }
  }

  /** Loads (checksums), checks compatibility, builds. */
  private async prepare(version: string): Promise<ActiveRelease<T>> {
    const rel = await this.opts.store.load(this.opts.model, version);
    const arch = architectureOf(rel);
    const where = `release ${this.opts.model}/${version}`;
    const want = this.opts.expect.type;
    if (want !== undefined && arch.type !== want) throw new ThawError('RELEASE_INCOMPATIBLE', `${where} is a ${arch.type} model, this worker runs ${want}`);
    const reinit = arch.entityStatePolicy === 'reinit';
    const check = (layout: StateLayout, what: string): void => {
      if (layout.adapter !== this.layout.adapter) {
        throw new ThawError('RELEASE_INCOMPATIBLE', `${where} ${what} adapter ${layout.adapter}, this worker runs ${this.layout.adapter}`);
      }
      if (!reinit && layout.stateSize !== this.layout.stateSize) {
        throw new ThawError(
          'RELEASE_INCOMPATIBLE',
          `${where} keeps entity states but ${what} ${layout.stateSize} floats per state, the states in use have ${this.layout.stateSize} (publish it with entityStatePolicy 'reinit')`,
        );
      }
    };
    // Also at start: the states already stored were written with `expect.stateLayout`.
    if (this.opts.layoutOf === undefined) check(arch.stateLayout, 'declares');
    const value = await this.opts.build(rel, arch);
    if (this.opts.layoutOf !== undefined) {
      try {
        check(this.opts.layoutOf(value), 'builds');
      } catch (err) {
        this.opts.discard?.(value);
        throw err;
      }
    }
    return {
      model: this.opts.model,
      version,
      createdAtMs: rel.manifest.createdAtMs,
      loadedAtMs: this.now(),
      manifest: rel.manifest,
      architecture: arch,
      value,
      reinitStates: reinit,
    };
  }

  private layoutOfRelease(r: ActiveRelease<T>): StateLayout {
    return this.opts.layoutOf === undefined ? { ...r.architecture.stateLayout } : { ...this.opts.layoutOf(r.value) };
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.checkNow()
        .catch((err: unknown) => this.log.warn('release poll failed', { error: errorMessage(err) }))
        .finally(() => this.schedulePoll());
    }, this.pollMs);
    this.timer.unref();
  }

  private onAnnouncement(source: string, model: string, version: string): void {
    if (model !== this.opts.model) return;
    this.log.debug('release announced', { source, model, version });
    this.checkNow().catch((err: unknown) => this.log.warn('release check failed', { error: errorMessage(err) }));
  }

  private async subscribeRedis(client: RedisClient, prefix: string): Promise<void> {
    const channel = releasePointerKey(prefix, this.opts.model);
    const sub = client.duplicate();
    this.subscriber = sub;
    sub.on('message', (ch: string, version: string) => {
      if (ch === channel) this.onAnnouncement('redis', this.opts.model, version);
    });
    sub.on('error', (err: unknown) => this.log.warn('release subscription error', { error: errorMessage(err) }));
    try {
      await sub.subscribe(channel);
    } catch (err) {
      throw new ThawError('REDIS_ERROR', `cannot subscribe to ${channel}: ${errorMessage(err)}`, { cause: err });
    }
  }

  private async subscribeKafka(connection: KafkaConnection, topic: string): Promise<void> {
    // Every watcher must see every announcement: a group of its own, starting at the latest offset
    // (older announcements are covered by the initial load and the polls). The topic may not exist
    // yet on a fresh cluster (nothing published so far): create it rather than fail to subscribe.
    await ensureTopics(connection, [{ topic, partitions: 1 }], this.log);
    const consumer = new BatchConsumer({
      kafka: connection,
      groupId: `thaw-release-watch-${this.opts.model}-${randomUUID()}`,
      topics: [topic],
      fromBeginning: false,
      logger: this.log,
      maxWaitTimeMs: 100,
    });
    this.consumer = consumer;
    await consumer.start((batch) => {
      for (const m of batch.messages) {
        if (m.value === null) continue;
        try {
          const a = decodeRelease(m.value, this.now());
          this.onAnnouncement('kafka', a.model, a.version);
        } catch (err) {
          // A bad announcement is only a missed hint: the next poll still finds the release.
          this.log.warn('undecodable release announcement ignored', { offset: m.offset, error: errorMessage(err) });
        }
      }
      return Promise.resolve();
    });
  }
}
