/**
 * The production pieces of a curves run, in process:
 *   produce   a source → the run's labelled topic (what `thaw produce` sends: cli/commands/produce.ts toBatches)
 *   rekey     labelled → by-user / by-item (streams/rekey.ts, what `thaw rekey` runs)
 *   worker    AdaptationWorker wired as `thaw run` wires it: a ReleaseWatcher over the release
 *             directory builds the adapter, RedisEntityStore behind CachedEntityStore, ClickHouseSink,
 *             dead letters, the cross-side read for the fm-adagrad workers (plan.ts); each worker in
 *             its consumer group, to the end of the topic; the workers of a group run together
 *   direct    the same adapters, store and sink through BatchProcessor without Kafka (events read from
 *             the source in micro-batches, offsets = stream positions; the workers of a group in
 *             lockstep: every one prepares a micro-batch, then every one persists it): for streams too
 *             long for Kafka in the bench's time, and for prefixes of a stream.
 */
import { resolve } from 'node:path';
import { ClickHouseSink } from '../../analytics/clickhouse-sink.js';
import { toBatches } from '../../cli/commands/produce.js';
import { createAdapterReleaseWatcher, epochAdapterSegment } from '../../consumers/release-adapter.js';
import { BatchProcessor, type BatchItem, type PreparedBatch } from '../../consumers/processor.js';
import { AdaptationWorker, DEFAULT_WORKER_PIPELINE_DEPTH } from '../../consumers/worker.js';
import { errorMessage, ThawError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { CachedEntityStore } from '../../model-store/cached-store.js';
import { RedisEntityStore } from '../../model-store/redis-store.js';
import { ReleaseStore } from '../../model-store/releases.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { ensureTopics } from '../../streams/admin.js';
import { BatchConsumer } from '../../streams/batch-consumer.js';
import { DeadLetterWriter } from '../../streams/dead-letters.js';
import { EventProducer } from '../../streams/producer.js';
import { Rekeyer } from '../../streams/rekey.js';
import { CROSS_ADAPTER, namespaceOf, type WorkerSpec } from './plan.js';
import type { ReleaseRef } from './releases.js';
import type { CurvesResources } from './resources.js';

/** Partitions of the run's topics (the `thaw produce` default). */
export const PARTITIONS = 4;
/**
 * Partitions of the labelled topic: ONE. Its records are keyed by event id, so with several
 * partitions the rekeyer would read them interleaved in whatever order its partition fetches
 * return, and an entity's events would reach the by-user / by-item topics out of time order (its
 * prior counts and states would then follow that order, not the stream's). One partition keeps the
 * replay in time order; the re-keyed topics keep PARTITIONS (per-key order is all a worker needs).
 */
export const LABELLED_PARTITIONS = 1;
/** Events per produce request. */
const CHUNK = 1000;
/**
 * Events per direct `process` call. Each call waits for its rows to be durable in ClickHouse (one
 * INSERT), and direct calls are sequential (stream order), so small batches are bound by that
 * round trip (about 14k events/s at 1000 on the bench machine); the results do not depend on it
 * (waves keep each entity's events in order within a batch).
 */
export const DEFAULT_DIRECT_BATCH = 10_000;
/**
 * The re-keyed records carry event time as their Kafka timestamp (MovieLens: 1997–98), so the
 * broker's time retention would delete them at once: the run's topics keep everything.
 */
const KEEP_ALL = { 'retention.ms': '-1' };

export interface StageTiming {
  events: number;
  ms: number;
  perSec: number;
}

function timing(events: number, ms: number): StageTiming {
  return { events, ms, perSec: ms > 0 ? events / (ms / 1000) : NaN };
}

export interface WorkerRun extends StageTiming {
  spec: WorkerSpec;
  transport: 'kafka' | 'direct';
  namespace: string;
  /** Release id the rows carry. */
  release: string;
  /** Events scored with the other side's state, and events whose other-side state was newer than the event (cold). */
  crossRead: number;
  crossRefused: number;
}

/** Sends `events` (in source order) to a new labelled topic of the run; returns its name and timing. */
export async function produceLabelled(res: CurvesResources, events: AsyncIterable<LabelledEvent> | Iterable<LabelledEvent>, log: Logger): Promise<{ topic: string; timing: StageTiming }> {
  const { kafka } = res.services;
  const topic = res.topic('labelled');
  await ensureTopics(kafka, [{ topic, partitions: LABELLED_PARTITIONS, config: KEEP_ALL }], log);
  const cfg = { mode: 'labelled' as const, rekeyed: false, topic, clickDelayMs: 0, byUserTopic: '', byItemTopic: '', impressionsTopic: '', clicksTopic: '' };
  const producer = new EventProducer({ kafka, logger: log });
  await producer.connect();
  const t0 = performance.now();
  let sent = 0;
  try {
    let chunk: LabelledEvent[] = [];
    for await (const e of events) {
      chunk.push(e);
      if (chunk.length === CHUNK) {
        await producer.sendMany(toBatches(cfg, chunk));
        sent += chunk.length;
        chunk = [];
      }
    }
    if (chunk.length > 0) await producer.sendMany(toBatches(cfg, chunk));
    sent += chunk.length;
  } finally {
    await producer.close();
  }
  return { topic, timing: timing(sent, performance.now() - t0) };
}

async function waitFor(what: string, done: () => boolean, failed: () => string | undefined, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const f = failed();
    if (f !== undefined) throw new ThawError('LIFECYCLE', `${what}: ${f}`);
    if (done()) return;
    if (performance.now() > deadline) throw new ThawError('LIFECYCLE', `${what}: not done after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Re-keys the labelled topic into the run's by-user / by-item topics; resolves once all `expected` are re-keyed. */
export async function rekeyTopic(res: CurvesResources, labelled: string, expected: number, log: Logger, timeoutMs: number): Promise<{ byUser: string; byItem: string; timing: StageTiming }> {
  const { kafka } = res.services;
  const byUser = res.topic('by-user');
  const byItem = res.topic('by-item');
  const dlq = res.topic('dlq');
  await ensureTopics(
    kafka,
    [byUser, byItem, dlq].map((topic) => ({ topic, partitions: PARTITIONS, config: KEEP_ALL })),
    log,
  );
  const rekeyer = new Rekeyer({ kafka, logger: log, groupId: res.group('rekey'), sourceTopic: labelled, byUserTopic: byUser, byItemTopic: byItem, deadLetterTopic: dlq });
  const t0 = performance.now();
  await rekeyer.start();
  try {
    await waitFor(
      'rekey',
      () => rekeyer.stats.consumed >= expected,
      () => (rekeyer.stats.deadLettered > 0 ? `${rekeyer.stats.deadLettered} dead letters` : undefined),
      timeoutMs,
    );
  } finally {
    await rekeyer.stop();
  }
  return { byUser, byItem, timing: timing(expected, performance.now() - t0) };
}

/** The clients a worker uses, built as `thaw run` builds them. */
async function buildClients(res: CurvesResources, spec: WorkerSpec, ref: ReleaseRef, log: Logger) {
  const releases = await createAdapterReleaseWatcher({
    store: new ReleaseStore({ root: resolve(ref.dir) }),
    model: ref.model,
    adapter: spec.adapter,
    side: spec.side,
    ...(spec.cross ? { cross: { adapter: CROSS_ADAPTER, model: ref.model } } : {}),
    // The release is fixed for the run: no hot swap wanted, poll rarely.
    pollIntervalMs: 3_600_000,
    logger: log,
  });
  await releases.start();
  const redisStore = new RedisEntityStore({ redis: { url: res.services.redisUrl }, keyPrefix: res.redisPrefix, logger: log });
  const store = new CachedEntityStore(redisStore);
  const sink = new ClickHouseSink({ url: res.services.clickhouseUrl, table: res.table, spoolDir: res.dir(`spool-${spec.label}`), logger: log });
  await sink.ensureSchema();
  const close = async (): Promise<void> => {
    for (const c of [{ close: () => releases.stop() }, sink, store]) {
      await c.close().catch((err: unknown) => log.warn('close failed', { error: errorMessage(err) }));
    }
  };
  return { releases, store, sink, close };
}

/** The worker's cross-side reads so far, from its metrics (thaw_cross_side_reads_total). */
async function crossReadsOf(w: AdaptationWorker): Promise<{ crossRead: number; crossRefused: number }> {
  const values = (await w.metrics.registry.getSingleMetric('thaw_cross_side_reads_total')?.get())?.values ?? [];
  const of = (outcome: string): number => values.filter((v) => v.labels.outcome === outcome).reduce((s, v) => s + v.value, 0);
  return { crossRead: of('read'), crossRefused: of('refused') };
}

/**
 * The workers of `specs` (a group, see plan.ts `groupsOf`) over their side's topic, each until it
 * handled `expected` events. Each worker is built as `thaw run` builds it, but with its consumer
 * built here (the options the worker would give it) behind a gate: every worker of the group joins
 * its consumer group first, then all start handling at once, so that two workers reading each
 * other's states run side by side from the first event, as two deployed workers do.
 */
export async function runKafkaGroup(
  res: CurvesResources,
  specs: readonly WorkerSpec[],
  refFor: (spec: WorkerSpec) => ReleaseRef,
  topicOf: (spec: WorkerSpec) => string,
  expected: number,
  log: Logger,
  timeoutMs: number,
  /** @default the BatchConsumer default, as `thaw run` */
  maxBatchMessages?: number,
): Promise<WorkerRun[]> {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolveGate) => {
    open = resolveGate;
  });
  const parts: { spec: WorkerSpec; namespace: string; worker: AdaptationWorker; producer: EventProducer; close: () => Promise<void>; sink: ClickHouseSink }[] = [];
  try {
    for (const spec of specs) {
      const wlog = log.child({ worker: spec.label });
      const namespace = namespaceOf(res.id, spec);
      const c = await buildClients(res, spec, refFor(spec), wlog);
      const producer = new EventProducer({ kafka: res.services.kafka, logger: wlog });
      try {
        const dlq = res.topic(`dlq-${spec.label}`);
        await ensureTopics(res.services.kafka, [{ topic: dlq, partitions: 1 }], wlog);
        await producer.connect();
        const groupId = res.group(spec.label);
        const topic = topicOf(spec);
        const consumer = new BatchConsumer({
          kafka: res.services.kafka,
          groupId,
          topics: [topic],
          fromBeginning: true,
          pipelineDepth: DEFAULT_WORKER_PIPELINE_DEPTH,
          ...(maxBatchMessages === undefined ? {} : { maxBatchMessages }),
          logger: wlog,
        });
        const worker = new AdaptationWorker({
          kafka: res.services.kafka,
          side: spec.side,
          releaseWatcher: c.releases,
          store: c.store,
          sink: c.sink,
          deadLetters: new DeadLetterWriter(producer, dlq),
          namespace,
          ...(spec.cross ? { crossAdapter: CROSS_ADAPTER } : {}),
          groupId,
          topic,
          fromBeginning: true,
          metricsPort: 0,
          source: {
            start: (handler) =>
              consumer.start(async (batch) => {
                await gate;
                await handler(batch);
              }),
            stop: () => consumer.stop(),
            lag: () => consumer.lag(),
          },
          logger: wlog,
        });
        parts.push({ spec, namespace, worker, producer, close: c.close, sink: c.sink });
      } catch (err) {
        await producer.close().catch(() => undefined);
        await c.close();
        throw err;
      }
    }
    for (const p of parts) await p.worker.start();
    open();
    return await Promise.all(
      parts.map(async ({ spec, namespace, worker: w, sink }) => {
        // Timed from the first handled batch (the group join is not the adapter's cost) to the last.
        let firstAt: number | undefined;
        await waitFor(
          spec.label,
          () => {
            const st = w.stats();
            if (firstAt === undefined && st.processed + st.skipped > 0) firstAt = performance.now();
            return st.processed + st.skipped + st.deadLetters >= expected;
          },
          () => (w.state === 'FAILED' ? `worker failed: ${errorMessage(w.error)}` : w.stats().deadLetters > 0 ? `${w.stats().deadLetters} dead letters` : undefined),
          timeoutMs,
        );
        const ms = performance.now() - (firstAt ?? performance.now());
        const release = w.adapter.release;
        const cross = await crossReadsOf(w);
        await w.drain();
        await sink.flush();
        return { spec, transport: 'kafka' as const, namespace, release, ...timing(w.stats().processed, ms), ...cross };
      }),
    );
  } finally {
    open();
    for (const p of parts) {
      if (p.worker.state === 'RUNNING') await p.worker.stop().catch(() => undefined);
      await p.producer.close().catch(() => undefined);
      await p.close();
    }
  }
}

/**
 * The same adapters, store and sink through BatchProcessor: the workers of `specs` (a group, see
 * plan.ts `groupsOf`) in lockstep over `events` in micro-batches of `batch` (offsets = stream
 * positions), at most `limit` of them: each micro-batch is prepared by every worker, then persisted
 * by every worker, so a cross-reading worker sees the other side's states as the previous
 * micro-batch left them. Each run's events/s is over the group's wall time.
 */
export async function runDirectGroup(
  res: CurvesResources,
  specs: readonly WorkerSpec[],
  refOf: (spec: WorkerSpec) => ReleaseRef,
  events: AsyncIterable<LabelledEvent> | Iterable<LabelledEvent>,
  limit: number,
  log: Logger,
  batch: number = DEFAULT_DIRECT_BATCH,
): Promise<WorkerRun[]> {
  const glog = log.child({ workers: specs.map((s) => s.label).join(',') });
  const workers: {
    spec: WorkerSpec;
    namespace: string;
    processor: BatchProcessor;
    close: () => Promise<void>;
    flush: () => Promise<void>;
    processed: number;
    crossRead: number;
    crossRefused: number;
  }[] = [];
  try {
    for (const spec of specs) {
      const namespace = namespaceOf(res.id, spec);
      const c = await buildClients(res, spec, refOf(spec), glog.child({ worker: spec.label }));
      workers.push({ spec, namespace, processor: directProcessor(c, spec, namespace, glog), close: c.close, flush: () => c.sink.flush(), processed: 0, crossRead: 0, crossRefused: 0 });
    }
    const t0 = performance.now();
    let n = 0;
    let items: BatchItem[] = [];
    let lastLog = t0;
    const step = async (): Promise<void> => {
      const prepared: PreparedBatch[] = [];
      for (const w of workers) prepared.push(await w.processor.prepare(items));
      for (const [i, w] of workers.entries()) {
        const r = await w.processor.persist(prepared[i] as PreparedBatch);
        w.processed += r.processed;
        w.crossRead += r.crossRead;
        w.crossRefused += r.crossRefused;
      }
      items = [];
    };
    for await (const event of events) {
      if (n >= limit) break;
      items.push({ offset: n++, event });
      if (items.length === batch) {
        await step();
        if (performance.now() - lastLog > 30_000) {
          lastLog = performance.now();
          glog.info('direct progress', { events: n, of: limit, perSec: Math.round(n / ((lastLog - t0) / 1000)) });
        }
      }
    }
    if (items.length > 0) await step();
    for (const w of workers) await w.flush();
    const ms = performance.now() - t0;
    return workers.map((w) => ({
      spec: w.spec,
      transport: 'direct',
      namespace: w.namespace,
      release: w.processor.adapter.release,
      ...timing(w.processed, ms),
      crossRead: w.crossRead,
      crossRefused: w.crossRefused,
    }));
  } finally {
    for (const w of workers) await w.close();
  }
}

/** A worker's BatchProcessor over its watcher's active release (the state epoch and the cross-side read as the worker would). */
function directProcessor(c: Awaited<ReturnType<typeof buildClients>>, spec: WorkerSpec, namespace: string, log: Logger): BatchProcessor {
  const active = c.releases.activeRelease();
  if (active === undefined) throw new ThawError('RELEASE_NOT_FOUND', `no active release for ${spec.label}`);
  const { adapter, stateEpoch, crossEpoch } = active.value;
  const other = spec.side === 'user' ? 'item' : 'user';
  return new BatchProcessor({
    adapter,
    store: c.store,
    sink: c.sink,
    scope: { namespace, side: spec.side, adapter: adapter.name },
    stateScope: { namespace, side: spec.side, adapter: epochAdapterSegment(adapter.name, stateEpoch) },
    ...(spec.cross ? { cross: { scope: { namespace, side: other, adapter: epochAdapterSegment(CROSS_ADAPTER, crossEpoch) } } } : {}),
    logger: log,
  });
}
