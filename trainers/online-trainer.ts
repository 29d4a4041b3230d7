/**
 * `OnlineTrainer`: keeps the shared parameters of one release lineage fresh from the labelled
 * stream of one side, and keeps meta-learning the adaptive part's initialisation (and learning
 * rates) from the entities warming up now (trainers/online/*-learner.ts). Every sync interval it
 * publishes a release (parent: the previous one; entityStatePolicy 'keep', so workers' states carry
 * on and new entities start from the newest init), promotes and announces it.
 *
 * Exactly one release per covered position, across restarts:
 * - a release records, in `architecture.online`, the next offset per partition it covers, and its
 *   version is a function of those offsets (trainers/online/offsets.ts);
 * - consumer offsets are committed only AFTER the release is published and promoted, to exactly
 *   those offsets; events consumed since are the uncommitted tail;
 * - on start the trainer loads the newest release of its own lineage (same group and topic) and
 *   skips every message before its offsets, whatever the group's committed offsets say (so a crash
 *   between publish and commit, or a rebalance redelivery, trains nothing twice);
 * - publishing a version that exists is a no-op (it is only promoted and committed again).
 * A kill loses the uncommitted tail's training, which the restart redoes from the same offsets.
 * Before each release a checkpoint of the whole training state is written beside it (atomic rename,
 * the newest `checkpointsKept` kept: trainers/online/resume.ts); with `resume` the trainer starts
 * from the newest one instead of the release, and ends bit-equal to a run never stopped.
 * One trainer process per group: a second member would train on half the partitions only.
 *
 * Lifecycle: idle → start() → running → drain() (publish the last interval, commit, leave) or
 * stop() (leave at once, nothing published or committed: what a kill does) → stopped.
 * Buffers are bounded: at most one fetched batch in flight (`maxBatchMessages` per chunk), bounded
 * warm-up windows and entity replicas in the learner.
 */
