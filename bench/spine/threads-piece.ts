/**
 * One worker thread of bench/spine/threads.ts: the spine's pieces run by thread `index` of
 * `threads`, step by step as the main thread says (a barrier per step, so the threads of a step
 * start together):
 *   kafka   a BatchConsumer in the step's shared group decoding every message (the Kafka + decode
 *           ceiling), until the main thread has seen the group's lag 0 and says stop;
 *   record  (untimed) the whole topic drained in a private group, chunks kept as delivered; this
 *           thread keeps the partitions p with p % threads = index, as Kafka would roughly assign;
 *   adapt, redis, sink  the replay ceilings of ceilings.ts over those chunks;
 *   e2e     an AdaptationWorker wired as `thaw run` wires it, in the step's shared group, key prefix
 *           and table, until the main thread has seen lag 0.
 * Times cross threads as unix ms with sub-ms precision (performance.timeOrigin + performance.now()).
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { Adapter } from '../../adapters/types.js';
import { ClickHouseSink } from '../../analytics/clickhouse-sink.js';
import { AdaptationWorker } from '../../consumers/worker.js';
import { silentLogger } from '../../lib/log.js';
import { CachedEntityStore } from '../../model-store/cached-store.js';
import { RedisEntityStore } from '../../model-store/redis-store.js';
import { FactorizationMachine } from '../../models/fm.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { BatchConsumer } from '../../streams/batch-consumer.js';
import { DeadLetterWriter } from '../../streams/dead-letters.js';
import { EventProducer } from '../../streams/producer.js';
import { decodeLabelled } from '../../streams/serde.js';
import { buildBenchAdapter, type BenchAdapterName } from './adapters.js';
import { ceilingAdapt, ceilingKafka, ceilingRedis, ceilingSink, decodeBatches, shapeOf, type DecodedBatch } from './ceilings.js';
import { BenchResources, benchSource, type Services } from './fixtures.js';
import { TimedSource } from './instrument.js';

export interface PieceData {
  index: number;
  threads: number;
  services: Services;
  adapter: BenchAdapterName;
  topic: string;
  events: number;
  batch: number;
  /** FactorizationMachine.toBuffer() of the shared FM. */
  fm: Uint8Array;
  /** Events the neural adapters infer their layout from. */
  layoutSample: number;
}

/** A step the main thread asks for; shared names are the main thread's (it removes them). */
export type PieceStep =
  | { step: 'kafka'; group: string; topicOf: string }
  | { step: 'record' }
  | { step: 'adapt' | 'redis' | 'sink' }
  | { step: 'e2e'; group: string; redisPrefix: string; table: string; dlqTopic: string; topicOf: string }
  | { step: 'exit' };

export type PieceMessage =
  | { kind: 'ready' }
  /** A replay step's own wall time (they start together at 'go'). */
  | { kind: 'done'; count: number; ms: number }
  /** A consuming step's first chunk (unix ms; NaN: none) and events it handled. */
  | { kind: 'consumed'; firstAtMs: number; count: number }
  | { kind: 'failed'; error: string };

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('bench/spine/threads-piece.ts runs as a worker thread');
  const data = workerData as PieceData;
  const send = (m: PieceMessage): void => port.postMessage(m);
  const inbox: unknown[] = [];
  let wake: (() => void) | undefined;
  port.on('message', (m: unknown) => {
    inbox.push(m);
    wake?.();
  });
  const next = async (): Promise<unknown> => {
    while (inbox.length === 0) await new Promise<void>((r) => (wake = r));
    return inbox.shift();
  };
  const res = new BenchResources(data.services);
  const fm = FactorizationMachine.fromBuffer(Buffer.from(data.fm));
  const sample = [...syntheticStream(benchSource(Math.min(data.events, data.layoutSample))).events()];
  const adapter: Adapter = await buildBenchAdapter(data.adapter, fm, sample);
  let mine: DecodedBatch[] = [];
  let partitions = 1;
  try {
    for (;;) {
      const s = (await next()) as PieceStep;
      if (s.step === 'exit') break;
      if (s.step === 'record') {
        const rec = await ceilingKafka(data.services.kafka, data.topic, res.group(`record-${data.index}`), data.events, data.batch, 'record', true);
        mine = decodeBatches(rec.batches.filter((b) => b.partition % data.threads === data.index));
        partitions = Math.max(1, new Set(mine.map((b) => b.partition)).size);
        send({ kind: 'done', count: mine.reduce((n, b) => n + b.items.length, 0), ms: 0 });
      } else if (s.step === 'kafka' || s.step === 'e2e') {
        send(await consume(s, data, adapter, next, send));
      } else {
        send({ kind: 'ready' });
        await next(); // go
        const r =
          s.step === 'adapt'
            ? await ceilingAdapt(adapter, mine, data.topic, partitions)
            : s.step === 'redis'
              ? await ceilingRedis(data.services, res, shapeOf(adapter), mine, data.topic, partitions)
              : await ceilingSink(data.services, res, shapeOf(adapter), mine, data.topic, partitions, silentLogger);
        send({ kind: 'done', count: r.count, ms: r.ms });
      }
    }
  } catch (err) {
    send({ kind: 'failed', error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  } finally {
    adapter.dispose?.();
    await res.cleanup(silentLogger);
  }
}

/** Kafka + decode or end to end in the step's shared group, until the main thread says stop. */
async function consume(s: Extract<PieceStep, { step: 'kafka' | 'e2e' }>, data: PieceData, adapter: Adapter, next: () => Promise<unknown>, send: (m: PieceMessage) => void): Promise<PieceMessage> {
  const consumer = new BatchConsumer({ kafka: data.services.kafka, groupId: s.group, topics: [data.topic], fromBeginning: true, maxBatchMessages: data.batch });
  const source = new TimedSource(consumer);
  if (s.step === 'kafka') {
    send({ kind: 'ready' });
    await next(); // go
    await source.start((b) => {
      const nowMs = Date.now();
      for (const m of b.messages) if (m.value !== null) decodeLabelled(m.value, nowMs);
      return Promise.resolve();
    });
    await next(); // stop
    await source.stop();
  } else {
    const store = new CachedEntityStore(new RedisEntityStore({ redis: { url: data.services.redisUrl }, keyPrefix: s.redisPrefix }));
    const sink = new ClickHouseSink({ url: data.services.clickhouseUrl, table: s.table, spoolDir: join(tmpdir(), `thaw-bench-threads-${s.table}-${data.index}`) });
    const producer = new EventProducer({ kafka: data.services.kafka });
    await sink.ensureSchema();
    await producer.connect();
    const worker = new AdaptationWorker({
      kafka: data.services.kafka,
      side: adapter.side,
      adapter,
      store,
      sink,
      deadLetters: new DeadLetterWriter(producer, s.dlqTopic),
      namespace: 'bench',
      groupId: s.group,
      topic: data.topic,
      maxBatchMessages: data.batch,
      metricsPort: 0,
      metricsOptions: { serve: false, processMetrics: false },
      source,
    });
    send({ kind: 'ready' });
    await next(); // go
    await worker.start();
    await next(); // stop
    await worker.drain();
    for (const c of [producer, sink, store]) await c.close();
  }
  return { kind: 'consumed', firstAtMs: Number.isNaN(source.firstBatchAt) ? Number.NaN : performance.timeOrigin + source.firstBatchAt, count: source.events };
}

await main();
// Ends this thread even if a client left a handle open (the inbox listener alone would keep it alive).
process.exit(0);
