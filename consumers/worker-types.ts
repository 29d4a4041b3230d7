/** The options, sources and reports of an AdaptationWorker (consumers/worker.ts). */
import type { Adapter } from '../adapters/types.js';
import type { PredictionSink } from '../analytics/types.js';
import type { Logger } from '../lib/log.js';
import type { ActiveRelease, ReleaseStatus } from '../model-store/release-sync.js';
import type { EntityStore } from '../model-store/types.js';
import type { Side } from '../schemas/types.js';
import type { PartitionListener } from '../streams/assignment.js';
import type { BatchConsumerOptions } from '../streams/batch-consumer.js';
import type { DeadLetterContext } from '../streams/dead-letters.js';
import type { KafkaConnection } from '../streams/kafka.js';
import type { MessageBatch, RawMessage } from '../streams/message.js';
import type { WorkerMetrics, WorkerMetricsOptions } from './metrics.js';
import type { ReleasedAdapter } from './release-adapter.js';
import type { SafeguardOptions } from './safeguard.js';
import type { EndOfTopicProbe } from './until-end.js';

export type WorkerState = 'INITIALIZED' | 'RUNNING' | 'DRAINING' | 'STOPPED' | 'FAILED';

/** What the worker needs of a consumer; BatchConsumer in production, a fake in unit tests. */
export interface BatchSource {
  /** `partitions` hears of assignments and chooses start offsets (a source without a group may ignore it). */
  start(handler: (batch: MessageBatch) => Promise<void>, partitions?: PartitionListener): Promise<void>;
  stop(): Promise<void>;
  lag(): Promise<number>;
  /**
   * Registers a listener called once if the consumer stops for good on its own (kafkajs gave up
   * restarting it): the worker then goes FAILED. Optional for fakes that never fail so.
   */
  onFailed?(listener: (err: unknown) => void): void;
}

/** What the worker needs of a release watcher (model-store's ReleaseWatcher<ReleasedAdapter>, started). */
export interface AdapterReleaseSource {
  /** The release in use; defined once the watcher has started. */
  activeRelease(): ActiveRelease<ReleasedAdapter> | undefined;
  /** The release that became ready since the last call, once; called between micro-batches. */
  take(): ActiveRelease<ReleasedAdapter> | undefined;
  current(): ReleaseStatus | undefined;
}

/** What the worker needs of a dead-letter writer (streams' DeadLetterWriter). */
export interface DeadLetterSink {
  /**
   * Sends the records (one produce call); resolves when acknowledged. `context` names the consumer
   * that gave up on them (written as headers).
   */
  sendMany(items: readonly { msg: RawMessage; err: unknown }[], context?: DeadLetterContext): Promise<void>;
}

