/**
 * The fetch stage of the scoring pipeline (serving/pipeline.ts): the states of the user and every
 * candidate of each admitted request. Tiered: the in-process cache (views in typed arrays, never
 * older than `freshnessMs`, serving/state-cache.ts), then the store, then the release's cold state
 * for an entity the store does not hold. The keys of ALL requests waiting at a tick are coalesced
 * into one MGET (deduplicated), at most `fetchConcurrency` in flight; a read slower than
 * `fetchTimeoutMs` scores its entities shared-only rather than missing the deadline. The safeguard
 * states ride on the same round trip when older than the freshness bound.
 */
import { performance } from 'node:perf_hooks';
import { errorMessage, ThawError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { entityKey } from '../model-store/keys.js';
import { decodeState } from '../model-store/state-codec.js';
import { partitionOfKey } from '../streams/producer.js';
import type { Admission } from './admission.js';
import { Fifo } from './fifo.js';
import type { ServingMetrics } from './metrics.js';
import type { ServingConfig } from './options.js';
import { readWidthOf, type ServedRelease } from './release.js';
import type { ResponseBody } from './response-body.js';
import type { ScoreJob } from './score-job.js';
import { SIDE_ITEM, SIDE_USER, SLOT_SHARED, type StateCache } from './state-cache.js';
import type { StateSource } from './state-source.js';

/** What the fetch stage asks of its pipeline. */
export interface FetchHost {
  /** At the start of each tick: switch to a new release if one is ready. */
  beforeTick(): void;
  /** The release and cache a tick binds its requests to. */
  current(): { release: ServedRelease; cache: StateCache };
  /** A request's states are read (or given up on): on to the model stage. */
  toModel(job: ScoreJob): void;
}

/** The fetch stage's collaborators, owned by the pipeline. */
export interface FetchStageDeps {
  config: ServingConfig;
  source: StateSource;
  metrics: ServingMetrics;
  admission: Admission;
  /** Holds the safeguard states this stage reads. */
  responses: ResponseBody;
  log: Logger;
  host: FetchHost;
}

export class FetchStage {
  /** Requests waiting for their states. */
  readonly queue = new Fifo<ScoreJob>();
  /** Entity states answered per tier since the metrics last took them: cache, store, unavailable. */
  readonly tierCounts = new Float64Array(3);
  private scheduled = false;
  private inFlight = 0;
  /** When the safeguard states were last read. */
  private safeguardReadAt = Number.NEGATIVE_INFINITY;
  private safeguardReading = false;
  private readonly config: ServingConfig;
  private readonly source: StateSource;
  private readonly metrics: ServingMetrics;
  private readonly admission: Admission;
  private readonly responses: ResponseBody;
  private readonly log: Logger;
  private readonly host: FetchHost;

  constructor(deps: FetchStageDeps) {
    this.config = deps.config;
    this.source = deps.source;
    this.metrics = deps.metrics;
    this.admission = deps.admission;
    this.responses = deps.responses;
    this.log = deps.log;
    this.host = deps.host;
  }

  /** Queues an admitted job for the next tick. */
  push(job: ScoreJob): void {
    this.queue.push(job);
    this.schedule();
  }

  /** Forgets the safeguard states (a new release): the next tick reads them again. */
  resetSafeguards(): void {
    this.safeguardReadAt = Number.NEGATIVE_INFINITY;
    this.responses.safeguardStates = [];
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /** One tick: take a new release if one is ready, then coalesce waiting requests into MGETs. */
  private readonly flush = (): void => {
    this.scheduled = false;
    this.host.beforeTick();
    while (this.queue.length > 0 && this.inFlight < this.config.fetchConcurrency) this.startFetch();
  };

  private startFetch(): void {
    const { release, cache } = this.host.current();
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
    while (this.queue.length > 0 && keys.length < this.config.fetchMaxKeys) {
      const job = this.queue.shift() as ScoreJob;
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
      for (const job of jobs) this.host.toModel(job);
      return;
    }
    this.metrics.mgetKeys.observe(keys.length);
    this.inFlight++;
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
      this.inFlight--;
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
      for (const job of jobs) this.host.toModel(job);
      if (this.queue.length > 0) this.schedule();
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
}
