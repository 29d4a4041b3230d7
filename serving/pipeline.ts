/**
 * The scoring pipeline, after JIZHI's staged event-driven pipeline: every request passes through
 * asynchronous stages, each with its own bounded queue, concurrency and metrics.
 *
 *   parse     validate the body (serving/request.ts), synchronous in the HTTP handler; admission
 *             control decides here whether the request can meet its deadline (serving/admission.ts)
 *   fetch     the states of the user and every candidate: the cache tier, then the store, coalesced
 *             into MGETs across requests (serving/fetch-stage.ts)
 *   model     micro-batches across requests (up to `modelMaxBatch`, after at most `modelMaxWaitMs`):
 *             the FM kernel (serving/fm-kernel.ts), or for a meta adapter's release (emerg, coldnas,
 *             fixed-adaptive) the adapter's own code, one call per request (serving/adapter-model.ts),
 *             and, when on, the safeguard's mixture; requests already past their deadline are
 *             dropped here (503) instead of computed
 *   respond   the JSON body, built as one string, with each entity's provenance (serving/response-body.ts);
 *             or, for a caller that ranks (`rank`, POST /v1/recommend), the scores themselves
 *
 * Everything runs on the event loop of one process: the stages are queues drained by ticks, not
 * threads, so a stage's "concurrency" is how many of its batches may be in flight (the fetch) or
 * how much it does per turn of the loop (the model). The number of admitted, unanswered requests
 * is bounded (`maxInFlight`): no queue grows without limit.
 *
 * Lifecycle (explicit, like the worker's): created → `start()` (connects the state store and waits
 * for its PING, so the first coalesced MGET does not pay the connection and time out into
 * shared-only scores) → running → `drain(graceMs)` (stop admitting: new requests 503; answer what
 * is in flight; at the grace deadline refuse what still waits in a queue) → `stop()` (drain, then
 * close what the pipeline owns: its release source and its state source) → stopped. `stop()` is
 * idempotent and safe from any state.
 */