export interface AdaptationWorkerOptions {
  /** Kafka cluster to consume from (ignored when `source` is given). */
  kafka: KafkaConnection;
  /** Side whose entities this worker adapts; must equal `adapter.side`. */
  side: Side;
  /** The adapter to run; with `releaseWatcher`, omit it (or pass the watcher's active adapter). */
  adapter?: Adapter;
  /**
   * The safeguard of adapters with a baseline (consumers/safeguard.ts), or `false` to turn it off.
   * @default on, its defaults
   */
  safeguard?: SafeguardOptions | false;
  /**
   * A started watcher of the releases to run: the worker starts on its active release and switches
   * to each new one between micro-batches. @default none (the adapter's release for ever)
   */
  releaseWatcher?: AdapterReleaseSource;
  store: EntityStore;
  sink: PredictionSink;
  /** Poison messages go here, awaited before their batch is committed. */
  deadLetters: DeadLetterSink;
  /** State namespace (`live`, or a replay's name). @default 'live' */
  namespace?: string;
  /**
   * The other side's adapter whose states this worker scores with (the cross-side read,
   * consumers/cross-side.ts), in the same namespace; its state epoch comes with each release
   * (`ReleasedAdapter.crossEpoch`; base epoch without a release watcher). @default none: the other
   * side's entities are scored cold
   */
  crossAdapter?: string;
  /** Consumer group. @default `thaw-${side}-${adapter.name}-${namespace}` */
  groupId?: string;
  /** Topic to consume. @default the side's labelled topic (`thaw.labelled.by-item` / `thaw.labelled.by-user`) */
  topic?: string;
  /**
   * Where a group without committed offsets starts: the earliest retained event (true) or new
   * events only (false). Committed offsets always win. @default true
   */
  fromBeginning?: boolean;
  /** Upper bound of messages handed to one micro-batch (passed to BatchConsumer). @default BatchConsumer's default */
  maxBatchMessages?: number;
  /**
   * Chunks of one partition in flight at once (passed to the BatchConsumer it builds): 1 handles a
   * chunk completely (durable, committed) before the next; 2 prepares chunk N+1 while chunk N is
   * being persisted (see the file comment). Count, at most MAX_PIPELINE_DEPTH.
   * @default DEFAULT_WORKER_PIPELINE_DEPTH (1)
   */
  pipelineDepth?: number;
  /**
   * Fetch a partition's next records while its previous chunks are being made durable (passed to
   * the BatchConsumer it builds; streams/fetch-ahead.ts): up to `pipelineDepth` chunks of a partition
   * in flight across fetches, commits still only after durability.
   * @default DEFAULT_WORKER_FETCH_AHEAD (false)
   */
  fetchAhead?: boolean;
  /** Clock for validation (events too far in the future are poison), unix ms. @default Date.now */
  clock?: () => number;
  /** Metrics endpoint port; 0 binds any free port (logged). @default 9464 */
  metricsPort?: number;
  /** Interface of the metrics endpoint. @default '127.0.0.1' */
  metricsHost?: string;
  /** Metrics registry to record into. @default a new WorkerMetrics for this worker */
  metrics?: WorkerMetrics;
  /**
   * Extra options of the WorkerMetrics the worker builds (unless `metrics` is given): a worker thread
   * of several labels its series and leaves the endpoint to its process (cli/run-threads.ts).
   * @default none: an endpoint of its own, process metrics included
   */
  metricsOptions?: Pick<WorkerMetricsOptions, 'labels' | 'serve' | 'processMetrics'>;
  /** Publication time of the adapter's release, unix ms, for thaw_release_age_seconds. @default unknown */
  releaseCreatedMs?: number;
  /**
   * Tuning passed to the BatchConsumer (session timeout, heartbeats, retry backoff, fetch sizes).
   * @default BatchConsumer's defaults
   */
  consumer?: Omit<BatchConsumerOptions, 'kafka' | 'groupId' | 'topics' | 'fromBeginning' | 'maxBatchMessages' | 'pipelineDepth' | 'fetchAhead' | 'logger'>;
  /** A consumer to use instead of building a BatchConsumer (tests). */
  source?: BatchSource;
  /**
   * Stop at the end of the topic as it is at start(): snapshot every partition's end offset, drain
   * (as on SIGTERM) once the group's committed offsets reached them all, settle STOPPED. A topic with
   * nothing to consume stops at once. For backfills and evaluations. @default false
   */
  untilEnd?: boolean;
  /** With untilEnd: time between checks of the committed offsets, ms. @default DEFAULT_UNTIL_END_POLL_MS (1000) */
  untilEndPollMs?: number;
  /** With untilEnd: the end-of-topic probe to use instead of a TopicEndWatch on `kafka` (tests). */
  endProbe?: EndOfTopicProbe;
  /** @default silentLogger */
  logger?: Logger;
}

/** The release of the shared parameters in use. */
export interface WorkerRelease {
  /** Release id recorded in prediction rows (`adapter.release`, e.g. `fm/20261128T120000000Z`). */
  id: string;
  /** Version in the release store; undefined without a watcher. */
  version: string | undefined;
  /** Publication time, unix ms; undefined if unknown. */
  createdAtMs: number | undefined;
  /** now − createdAtMs, ms; undefined if unknown. */
  ageMs: number | undefined;
  /** Release switches taken since start. */
  switches: number;
}

/** Running totals since start. */
export interface WorkerStats {
  state: WorkerState;
  batches: number;
  processed: number;
  skipped: number;
  deadLetters: number;
  /** Retryable failures seen (each retry of a batch counts). */
  retries: number;
  /** Set while the worker waits for a service to come back. */
  outageSinceMs: number | undefined;
  release: WorkerRelease;
}