import { ConfigError, ThawError, errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { announceRelease, type AnnounceOptions } from '../model-store/release-announce.js';
import type { ReleaseManifest, ReleaseStore } from '../model-store/releases.js';
import type { LabelledEvent, Side } from '../schemas/types.js';
import type { KafkaConnection } from '../streams/kafka.js';
import { ManualCommitConsumer } from '../streams/manual-commit-consumer.js';
import type { RawMessage } from '../streams/message.js';
import { decodeLabelled } from '../streams/serde.js';
import { labelledTopicFor } from '../streams/topics.js';
import type { LearnerOptions } from './online/factory.js';
import type { LearnerStats, OnlineKind, OnlineLearner } from './online/learner.js';
import { ONLINE_KINDS } from './online/learner.js';
import { canonicalOffsets, onlineVersion, type OnlineReleaseInfo, type PartitionOffsets } from './online/offsets.js';
import { onlineCheckpointDir, publishOnlineRelease } from './online/publish.js';
import { loadLineage } from './online/lineage.js';
import { saveTrainerCheckpoint, type AttachedState } from './online/resume.js';
import type { CheckpointData } from './checkpoint.js';

export type { AttachedState } from './online/resume.js';

export { onlineCheckpointDir } from './online/publish.js';

export type { OnlineKind } from './online/learner.js';

/** Options of `OnlineTrainer`. */
export interface OnlineTrainerOptions extends LearnerOptions {
  kafka: KafkaConnection;
  /** Release directory the workers follow. */
  store: ReleaseStore;
  /** Model name in the store; its current release is the base of a new lineage. */
  model: string;
  side: Side;
  kind: OnlineKind;
  /** Labelled topic. @default labelledTopicFor(side) */
  topic?: string;
  /** The trainer's own consumer group. @default `thaw-online-${model}-${side}` */
  groupId?: string;
  /** Time between releases, milliseconds. @default 60_000 */
  syncIntervalMs?: number;
  /**
   * Also publish once this many events were trained since the last release (count; 0 = by time
   * only). A replay or backfill has no wall-clock pace: this keeps its releases as far apart in
   * events as `thaw eval --protocol stream --sync-every` does. @default 0
   */
  syncEveryEvents?: number;
  /** Where a lineage without a release of its own starts reading: earliest (true) or latest. @default true */
  fromBeginning?: boolean;
  /** Largest number of records trained per chunk (between heartbeats and stop checks). @default 2000 */
  maxBatchMessages?: number;
  /** Longest a fetch waits when the topic is idle, milliseconds. @default 500 */
  maxWaitTimeMs?: number;
  /** Announce each release (Kafka thaw.releases and/or the Redis pointer). @default none (workers poll) */
  announce?: AnnounceOptions;
  /**
   * Awaited before each chunk's events are trained, under the training lock (thaw distill learn
   * waits there for the chunk's soft labels). @default none
   */
  beforeObserve?: (events: readonly LabelledEvent[]) => Promise<void>;
  /**
   * Resume exactly: restore the newest checkpoint of the lineage (the learner's whole training
   * state, the positions, the counters, the attached state) and seek there, so training goes on
   * bit for bit as if never stopped (for events consumed in the same order: one partition, or the
   * same interleaving). Needs a kind with an exact state (fm); fails with CHECKPOINT_MISSING when
   * the lineage has releases but no exact checkpoint. Off: a restart continues from the newest
   * release and its optimiser state only. @default false
   */
  resume?: boolean;
  /** Checkpoints kept beside the releases (the newest; one is written per release). Count. @default 3 */
  checkpointsKept?: number;
  /** State checkpointed with the trainer's and started by `start()` (thaw distill learn: the soft-label join). */
  attached?: AttachedState;
  /** Called after each release is published, promoted and committed. */
  onRelease?: (manifest: ReleaseManifest, info: OnlineReleaseInfo) => void;
  logger?: Logger;
}

export type OnlineTrainerState = 'idle' | 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

/** A snapshot for logs and tests. */
export interface OnlineTrainerStatus {
  state: OnlineTrainerState;
  /** Next offset per partition consumed (trained) so far. */
  positions: PartitionOffsets;
  /** Version of the last release of the lineage (published or found at start). */
  lastRelease: string | null;
  /** Releases published by this process. */
  published: number;
  /** Messages skipped because the lineage's release already covered them (redeliveries). */
  skippedCovered: number;
  /** Undecodable messages skipped. */
  poison: number;
  learner: LearnerStats;
}

function positiveInt(key: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new ConfigError(`onlineTrainer.${key}`, `must be an integer >= ${min}, got ${String(value)}`);
  return value;
}

/**
 * Events between two releases in `thaw eval --protocol stream` (`--sync-every`), and the value to give
 * the online trainer's `syncEveryEvents` for the same cadence on a replay.
 */
export const DEFAULT_SYNC_EVERY_EVENTS = 10_000;

export class OnlineTrainer {
  private readonly opts: Required<Pick<OnlineTrainerOptions, 'topic' | 'groupId' | 'syncIntervalMs' | 'syncEveryEvents' | 'fromBeginning' | 'maxBatchMessages' | 'maxWaitTimeMs' | 'checkpointsKept'>> &
    OnlineTrainerOptions;
  /** Events trained since the last release (for `syncEveryEvents`). */
  private sinceRelease = 0;
  private readonly log: Logger;
  private lifecycle: OnlineTrainerState = 'idle';
  private learner: OnlineLearner | undefined;
  private consumer: ManualCommitConsumer | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Serialises training chunks and publishes (both mutate the learner). */
  private lock: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private positions: PartitionOffsets = {};
  private publishedPositions: PartitionOffsets = {};
  private parent: string | null = null;
  private base: string | null = null;
  private baseEvents = 0;
  private baseTasks = 0;
  private published = 0;
  private skippedCovered = 0;
  private poison = 0;

  constructor(opts: OnlineTrainerOptions) {
    if (opts.side !== 'user' && opts.side !== 'item') throw new ConfigError('onlineTrainer.side', `must be user or item, got ${String(opts.side)}`);
    if (!(ONLINE_KINDS as readonly string[]).includes(opts.kind)) throw new ConfigError('onlineTrainer.kind', `must be one of ${ONLINE_KINDS.join(', ')}, got ${String(opts.kind)}`);
    if (typeof opts.model !== 'string' || opts.model === '') throw new ConfigError('onlineTrainer.model', 'must be a model name');
    const groupId = opts.groupId ?? `thaw-online-${opts.model}-${opts.side}`;
    if (groupId === '') throw new ConfigError('onlineTrainer.groupId', 'must not be empty');
    this.opts = {
      ...opts,
      topic: opts.topic ?? labelledTopicFor(opts.side),
      groupId,
      syncIntervalMs: positiveInt('syncIntervalMs', opts.syncIntervalMs ?? 60_000, 100),
      syncEveryEvents: positiveInt('syncEveryEvents', opts.syncEveryEvents ?? 0, 0),
      fromBeginning: opts.fromBeginning ?? true,
      maxBatchMessages: positiveInt('maxBatchMessages', opts.maxBatchMessages ?? 2000, 1),
      maxWaitTimeMs: positiveInt('maxWaitTimeMs', opts.maxWaitTimeMs ?? 500, 0),
      checkpointsKept: positiveInt('checkpointsKept', opts.checkpointsKept ?? 3, 1),
    };
    this.log = (opts.logger ?? silentLogger).child({ component: 'online-trainer', model: opts.model, side: opts.side, groupId });
  }

  get state(): OnlineTrainerState {
    return this.lifecycle;
  }

  status(): OnlineTrainerStatus {
    return {
      state: this.lifecycle,
      positions: { ...this.positions },
      lastRelease: this.parent,
      published: this.published,
      skippedCovered: this.skippedCovered,
      poison: this.poison,
      learner: this.learner?.stats() ?? { events: 0, metaTasks: 0, metaSteps: 0, openWindows: 0, trackedEntities: 0, recentLogloss: NaN },
    };
  }

  /**
   * Loads the newest release of the lineage (else the model's current release as a new lineage's
   * base), joins the group and starts training and the sync timer. Throws RELEASE_NOT_FOUND when
   * the model has no release at all, RELEASE_INCOMPATIBLE when it is not of `kind`.
   */
  async start(): Promise<void> {
    if (this.lifecycle !== 'idle') throw new ThawError('LIFECYCLE', `OnlineTrainer.start() called in state ${this.lifecycle}`);
    this.lifecycle = 'starting';
    try {
      const restored = await this.loadLineage();
      await this.opts.attached?.start(restored);
      await this.startConsumer();
    } catch (err) {
      this.lifecycle = 'failed';
      await this.consumer?.disconnect().catch(() => undefined);
      throw err;
    }
    this.lifecycle = 'running';
    this.timer = setInterval(() => {
      this.withLock(() => this.publish()).catch((err: unknown) => this.log.error('release failed; retrying next interval', { error: errorMessage(err), code: (err as { code?: unknown }).code }));
    }, this.opts.syncIntervalMs);
  }

  /** Stops fetching, finishes the chunk in flight, publishes the last interval's release, commits, leaves. */
  async drain(): Promise<void> {
    if (this.lifecycle !== 'running') return this.stop();
    this.lifecycle = 'draining';
    this.clearTimer();
    this.consumer?.pause();
    await this.idle();
    try {
      await this.withLock(() => this.publish());
    } finally {
      await this.disconnect();
      this.lifecycle = 'stopped';
    }
  }

  /** Leaves at once: nothing more is published or committed (the uncommitted tail is redone after a restart). */
  async stop(): Promise<void> {
    if (this.lifecycle === 'stopped' || this.lifecycle === 'idle') {
      this.lifecycle = 'stopped';
      return;
    }
    this.lifecycle = 'stopped';
    this.clearTimer();
    await this.disconnect();
    await this.lock.catch(() => undefined);
  }

  /** Publishes now (what the timer does); resolves with the version, or null if nothing new was consumed. */
  async syncNow(): Promise<string | null> {
    if (this.lifecycle !== 'running') throw new ThawError('LIFECYCLE', `OnlineTrainer.syncNow() called in state ${this.lifecycle}`);
    let version: string | null = null;
    await this.withLock(async () => {
      version = await this.publish();
    });
    return version;
  }

  /** Loads the lineage (exactly from its newest checkpoint with `resume`); returns the attached state saved with it. */
  private async loadLineage(): Promise<CheckpointData | undefined> {
    const lineage = await loadLineage(this.opts, this.log);
    this.learner = lineage.learner;
    this.parent = lineage.parent;
    this.base = lineage.base;
    this.positions = lineage.positions;
    this.publishedPositions = lineage.publishedPositions;
    this.baseEvents = lineage.baseEvents;
    this.baseTasks = lineage.baseTasks;
    this.sinceRelease = lineage.sinceRelease;
    this.skippedCovered = lineage.skippedCovered;
    this.poison = lineage.poison;
    return lineage.attached;
  }

  private async startConsumer(): Promise<void> {
    const opts = this.opts;
    const consumer = new ManualCommitConsumer({
      kafka: opts.kafka,
      groupId: opts.groupId,
      topic: opts.topic,
      fromBeginning: opts.fromBeginning,
      maxBatchMessages: opts.maxBatchMessages,
      maxWaitTimeMs: opts.maxWaitTimeMs,
      // Every assigned partition starts at the lineage's position: never past the release, whatever was committed.
      startOffset: (partition) => this.positions[String(partition)],
      logger: this.log,
    });
    this.consumer = consumer;
    consumer.onFailed(() => {
      if (this.lifecycle === 'running') this.lifecycle = 'failed';
    });
    await consumer.start((partition, messages) => this.trainChunk(partition, messages));
  }

  /** Trains one chunk of one partition; false when the trainer no longer runs (the chunk is left for a restart). */
  private async trainChunk(partition: number, messages: readonly RawMessage[]): Promise<boolean> {
    if (this.lifecycle !== 'running') return false;
    this.inFlight++;
    try {
      const key = String(partition);
      const trained = await this.withLock(async () => {
        // Re-checked under the lock: a stop or drain may have come while waiting.
        const learner = this.learner;
        if (this.lifecycle !== 'running' || learner === undefined) return false;
        const events: LabelledEvent[] = [];
        let last = -1;
        for (const m of messages) {
          last = m.offset;
          if (m.offset < (this.positions[key] ?? 0)) {
            this.skippedCovered++;
            continue;
          }
          if (m.value === null) continue;
          try {
            events.push(decodeLabelled(m.value));
          } catch (err) {
            // The rekey stage dead-letters bad input; the trainer only must not stop on it.
            this.poison++;
            this.log.warn('undecodable labelled event skipped', { partition, offset: m.offset, error: errorMessage(err) });
          }
        }
        if (this.opts.beforeObserve !== undefined) {
          await this.opts.beforeObserve(events);
          if (this.lifecycle !== 'running') return false;
        }
        learner.observe(events);
        this.sinceRelease += events.length;
        if (last >= 0) this.positions[key] = Math.max(this.positions[key] ?? 0, last + 1);
        return true;
      });
      if (this.opts.syncEveryEvents > 0 && this.sinceRelease >= this.opts.syncEveryEvents) await this.withLock(() => this.publish());
      return trained;
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  /**
   * Publishes the parameters covering `positions` (no-op when nothing new was consumed or the
   * version exists), promotes, announces, then commits the consumer offsets to those positions.
   */
  private async publish(): Promise<string | null> {
    const learner = this.learner;
    if (learner === undefined) return null;
    const offsets = canonicalOffsets(this.positions);
    if (JSON.stringify(offsets) === JSON.stringify(canonicalOffsets(this.publishedPositions))) return null;
    const { store, model, groupId, topic } = this.opts;
    // The checkpoint first: every position committed below has one at exactly that position.
    learner.flush();
    const meta = {
      version: onlineVersion(groupId, topic, offsets),
      groupId,
      topic,
      exact: learner.trainingState !== undefined,
      positions: offsets,
      sinceRelease: 0,
      baseEvents: this.baseEvents,
      baseTasks: this.baseTasks,
      base: this.base,
      skippedCovered: this.skippedCovered,
      poison: this.poison,
    };
    try {
      saveTrainerCheckpoint(onlineCheckpointDir(store, model, groupId), meta, learner, this.opts.attached, this.opts.checkpointsKept);
    } catch (err) {
      // Without it the release still goes out; a --resume then starts from an older checkpoint.
      this.log.warn('checkpoint not written', { version: meta.version, error: errorMessage(err) });
    }
    this.sinceRelease = 0;
    const res = await publishOnlineRelease({
      store,
      model,
      groupId,
      topic,
      learner,
      offsets,
      parent: this.parent,
      base: this.base,
      priorEvents: this.baseEvents,
      priorTasks: this.baseTasks,
      logger: this.log,
    });
    if (!res.written) this.log.info('release already published; not publishing it again', { version: res.version });
    await store.promote(model, res.version);
    if (this.opts.announce !== undefined) {
      try {
        await announceRelease(store, model, res.version, this.opts.announce);
      } catch (err) {
        // Announcements are hints; workers also poll CURRENT.
        this.log.warn('release announcement failed', { version: res.version, error: errorMessage(err) });
      }
    }
    await this.commit(offsets);
    this.parent = res.version;
    this.publishedPositions = { ...offsets };
    this.published++;
    this.log.info('release published', { version: res.version, events: res.info.events, metaTasks: res.info.metaTasks, offsets, recentLogloss: learner.stats().recentLogloss });
    this.opts.onRelease?.((await store.load(model, res.version)).manifest, res.info);
    return res.version;
  }

  private async commit(offsets: PartitionOffsets): Promise<void> {
    try {
      await this.consumer?.commit(offsets);
    } catch (err) {
      // Not fatal: a restart skips what the release covers whatever the committed offsets say.
      this.log.warn('offset commit failed; the release covers them anyway', { error: errorMessage(err) });
    }
  }

  private withLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async disconnect(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer === undefined) return;
    try {
      await consumer.disconnect();
    } catch (err) {
      this.log.warn('consumer disconnect failed', { error: errorMessage(err) });
    }
  }
}