import { performance } from 'node:perf_hooks';
import { errorMessage, ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { Admission, overloaded, type LoopClock, type OverloadedError } from './admission.js';
import { FetchStage, type FetchHost } from './fetch-stage.js';
import { Fifo } from './fifo.js';
import { ShedController } from './shed-controller.js';
import { withTimeout } from './timeout.js';
import { ServingMetrics, type ServingMetricFamilies, type Stage } from './metrics.js';
import { servingConfig, type ServingConfig, type ServingOptions } from './options.js';
import { ResponseBody } from './response-body.js';
import { cacheWidthOf, type ReleaseSource, type ServedRelease } from './release.js';
import type { ScoreRequest } from './request.js';
import type { JobOutput, RankedJobResult, ScoreJob } from './score-job.js';
import { SLOT_SHARED, StateCache } from './state-cache.js';
import type { StateSource } from './state-source.js';

export interface ScoringPipelineOptions {
  /** Where states are read. Owned: `stop()` closes it. */
  source: StateSource;
  /** The release in use and newer ones. Owned: `stop()` stops it. */
  releases: ReleaseSource;
  serving?: ServingOptions;
  /** Include Node's default metrics (GC, event loop lag) in /metrics. @default true */
  defaultMetrics?: boolean;
  /** The clock and event-loop active time admission measures the CPU per request with (a test seam). @default the process's */
  admissionClock?: LoopClock;
  /** The model's name among a server's several (serving/models.ts); its metrics' `model` label with `metricFamilies`. */
  model?: string;
  /** The server's shared metrics (several models); undefined: its own, without a `model` label. */
  metricFamilies?: ServingMetricFamilies;
  logger?: Logger;
}

const SOURCE_NAMES = ['fresh', 'cold', 'shared-only'] as const;

/** Where a pipeline is in its lifecycle; only `running` admits requests. */
export type PipelineState = 'created' | 'starting' | 'running' | 'draining' | 'stopped';

/** How long `start()` waits for the state store by default (ms). */
export const DEFAULT_START_TIMEOUT_MS = 10_000;
/** How long `stop()` lets requests in flight finish by default (ms). */
export const DEFAULT_DRAIN_GRACE_MS = 5_000;

export class ScoringPipeline {
  readonly config: ServingConfig;
  readonly metrics: ServingMetrics;
  private readonly source: StateSource;
  private readonly releases: ReleaseSource;
  private readonly log: Logger;
  private readonly admission: Admission;
  /** The shedding threshold's feedback loop (shedControl 'aimd'); undefined: threshold 1. */
  readonly shedControl: ShedController | undefined;
  private release: ServedRelease;
  private cache: StateCache;
  private readonly fetch: FetchStage;
  private readonly modelQueue = new Fifo<ScoreJob>();
  private modelScheduled = false;
  private inFlight = 0;
  /** The respond stage: scores, safeguard mixture, provenance, the JSON body; holds the safeguard states the fetch reads. */
  private readonly responses: ResponseBody;
  private lifecycle: PipelineState = 'created';
  private stopping: Promise<void> | undefined;
  /** Resolved when the last request in flight is answered during a drain. */
  private idle: (() => void) | undefined;

  constructor(opts: ScoringPipelineOptions) {
    this.config = servingConfig(opts.serving);
    this.source = opts.source;
    this.releases = opts.releases;
    this.log = (opts.logger ?? silentLogger).child(opts.model === undefined ? { component: 'serving' } : { component: 'serving', model: opts.model });
    this.release = opts.releases.current();
    this.cache = new StateCache(this.config.cacheEntries, cacheWidthOf(this.release), this.config.freshnessMs);
    this.responses = new ResponseBody(this.config);
    this.admission = new Admission(opts.admissionClock);
    const target = this.config.shedTargetRatio;
    this.shedControl = this.config.shedControl === 'off' ? undefined : new ShedController({ targetRatio: target, lowRatio: 0.625 * target }, performance.now());
    this.metrics = new ServingMetrics(
      (s) => this.depthOf(s),
      () => this.release,
      opts.defaultMetrics ?? true,
      () => this.releases.refusedCount(),
      opts.metricFamilies,
      opts.model,
    );
    const host: FetchHost = {
      beforeTick: () => {
        const next = this.releases.take();
        if (next !== undefined) this.swap(next);
      },
      current: () => ({ release: this.release, cache: this.cache }),
      toModel: (job) => this.toModel(job),
    };
    this.fetch = new FetchStage({ config: this.config, source: this.source, metrics: this.metrics, admission: this.admission, responses: this.responses, log: this.log, host });
  }

  /** Releases refused so far (corrupt or incompatible), the one in use kept serving. */
  refusedReleases(): number {
    return this.releases.refusedCount();
  }

  /** The release in use. */
  currentRelease(): ServedRelease {
    return this.release;
  }

  /** Requests admitted and not answered. */
  get pending(): number {
    return this.inFlight;
  }

  /** Requests waiting in the fetch and model queues (bounded by `maxInFlight`). */
  get queued(): number {
    return this.fetch.queue.length + this.modelQueue.length;
  }

  get state(): PipelineState {
    return this.lifecycle;
  }

  /**
   * Connects the state store and waits until it answers a PING (retrying within `timeoutMs`), then
   * admits requests. Throws REDIS_ERROR (retryable) when the store never answered; the pipeline
   * stays `created` and may be started again or stopped.
   */
  async start(timeoutMs = DEFAULT_START_TIMEOUT_MS): Promise<void> {
    if (this.lifecycle !== 'created') throw new ThawError('LIFECYCLE', `start() of a ${this.lifecycle} scoring pipeline`);
    this.lifecycle = 'starting';
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        await withTimeout(this.source.ping(), left);
        this.lifecycle = 'running';
        this.log.info('scoring pipeline running', { release: this.release.id });
        return;
      } catch (err) {
        lastError = err;
        if (this.lifecycle !== 'starting') break;
        await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, deadline - Date.now()))));
      }
    }
    if (this.lifecycle === 'starting') this.lifecycle = 'created';
    throw new ThawError('REDIS_ERROR', `the state store did not answer within ${timeoutMs} ms: ${errorMessage(lastError)}`, { cause: lastError });
  }

  /**
   * Stops admitting (new requests get 503) and waits until every admitted request is answered, at
   * most `graceMs`; then refuses (503) the requests still waiting in a queue. Resolves true when
   * everything in flight was answered in time. Owned resources stay open: `stop()` closes them.
   */
  async drain(graceMs = DEFAULT_DRAIN_GRACE_MS): Promise<boolean> {
    if (this.lifecycle === 'stopped') return this.inFlight === 0;
    this.lifecycle = 'draining';
    if (this.inFlight > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.idle = resolve;
        timer = setTimeout(resolve, graceMs);
      });
      clearTimeout(timer);
      this.idle = undefined;
    }
    if (this.inFlight === 0) return true;
    // Past the grace: what still waits in a queue is refused; a read in flight ends by its timeout.
    let refused = 0;
    for (const queue of [this.fetch.queue, this.modelQueue]) {
      for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
        this.unpin(job);
        this.metrics.shed.inc({ reason: 'stopping' });
        this.done(job, undefined, overloaded('stopping', 'the server shut down before the request was scored'));
        refused++;
      }
    }
    this.log.warn('drain grace passed', { graceMs, refused, stillInFlight: this.inFlight });
    return false;
  }

  /** Drains (at most `graceMs`), then stops the release source and closes the state source. Idempotent. */
  stop(graceMs = DEFAULT_DRAIN_GRACE_MS): Promise<void> {
    this.stopping ??= (async () => {
      await this.drain(graceMs);
      this.lifecycle = 'stopped';
      const errors: unknown[] = [];
      for (const close of [() => this.releases.stop(), () => this.source.close()]) {
        try {
          await close();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length > 0) this.log.warn('closing the scoring pipeline failed', { errors: errors.map(errorMessage) });
    })();
    return this.stopping;
  }

  /** Whether the pipeline admits requests and the store answers (for /readyz), within `timeoutMs`. */
  async ready(timeoutMs = 500): Promise<boolean> {
    return this.lifecycle === 'running' && (await this.storeAnswers(timeoutMs));
  }

  /** Whether the store answers, within `timeoutMs`. */
  async storeAnswers(timeoutMs = 500): Promise<boolean> {
    if (this.lifecycle === 'stopped') return false;
    try {
      await withTimeout(this.source.ping(), timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Why a request that arrived at `arrivedAt` with a budget of `deadlineMs` would be refused now
   * (counted as shed), or undefined when it would be admitted. The server asks before it reads
   * and parses the body, so a refusal under overload costs almost nothing; `score` asks again.
   */
  refusal(arrivedAt: number, deadlineMs: number): OverloadedError | undefined {
    if (this.lifecycle !== 'running') {
      const starting = this.lifecycle === 'created' || this.lifecycle === 'starting';
      this.metrics.shed.inc({ reason: starting ? 'starting' : 'stopping' });
      return starting ? overloaded('starting', 'the server is starting') : overloaded('stopping', 'the server is shutting down');
    }
    const now = performance.now();
    if (this.inFlight >= this.config.maxInFlight) {
      this.refused(now);
      this.metrics.shed.inc({ reason: 'queue-full' });
      return overloaded('queue-full', `${this.inFlight} requests in flight, the bound is ${this.config.maxInFlight}`);
    }
    // An empty pipeline always admits: its answer is the observation that corrects the estimate.
    const predicted = this.admission.predictMs(this.inFlight, now - arrivedAt, now);
    if (predicted > deadlineMs * (this.shedControl?.threshold ?? 1) && this.inFlight > 0) {
      this.refused(now);
      this.metrics.shed.inc({ reason: 'deadline' });
      return overloaded('deadline', `predicted latency ${predicted.toFixed(1)} ms exceeds ${(this.shedControl?.threshold ?? 1).toFixed(2)} × the deadline of ${deadlineMs} ms`);
    }
    return undefined;
  }

  private refused(now: number): void {
    this.admission.refused();
    const window = this.shedControl?.refused(now);
    if (window !== undefined) this.metrics.shedWindow(this.shedControl?.threshold ?? 1, window.p99Ratio);
  }

  /**
   * Admits a validated request (or throws OverloadedError: 503) and resolves with its JSON
   * response body. `arrivedAt` is performance.now() when the request arrived, `deadlineMs` its
   * budget from then.
   */
  score(req: ScoreRequest, arrivedAt: number, deadlineMs: number): Promise<string> {
    return this.admit(req, arrivedAt, deadlineMs, 'body') as Promise<string>;
  }

  /**
   * As `score`, through the same admission, stages and deadline, but resolves with each candidate's
   * score (in the request's order) for a caller that ranks them (POST /v1/recommend), and the time
   * the request spent reading states and being scored.
   */
  rank(req: ScoreRequest, arrivedAt: number, deadlineMs: number): Promise<RankedJobResult> {
    return this.admit(req, arrivedAt, deadlineMs, 'scores') as Promise<RankedJobResult>;
  }

  private admit(req: ScoreRequest, arrivedAt: number, deadlineMs: number, output: JobOutput): Promise<string | RankedJobResult> {
    const refusal = this.refusal(arrivedAt, deadlineMs);
    if (refusal !== undefined) throw refusal;
    const now = performance.now();
    this.inFlight++;
    return new Promise<string | RankedJobResult>((resolve, reject) => {
      this.fetch.push({
        req,
        output,
        arrivedAt,
        deadlineAt: arrivedAt + deadlineMs,
        admittedAt: now,
        enqueuedAt: now,
        fetchedAt: now,
        release: undefined,
        cache: undefined,
        slots: new Int32Array(req.candidates.length + 1),
        missing: 0,
        resolve,
        reject,
      });
    });
  }

  private depthOf(stage: Stage): number {
    if (stage === 'fetch') return this.fetch.queue.length;
    if (stage === 'model') return this.modelQueue.length;
    return 0;
  }

  /** Switches to `next` between ticks; requests already bound keep their release and cache. */
  private swap(next: ServedRelease): void {
    const prev = this.release;
    this.release = next;
    if (cacheWidthOf(next) !== this.cache.width || next.userPrefix !== prev.userPrefix) {
      this.cache = new StateCache(this.config.cacheEntries, cacheWidthOf(next), this.config.freshnessMs);
    }
    this.fetch.resetSafeguards();
    this.log.info('serving release switched', { from: prev.id, to: next.id });
  }

  // ---- model stage --------------------------------------------------------------------------

  private toModel(job: ScoreJob): void {
    job.enqueuedAt = performance.now();
    job.fetchedAt = job.enqueuedAt;
    this.modelQueue.push(job);
    if (this.modelQueue.length >= this.config.modelMaxBatch) {
      this.runModel();
      return;
    }
    if (this.modelScheduled) return;
    this.modelScheduled = true;
    if (this.config.modelMaxWaitMs > 0) setTimeout(this.flushModel, this.config.modelMaxWaitMs);
    else setImmediate(this.flushModel);
  }

  private readonly flushModel = (): void => {
    this.modelScheduled = false;
    this.runModel();
    if (this.modelQueue.length > 0 && !this.modelScheduled) {
      this.modelScheduled = true;
      setImmediate(this.flushModel);
    }
  };

  /** One micro-batch: up to modelMaxBatch requests, each scored under the release it was fetched with. */
  private runModel(): void {
    const t0 = performance.now();
    let n = 0;
    let waitSum = 0;
    while (n < this.config.modelMaxBatch && this.modelQueue.length > 0) {
      const job = this.modelQueue.shift() as ScoreJob;
      waitSum += t0 - job.enqueuedAt;
      n++;
      if (performance.now() > job.deadlineAt) {
        this.unpin(job);
        this.metrics.shed.inc({ reason: 'late' });
        this.done(job, undefined, overloaded('late', 'the deadline passed before the request was scored'));
        continue;
      }
      let body: string | RankedJobResult;
      try {
        body = this.respond(job);
      } catch (err) {
        this.unpin(job);
        this.done(job, undefined, err);
        continue;
      }
      this.unpin(job);
      this.done(job, body, undefined);
    }
    const t1 = performance.now();
    if (n > 0) {
      this.metrics.wait.observe({ stage: 'model' }, waitSum / 1000 / n);
      this.metrics.service.observe({ stage: 'model' }, (t1 - t0) / 1000 / n);
      this.metrics.batchSize.observe(n);
    }
    this.flushCounts();
  }

  private unpin(job: ScoreJob): void {
    const cache = job.cache;
    if (cache === undefined) return;
    for (let i = 0; i < job.slots.length; i++) cache.release(job.slots[i] ?? SLOT_SHARED);
  }

  private done(job: ScoreJob, body: string | RankedJobResult | undefined, err: unknown): void {
    this.inFlight--;
    this.admission.answered();
    if (this.inFlight === 0) this.idle?.();
    const now = performance.now();
    this.metrics.latency.observe((now - job.arrivedAt) / 1000);
    if (now > job.deadlineAt) this.metrics.pastDeadline.inc({});
    const window = this.shedControl?.observe(now - job.arrivedAt, job.deadlineAt - job.arrivedAt, now);
    if (window !== undefined) this.metrics.shedWindow(this.shedControl?.threshold ?? 1, window.p99Ratio);
    if (body === undefined) job.reject(err);
    else job.resolve(body);
  }

  /** Scores one request and builds its JSON body, or its scores (the model and respond stages: serving/response-body.ts). */
  private respond(job: ScoreJob): string | RankedJobResult {
    const release = job.release as ServedRelease;
    const cache = job.cache as StateCache;
    if (job.output === 'body') return this.responses.build(job.req, release, cache, job.slots);
    const now = performance.now();
    return { ...this.responses.scores(job.req, release, cache, job.slots), stateMs: job.fetchedAt - job.admittedAt, rankMs: now - job.fetchedAt };
  }

  /** Adds the per-entity counts of the last batches to the metrics (once per batch, not per entity). */
  private flushCounts(): void {
    const tiers = ['cache', 'store', 'unavailable'] as const;
    for (let t = 0; t < 3; t++) {
      const v = this.fetch.tierCounts[t] ?? 0;
      if (v > 0) this.metrics.tiers.inc({ tier: tiers[t] }, v);
      this.fetch.tierCounts[t] = 0;
      const s = this.responses.sourceCounts[t] ?? 0;
      if (s > 0) this.metrics.sources.inc({ source: SOURCE_NAMES[t] }, s);
      this.responses.sourceCounts[t] = 0;
    }
  }
}
