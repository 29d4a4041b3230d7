/**
 * `thaw run --threads N` (N > 1): N worker threads in this process, each a whole worker
 * (cli/run-thread.ts): its own consumer group member, Redis connection, cache tier, ClickHouse sink
 * and dead-letter producer. Kafka spreads the partitions over the threads as over N processes, so
 * entity ownership stays per partition and effectively-once holds per thread as it does per process.
 *
 * This main thread supervises:
 *   - start: thread 0 first (it runs the preflight, creates the dead-letter topic and the table
 *     once), then the others together; any start failure stops those started and fails the run;
 *   - SIGTERM/SIGINT: every thread drains, all within --drain-timeout-ms from the signal;
 *   - a thread that starts to stop by itself (--until-end reached, or a failure) drains the others;
 *   - a thread that dies (an uncaught error) or FAILED makes the run exit 1, naming the thread,
 *     after the others drained: never a process left running on fewer threads;
 *   - /metrics and /healthz: the threads' registries merged, each series labelled `thread`, with the
 *     process metrics once; healthy when every thread is running and not waiting out an outage.
 */
import type { Server } from 'node:http';
import type { Worker } from 'node:worker_threads';
import { AggregatorRegistry, collectDefaultMetrics, Registry } from 'prom-client';
import type { RunConfig } from '../config/commands/run.js';
import { closeEndpoint, boundPort, serveMetrics } from '../consumers/metrics-endpoint.js';
import { isErrorCode, ThawError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { EXIT, type CommandContext } from './context.js';
import { aborted } from './lifecycle.js';
import { checkNoStrandedSpool, deadline } from './run-assembly.js';
import { startRunThread, type FromThread, type ThreadError, type ToThread } from './run-thread-protocol.js';

/** How long /metrics and /healthz wait for every thread's answer (ms). */
const SCRAPE_TIMEOUT_MS = 2_000;

type Outcome = { kind: 'stopped'; state: 'STOPPED' | 'FAILED'; error: ThreadError | undefined; processed: number; batches: number } | { kind: 'died'; error: ThreadError };

/** One worker thread as the main thread sees it. */
class RunThread {
  readonly started: Promise<{ ok: true } | { ok: false; error: ThreadError }>;
  /** Resolves when the thread starts to stop, for whatever reason. */
  readonly draining: Promise<void>;
  /** Resolves once the thread has stopped (reported) or died. */
  readonly outcome: Promise<Outcome>;
  private readonly worker: Worker;
  private readonly scrapes = new Map<number, (m: Extract<FromThread, { kind: 'scraped' }> | undefined) => void>();
  private nextScrape = 0;
  private settled = false;

  constructor(
    readonly index: number,
    spawn: SpawnThread,
    private readonly log: Logger,
  ) {
    this.worker = spawn(index);
    let onStarted: (s: { ok: true } | { ok: false; error: ThreadError }) => void = () => undefined;
    let onDraining: () => void = () => undefined;
    let onOutcome: (o: Outcome) => void = () => undefined;
    this.started = new Promise((resolve) => (onStarted = resolve));
    this.draining = new Promise((resolve) => (onDraining = resolve));
    this.outcome = new Promise((resolve) => (onOutcome = resolve));
    const settle = (o: Outcome): void => {
      if (this.settled) return;
      this.settled = true;
      onStarted(o.kind === 'died' ? { ok: false, error: o.error } : { ok: true });
      onDraining();
      onOutcome(o);
      for (const reply of this.scrapes.values()) reply(undefined);
      this.scrapes.clear();
    };
    this.worker.on('message', (m: FromThread) => {
      if (m.kind === 'started') onStarted({ ok: true });
      else if (m.kind === 'start-failed') {
        onStarted({ ok: false, error: m.error });
        settle({ kind: 'died', error: m.error });
      } else if (m.kind === 'draining') onDraining();
      else if (m.kind === 'stopped') settle(m);
      else {
        this.scrapes.get(m.id)?.(m);
        this.scrapes.delete(m.id);
      }
    });
    this.worker.on('error', (err) => settle({ kind: 'died', error: { message: err.message, code: (err as { code?: string }).code } }));
    this.worker.on('exit', (code) => settle({ kind: 'died', error: { message: `the thread exited (code ${code}) without reporting that its worker stopped`, code: undefined } }));
  }

  /** Asks the thread to drain (finish and commit the batch in flight, flush, close). */
  drain(): void {
    if (!this.settled) this.post({ kind: 'drain' });
  }

  /** The thread's metrics and health, or undefined if it does not answer in time. */
  scrape(): Promise<Extract<FromThread, { kind: 'scraped' }> | undefined> {
    if (this.settled) return Promise.resolve(undefined);
    const id = this.nextScrape++;
    const answer = new Promise<Extract<FromThread, { kind: 'scraped' }> | undefined>((resolve) => this.scrapes.set(id, resolve));
    this.post({ kind: 'scrape', id });
    return deadline(answer, SCRAPE_TIMEOUT_MS).then((a) => {
      this.scrapes.delete(id);
      return a === 'timeout' ? undefined : a;
    });
  }

  /** Ends the thread at once (after it stopped, or past the drain deadline). */
  async terminate(): Promise<void> {
    await this.worker.terminate().catch((err: unknown) => this.log.warn('thread terminate failed', { thread: this.index, error: err }));
  }

  private post(m: ToThread): void {
    this.worker.postMessage(m);
  }
}

/** Starts worker thread `index` (a seam for the supervision's unit tests). */
export type SpawnThread = (index: number) => Worker;

/** Runs `thaw run` on cfg.threads worker threads; resolves to the exit code. */
export async function runThreads(cfg: RunConfig, ctx: Pick<CommandContext, 'signal'>, log: Logger, spawn: SpawnThread = (index) => startRunThread({ cfg, index })): Promise<number> {
  checkNoStrandedSpool(cfg.spoolDir, cfg.threads);
  const threads: RunThread[] = [];
  const terminateAll = (): Promise<unknown> => Promise.all(threads.map((t) => t.terminate()));
  const drainAll = (): void => threads.forEach((t) => t.drain());
  const metrics = await serveThreadMetrics(cfg, threads, log);
  try {
    // Thread 0 alone first: the preflight, the dead-letter topic and the table are made once.
    threads.push(new RunThread(0, spawn, log));
    let failedStart = await firstStartFailure(threads);
    if (failedStart === undefined) {
      for (let i = 1; i < cfg.threads; i++) threads.push(new RunThread(i, spawn, log));
      failedStart = await firstStartFailure(threads);
    }
    if (failedStart !== undefined) {
      drainAll();
      await deadline(Promise.all(threads.map((t) => t.outcome)), cfg.drainTimeoutMs);
      throw startError(failedStart.index, failedStart.error);
    }
    log.info('worker threads started', { threads: cfg.threads });

    // Until a signal, or until any thread starts to stop (the end of the topic, a failure, a death).
    const first = await Promise.race([aborted(ctx.signal).then(() => 'signal' as const), ...threads.map((t) => t.draining.then(() => t.index))]);
    if (first !== 'signal') log.info('a worker thread is stopping: draining the others', { thread: first });
    drainAll();
    const outcomes = await deadline(Promise.all(threads.map((t) => t.outcome)), cfg.drainTimeoutMs);
    if (outcomes === 'timeout') {
      log.error('drain deadline passed: exiting without waiting any longer', {
        code: 'DRAIN_TIMEOUT',
        drainTimeoutMs: cfg.drainTimeoutMs,
        spoolDir: cfg.spoolDir,
        stays: "rows in the threads' spools are durable and are sent to ClickHouse on the next start; batches in flight were not committed and are consumed again",
      });
      return EXIT.failure;
    }
    let failed = false;
    outcomes.forEach((o, index) => {
      if (o.kind === 'died') log.error('worker thread died', { thread: index, error: o.error.message, code: o.error.code ?? 'THREAD_DIED' });
      else if (o.state === 'FAILED') log.error('worker failed', { thread: index, error: o.error?.message, code: o.error?.code });
      failed ||= o.kind === 'died' || o.state === 'FAILED';
    });
    if (failed) return EXIT.failure;
    const totals = outcomes.reduce((sum, o) => (o.kind === 'stopped' ? { processed: sum.processed + o.processed, batches: sum.batches + o.batches } : sum), { processed: 0, batches: 0 });
    if (first !== 'signal') log.info('worker stopped at the end of the topic', { ...totals, threads: cfg.threads });
    else log.info('worker threads drained', { ...totals, threads: cfg.threads });
    return EXIT.ok;
  } finally {
    await terminateAll();
    if (metrics !== undefined) await closeEndpoint(metrics);
  }
}

/**
 * The error a thread's start failure is rethrown as: its own code (a bad option still exits 2 as a
 * usage error, a service down at start still says UNAVAILABLE_AT_START), else THREAD_FAILED.
 */
export function startError(index: number, error: ThreadError): ThawError {
  const message = `worker thread ${index} failed to start: ${error.message}`;
  if (error.code === 'CONFIG_INVALID' || error.code === 'USAGE' || error.code === 'HISTORY_TOO_THIN') return new ThawError('USAGE', message, { cause: error });
  return new ThawError(isErrorCode(error.code) ? error.code : 'THREAD_FAILED', message, { cause: error });
}

/** Waits for every thread's start; the first that failed (by index), if any. */
async function firstStartFailure(threads: readonly RunThread[]): Promise<{ index: number; error: ThreadError } | undefined> {
  const starts = await Promise.all(threads.map((t) => t.started));
  for (const [index, s] of starts.entries()) if (!s.ok) return { index, error: s.error };
  return undefined;
}

/** The process's metrics endpoint: every thread's series (label `thread`) and the process metrics once. */
async function serveThreadMetrics(cfg: RunConfig, threads: readonly RunThread[], log: Logger): Promise<Server> {
  const processRegistry = new Registry();
  processRegistry.setDefaultLabels({ namespace: cfg.namespace });
  collectDefaultMetrics({ register: processRegistry, prefix: 'thaw_worker_' });
  const server = await serveMetrics({
    port: cfg.metricsPort,
    host: cfg.metricsHost,
    metrics: async () => {
      const scraped = await Promise.all(threads.map((t) => t.scrape()));
      const missing = scraped.flatMap((s, i) => (s === undefined ? [i] : []));
      if (missing.length > 0) throw new ThawError('THREAD_FAILED', `worker thread(s) ${missing.join(', ')} did not answer within ${SCRAPE_TIMEOUT_MS} ms`);
      const merged = AggregatorRegistry.aggregate([await processRegistry.getMetricsAsJSON(), ...scraped.map((s) => s?.metrics ?? [])]);
      return { contentType: merged.contentType, body: await merged.metrics() };
    },
    healthy: async () => threads.length === cfg.threads && (await Promise.all(threads.map((t) => t.scrape()))).every((s) => s?.healthy === true),
  });
  log.info('metrics endpoint listening', { host: cfg.metricsHost, port: boundPort(server), threads: cfg.threads });
  return server;
}
