/**
 * The scoring pipeline, after JIZHI's staged event-driven pipeline: every request passes through
 * asynchronous stages, each with its own bounded queue, concurrency and metrics.
 *
 *   parse     validate the body (serving/request.ts), synchronous in the HTTP handler; admission
 *             control decides here whether the request can meet its deadline (serving/admission.ts)
 *   fetch     the states of the user and every candidate. Tiered: the in-process cache (views in
 *             typed arrays, never older than `freshnessMs`, serving/state-cache.ts), then the store,
 *             then the release's cold state for an entity the store does not hold. The keys of ALL
 *             requests waiting at a tick are coalesced into one MGET (deduplicated), at most
 *             `fetchConcurrency` in flight; a read slower than `fetchTimeoutMs` scores its entities
 *             shared-only rather than missing the deadline
 *   model     micro-batches across requests (up to `modelMaxBatch`, after at most `modelMaxWaitMs`):
 *             the FM kernel (serving/fm-kernel.ts), or for a meta adapter's release (emerg, coldnas,
 *             fixed-adaptive) the adapter's own code, one call per request (serving/adapter-model.ts),
 *             and, when on, the safeguard's mixture; requests already past their deadline are
 *             dropped here (503) instead of computed
 *   respond   the JSON body, built as one string, with each entity's provenance (serving/response-body.ts)
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
import { entityKey } from '../model-store/keys.js';
import { decodeState } from '../model-store/state-codec.js';
import { partitionOfKey } from '../streams/producer.js';
import { Admission, overloaded, type LoopClock, type OverloadedError } from './admission.js';
import { Fifo } from './fifo.js';
import { ShedController } from './shed-controller.js';
import { withTimeout } from './timeout.js';
import { ServingMetrics, type ServingMetricFamilies, type Stage } from './metrics.js';
import { servingConfig, type ServingConfig, type ServingOptions } from './options.js';
import { ResponseBody } from './response-body.js';
import { cacheWidthOf, readWidthOf, type ReleaseSource, type ServedRelease } from './release.js';
import type { ScoreRequest } from './request.js';
import { SIDE_ITEM, SIDE_USER, SLOT_SHARED, StateCache } from './state-cache.js';
import type { StateSource } from './state-source.js';

/** One admitted request on its way through the stages. */
interface ScoreJob {
  readonly req: ScoreRequest;
  /** performance.now() at arrival, and the deadline on the same clock (ms). */
  readonly arrivedAt: number;
  readonly deadlineAt: number;
  /** performance.now() when it entered its current stage's queue. */
  enqueuedAt: number;
  /** Bound at the fetch tick: the release it is fetched and scored under, and that release's cache. */
  release: ServedRelease | undefined;
  cache: StateCache | undefined;
  /** Cache slot (or SLOT_COLD / SLOT_SHARED) of the user (index 0) and each candidate (1..n). */
  readonly slots: Int32Array;
  /** Entities still waiting for the store. */
  missing: number;
  resolve: (body: string) => void;
  reject: (err: unknown) => void;
}

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
  private readonly fetchQueue = new Fifo<ScoreJob>();
  private readonly modelQueue = new Fifo<ScoreJob>();
  private fetchScheduled = false;
  private fetchesInFlight = 0;
  private modelScheduled = false;
  private inFlight = 0;
  /** The respond stage: scores, safeguard mixture, provenance, the JSON body; holds the safeguard states the fetch reads. */
  private readonly responses: ResponseBody;
  /** When the safeguard states were last read. */
  private safeguardReadAt = Number.NEGATIVE_INFINITY;
  private safeguardReading = false;
  private readonly tierCounts = new Float64Array(3);
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
    return this.fetchQueue.length + this.modelQueue.length;
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
    for (const queue of [this.fetchQueue, this.modelQueue]) {
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
    const refusal = this.refusal(arrivedAt, deadlineMs);
    if (refusal !== undefined) throw refusal;
    const now = performance.now();
    this.inFlight++;
    return new Promise<string>((resolve, reject) => {
      const job: ScoreJob = {
        req,
        arrivedAt,
        deadlineAt: arrivedAt + deadlineMs,
        enqueuedAt: now,
        release: undefined,
        cache: undefined,
        slots: new Int32Array(req.candidates.length + 1),
        missing: 0,
        resolve,
        reject,
      };
      this.fetchQueue.push(job);
      this.scheduleFetch();
    });
  }

  private depthOf(stage: Stage): number {
    if (stage === 'fetch') return this.fetchQueue.length;
    if (stage === 'model') return this.modelQueue.length;
    return 0;
  }

  // ---- fetch stage --------------------------------------------------------------------------

  private scheduleFetch(): void {
    if (this.fetchScheduled) return;
    this.fetchScheduled = true;
    setImmediate(this.flushFetch);
  }

  /** One tick: take a new release if one is ready, then coalesce waiting requests into MGETs. */
  private readonly flushFetch = (): void => {
    this.fetchScheduled = false;
    const next = this.releases.take();
    if (next !== undefined) this.swap(next);
    while (this.fetchQueue.length > 0 && this.fetchesInFlight < this.config.fetchConcurrency) this.startFetch();
  };

  /** Switches to `next` between ticks; requests already bound keep their release and cache. */
  private swap(next: ServedRelease): void {
    const prev = this.release;
    this.release = next;
    if (cacheWidthOf(next) !== this.cache.width || next.userPrefix !== prev.userPrefix) {
      this.cache = new StateCache(this.config.cacheEntries, cacheWidthOf(next), this.config.freshnessMs);
    }
    this.safeguardReadAt = Number.NEGATIVE_INFINITY;
    this.responses.safeguardStates = [];
    this.log.info('serving release switched', { from: prev.id, to: next.id });
  }

  private startFetch(): void {
    const release = this.release;
    const cache = this.cache;
    const now = performance.now();
    const jobs: ScoreJob[] = [];
    const keys: string[] = [];
    const keyIds: string[] = [];
    const keyIsUser: boolean[] = [];
    const keyIndex = new Map<string, number>();
    // (job, position, key) triples of the entities the cache could not answer.
    const waits: number[] = [];
    let hits = 0;
    let waitSum = 0;
    while (this.fetchQueue.length > 0 && keys.length < this.config.fetchMaxKeys) {
      const job = this.fetchQueue.shift() as ScoreJob;
      waitSum += now - job.enqueuedAt;
      job.release = release;
      job.cache = cache;
      const j = jobs.length;
      jobs.push(job);
      const cands = job.req.candidates;
      for (let pos = 0; pos <= cands.length; pos++) {
        const isUser = pos === 0;
        const id = isUser ? job.req.user.id : (cands[pos - 1] as { id: string }).id;
        const slot = cache.acquire(isUser ? SIDE_USER : SIDE_ITEM, id, now);
        if (slot >= 0) {
          job.slots[pos] = slot;
          hits++;
          continue;
        }
        // Only a miss builds the Redis key.
        const key = entityKey(isUser ? release.userPrefix : release.itemPrefix, id);
        let k = keyIndex.get(key);
        if (k === undefined) {
          k = keys.length;
          keyIndex.set(key, k);
          keys.push(key);
          keyIds.push(id);
          keyIsUser.push(isUser);
        }
        waits.push(j, pos, k);
        job.missing++;
      }
    }
    this.metrics.wait.observe({ stage: 'fetch' }, waitSum / 1000 / Math.max(1, jobs.length));
    this.tierCounts[0] = (this.tierCounts[0] ?? 0) + hits;
    const entityKeys = keys.length;
    // The safeguard states ride on the same round trip when older than the freshness bound.
    const sgPrefix = release.safeguardPrefix;
    const readSafeguard = sgPrefix !== undefined && !this.safeguardReading && now - this.safeguardReadAt > this.config.freshnessMs;
    if (readSafeguard) {
      this.safeguardReading = true;
      for (let p = 0; p < this.config.safeguardPartitions; p++) keys.push(entityKey(sgPrefix, `p${p}`));
    }
    if (keys.length === 0) {
      this.metrics.service.observe({ stage: 'fetch' }, (performance.now() - now) / 1000 / Math.max(1, jobs.length));
      for (const job of jobs) this.toModel(job);
      return;
    }
    this.metrics.mgetKeys.observe(keys.length);
    this.fetchesInFlight++;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (values: (Buffer | null)[] | undefined, err: unknown): void => {
      const t = performance.now();
      if (values !== undefined) this.fill(release, cache, keyIds, keyIsUser, entityKeys, values, t);
      if (readSafeguard) {
        if (values !== undefined) this.readSafeguards(values, entityKeys, t);
        this.safeguardReading = false;
      }
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.fetchesInFlight--;
      if (values === undefined) {
        this.log.warn('state fetch failed; scoring shared-only', { keys: keys.length, error: errorMessage(err) });
      }
      // Slots of this read, per key (filled above into the cache; SLOT_SHARED when unreadable).
      const slotOfKey = this.lastFill;
      for (let w = 0; w < waits.length; w += 3) {
        const job = jobs[waits[w] as number] as ScoreJob;
        const k = waits[w + 2] as number;
        const slot = values === undefined ? SLOT_SHARED : (slotOfKey[k] ?? SLOT_SHARED);
        // `fill` pinned the slot once: a key asked for by several requests of the read is pinned once more per asker.
        if (slot >= 0) {
          if ((this.fillUsed[k] ?? 0) > 0) cache.pin(slot);
          else this.fillUsed[k] = 1;
        }
        job.slots[waits[w + 1] as number] = slot;
      }
      this.tierCounts[1] = (this.tierCounts[1] ?? 0) + (values === undefined ? 0 : waits.length / 3);
      this.tierCounts[2] = (this.tierCounts[2] ?? 0) + (values === undefined ? waits.length / 3 : 0);
      this.metrics.service.observe({ stage: 'fetch' }, (t - now) / 1000 / Math.max(1, jobs.length));
      this.admission.observeFetch(t - now, t);
      for (const job of jobs) this.toModel(job);
      if (this.fetchQueue.length > 0) this.scheduleFetch();
    };
    // The timeout gives up in the check phase after its timer: when the loop was stalled (a GC pause,
    // a long turn) past the timeout, a reply that arrived meanwhile is read in the poll phase between
    // the two and wins, instead of its entities being scored shared-only.
    const giveUp = (): void => finish(undefined, new ThawError('REDIS_ERROR', `state read slower than ${this.config.fetchTimeoutMs} ms`));
    timer = setTimeout(() => setImmediate(giveUp), this.config.fetchTimeoutMs);
    this.source.mget(keys).then(
      (values) => {
        if (settled) {
          // Too late for its requests, but the cache keeps what it read.
          this.fill(release, cache, keyIds, keyIsUser, entityKeys, values, performance.now());
          for (let k = 0; k < entityKeys; k++) cache.release(this.lastFill[k] ?? SLOT_SHARED);
          if (readSafeguard) this.readSafeguards(values, entityKeys, performance.now());
          return;
        }
        finish(values, undefined);
      },
      (err: unknown) => finish(undefined, err),
    );
  }

  // Per-read scratch of `fill`: the slot of each key, and whether an asker already took its pin.
  private lastFill: Int32Array = new Int32Array(0);
  private fillUsed: Uint8Array = new Uint8Array(0);

  /** Writes the read values of the entity keys into the cache (each slot pinned once), as much of each as `release` scores with. */
  private fill(release: ServedRelease, cache: StateCache, ids: readonly string[], isUser: readonly boolean[], n: number, values: readonly (Buffer | null)[], now: number): void {
    if (this.lastFill.length < n) {
      this.lastFill = new Int32Array(Math.max(n, 2 * this.lastFill.length));
      this.fillUsed = new Uint8Array(this.lastFill.length);
    }
    this.fillUsed.fill(0, 0, n);
    const sgUser = this.config.safeguard === 'user';
    const sgItem = this.config.safeguard === 'item';
    const parts = this.config.safeguardPartitions;
    const userWidth = readWidthOf(release, 'user');
    const itemWidth = readWidthOf(release, 'item');
    for (let k = 0; k < n; k++) {
      const user = isUser[k] === true;
      const partition = parts === 1 || (user ? !sgUser : !sgItem) ? 0 : partitionOfKey(ids[k] as string, parts);
      this.lastFill[k] = cache.fill(user ? SIDE_USER : SIDE_ITEM, ids[k] as string, values[k] ?? null, now, partition, user ? userWidth : itemWidth);
    }
  }

  private readSafeguards(values: readonly (Buffer | null)[], from: number, now: number): void {
    const states: (Float32Array | undefined)[] = [];
    for (let p = 0; p < this.config.safeguardPartitions; p++) {
      const v = values[from + p];
      try {
        states.push(v === null || v === undefined ? undefined : decodeState(v).params);
      } catch (err) {
        this.log.warn('safeguard state unreadable; the initial state is used', { partition: p, error: errorMessage(err) });
        states.push(undefined);
      }
    }
    this.responses.safeguardStates = states;
    this.safeguardReadAt = now;
  }

  // ---- model stage --------------------------------------------------------------------------

  private toModel(job: ScoreJob): void {
    job.enqueuedAt = performance.now();
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
      let body: string;
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

  private done(job: ScoreJob, body: string | undefined, err: unknown): void {
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

  /** Scores one request and builds its JSON body (the model and respond stages: serving/response-body.ts). */
  private respond(job: ScoreJob): string {
    return this.responses.build(job.req, job.release as ServedRelease, job.cache as StateCache, job.slots);
  }

  /** Adds the per-entity counts of the last batches to the metrics (once per batch, not per entity). */
  private flushCounts(): void {
    const tiers = ['cache', 'store', 'unavailable'] as const;
    for (let t = 0; t < 3; t++) {
      const v = this.tierCounts[t] ?? 0;
      if (v > 0) this.metrics.tiers.inc({ tier: tiers[t] }, v);
      this.tierCounts[t] = 0;
      const s = this.responses.sourceCounts[t] ?? 0;
      if (s > 0) this.metrics.sources.inc({ source: SOURCE_NAMES[t] }, s);
      this.responses.sourceCounts[t] = 0;
    }
  }
}
