/**
 * Prometheus metrics of one adaptation worker: its own prom-client registry (so several workers in
 * one process, as in tests or the demo, never collide) and an optional node:http endpoint serving
 * the text exposition format on `/metrics` and a liveness answer on `/healthz`.
 *
 * Events per second is `rate(thaw_events_total[1m])`; batch latency quantiles come from the
 * `thaw_batch_seconds` histogram, per phase from `thaw_batch_phase_seconds{phase}`.
 */
import type { Server } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ConfigError, errorMessage } from '../lib/errors.js';
import { boundPort, closeEndpoint, serveMetrics } from './metrics-endpoint.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { Side } from '../schemas/types.js';
import type { BatchResult } from './processor.js';

export interface WorkerMetricsOptions {
  side: Side;
  /** Adapter name (label of thaw_events_total). */
  adapter: string;
  /** State namespace; a constant label of every metric so live and replay workers are told apart. */
  namespace: string;
  /** TCP port of the `/metrics` endpoint; 0 binds any free port (logged, and returned by `listen`). @default 9464 */
  port?: number;
  /** Interface to bind: loopback unless Prometheus scrapes from another host (then e.g. '0.0.0.0'). @default '127.0.0.1' */
  host?: string;
  /** How often the consumer lag gauge is refreshed from `lagSource`, in milliseconds. @default 5000 */
  lagIntervalMs?: number;
  /** Clock for the release age, unix ms. @default Date.now */
  clock?: () => number;
  /**
   * Also export prom-client's process and Node.js metrics, prefixed `thaw_worker_` (resident memory
   * `thaw_worker_process_resident_memory_bytes`, heap `thaw_worker_nodejs_heap_size_used_bytes`, CPU,
   * event loop lag, GC): what a soak watches for leaks. @default true
   */
  processMetrics?: boolean;
  /** Constant labels added to every series, e.g. `{ thread: '1' }` for one worker thread of several. @default none */
  labels?: Readonly<Record<string, string>>;
  /** Serve the HTTP endpoint on `listen()`; false for a worker thread whose process serves every thread's metrics (cli/run-threads.ts). @default true */
  serve?: boolean;
  /** @default silentLogger */
  logger?: Logger;
}

/** Outcome label values of thaw_events_total. */
export type EventOutcome = 'processed' | 'skipped' | 'dead_letter';

const BATCH_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly events: Counter<'side' | 'adapter' | 'outcome'>;
  private readonly lag: Gauge;
  private readonly batchSeconds: Histogram;
  private readonly phaseSeconds: Histogram<'phase'>;
  private readonly deadLetters: Counter<'reason'>;
  private readonly releaseInfo: Gauge<'release'>;
  private readonly lastEventSeconds: Gauge;
  private readonly crossReads: Counter<'outcome'>;
  private readonly partitionsMoved: Counter;
  private readonly progressStarts: Counter<'decision'>;
  private readonly originMismatches: Counter;
  private readonly side: Side;
  private readonly adapter: string;
  private readonly port: number;
  private readonly host: string;
  private readonly lagIntervalMs: number;
  private readonly clock: () => number;
  private readonly logger: Logger;
  private readonly serve: boolean;
  private releaseCreatedMs: number | undefined;
  private server: Server | undefined;
  private lagTimer: NodeJS.Timeout | undefined;

  constructor(opts: WorkerMetricsOptions) {
    const port = opts.port ?? 9464;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError('metrics.port', `must be an integer in [0, 65535], got ${port}`);
    const lagIntervalMs = opts.lagIntervalMs ?? 5000;
    if (!(lagIntervalMs >= 10)) throw new ConfigError('metrics.lagIntervalMs', `must be >= 10 ms, got ${lagIntervalMs}`);
    this.side = opts.side;
    this.adapter = opts.adapter;
    this.port = port;
    this.host = opts.host ?? '127.0.0.1';
    this.lagIntervalMs = lagIntervalMs;
    this.clock = opts.clock ?? Date.now;
    this.logger = opts.logger ?? silentLogger;
    this.registry.setDefaultLabels({ ...opts.labels, namespace: opts.namespace });
    this.serve = opts.serve ?? true;
    const registers = [this.registry];
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'thaw_worker_' });

    this.events = new Counter({ name: 'thaw_events_total', help: 'Events handled, by outcome.', labelNames: ['side', 'adapter', 'outcome'], registers });
    for (const outcome of ['processed', 'skipped', 'dead_letter'] as const) this.events.inc({ side: this.side, adapter: this.adapter, outcome }, 0);
    this.lag = new Gauge({ name: 'thaw_consumer_lag', help: 'Messages not yet consumed (sum over assigned partitions).', registers });
    this.batchSeconds = new Histogram({ name: 'thaw_batch_seconds', help: 'Time to process one micro-batch, load to state write.', buckets: BATCH_BUCKETS, registers });
    this.phaseSeconds = new Histogram({ name: 'thaw_batch_phase_seconds', help: 'Time per micro-batch phase.', labelNames: ['phase'], buckets: BATCH_BUCKETS, registers });
    this.deadLetters = new Counter({ name: 'thaw_dead_letters_total', help: 'Poison messages sent to the dead-letter topic, by reason.', labelNames: ['reason'], registers });
    this.releaseInfo = new Gauge({ name: 'thaw_release_info', help: 'Release of the shared parameters in use (value 1).', labelNames: ['release'], registers });
    const releaseAge: Gauge = new Gauge({
      name: 'thaw_release_age_seconds',
      help: 'Seconds since the release in use was published (NaN if unknown).',
      registers,
      collect: () => {
        releaseAge.set(this.releaseCreatedMs === undefined ? NaN : (this.clock() - this.releaseCreatedMs) / 1000);
      },
    });
    this.crossReads = new Counter({
      name: 'thaw_cross_side_reads_total',
      help: "Events scored with the other side's state (read), or cold because its only states were newer than the event (refused).",
      labelNames: ['outcome'],
      registers,
    });
    this.partitionsMoved = new Counter({
      name: 'thaw_partitions_moved_total',
      help: 'Partitions whose ownership may have changed at a group join (their cached states dropped).',
      registers,
    });
    this.progressStarts = new Counter({
      name: 'thaw_partition_starts_total',
      help: "Partition starts after an assignment, by decision against the stored progress: seek_ahead, seek_behind, in_step, no_progress, beyond_end (stored progress past the partition's end: topic recreated or truncated).",
      labelNames: ['decision'],
      registers,
    });
    for (const decision of ['seek_ahead', 'seek_behind', 'in_step', 'no_progress', 'beyond_end'] as const) this.progressStarts.inc({ decision }, 0);
    this.originMismatches = new Counter({
      name: 'thaw_state_origin_mismatches_total',
      help: 'Entity states that recorded another partition or topic than the event applied to them (re-based, logged as warnings).',
      registers,
    });
    this.lastEventSeconds = new Gauge({ name: 'thaw_last_event_timestamp_seconds', help: 'Event time of the newest processed event.', registers });
  }

  /** Records a processed micro-batch (counts and phase timings). */
  recordBatch(res: BatchResult): void {
    this.events.inc({ side: this.side, adapter: this.adapter, outcome: 'processed' }, res.processed);
    this.events.inc({ side: this.side, adapter: this.adapter, outcome: 'skipped' }, res.skipped);
    const t = res.timings;
    this.batchSeconds.observe(t.totalMs / 1000);
    this.phaseSeconds.observe({ phase: 'load' }, t.loadMs / 1000);
    this.phaseSeconds.observe({ phase: 'compute' }, t.computeMs / 1000);
    this.phaseSeconds.observe({ phase: 'sink' }, t.sinkMs / 1000);
    this.phaseSeconds.observe({ phase: 'store' }, t.storeMs / 1000);
    if (res.maxEventMs > 0) this.lastEventSeconds.set(res.maxEventMs / 1000);
    if (res.crossRead > 0) this.crossReads.inc({ outcome: 'read' }, res.crossRead);
    if (res.crossRefused > 0) this.crossReads.inc({ outcome: 'refused' }, res.crossRefused);
    if (res.originMismatches > 0) this.originMismatches.inc(res.originMismatches);
  }

  /** Records a group join's partitions whose ownership may have changed. */
  recordPartitionsMoved(n: number): void {
    if (n > 0) this.partitionsMoved.inc(n);
  }

  /** Records how a partition started after an assignment (consumers/progress.ts). */
  recordPartitionStart(decision: 'seek_ahead' | 'seek_behind' | 'in_step' | 'no_progress' | 'beyond_end'): void {
    this.progressStarts.inc({ decision });
  }

  /** Records one message sent to the dead-letter topic. */
  recordDeadLetter(reason: string): void {
    this.events.inc({ side: this.side, adapter: this.adapter, outcome: 'dead_letter' });
    this.deadLetters.inc({ reason });
  }

  /** Sets the release in use; `createdMs` (unix ms) feeds thaw_release_age_seconds. */
  setRelease(release: string, createdMs?: number): void {
    this.releaseInfo.reset();
    this.releaseInfo.set({ release }, 1);
    this.releaseCreatedMs = createdMs;
  }

  setLag(lag: number): void {
    this.lag.set(lag);
  }

  /**
   * Refreshes the lag gauge from `lagSource` every `lagIntervalMs` until `close()`. A failing
   * lookup (broker briefly away) keeps the last value and is logged at debug level only.
   */
  pollLag(lagSource: () => Promise<number>): void {
    this.stopLagPolling();
    let inFlight = false;
    const tick = (): void => {
      if (inFlight) return; // never pile up lookups behind a slow broker
      inFlight = true;
      lagSource()
        .then((lag) => this.lag.set(lag))
        .catch((err: unknown) => this.logger.debug('lag lookup failed', { error: errorMessage(err) }))
        .finally(() => {
          inFlight = false;
        });
    };
    tick();
    this.lagTimer = setInterval(tick, this.lagIntervalMs);
    this.lagTimer.unref();
  }

  /** Current text exposition of this worker's metrics. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Starts the HTTP endpoint on the configured port (0: any free port); resolves with the bound
   * port. `portOverride` binds another port instead. `healthy` answers `/healthz` (200 when true,
   * 503 otherwise). A port in use is a CONFIG_INVALID error that says how to pick another.
   */
  async listen(healthy: () => boolean = () => true, portOverride?: number): Promise<number> {
    if (!this.serve) return 0;
    const port = portOverride ?? this.port;
    if (this.server !== undefined) return boundPort(this.server);
    this.server = await serveMetrics({ port, host: this.host, healthy, metrics: async () => ({ contentType: this.registry.contentType, body: await this.text() }) });
    const bound = boundPort(this.server);
    this.logger.info('metrics endpoint listening', { host: this.host, port: bound });
    return bound;
  }

  private stopLagPolling(): void {
    if (this.lagTimer !== undefined) clearInterval(this.lagTimer);
    this.lagTimer = undefined;
  }

  /** Stops lag polling and the HTTP endpoint. */
  async close(): Promise<void> {
    this.stopLagPolling();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await closeEndpoint(server);
  }
}
