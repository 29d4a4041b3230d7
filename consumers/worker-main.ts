/**
 * A worker in its own process: `node --import tsx consumers/worker-main.ts '<json>'` (or `@file.json`,
 * or the JSON in env THAW_WORKER_OPTIONS). Builds the Kafka, Redis and ClickHouse clients from the
 * options, runs an AdaptationWorker, drains on SIGTERM/SIGINT and exits 0 (1 if the worker failed).
 * Used by the fault tests (kill -9, restarts); `thaw run` is the user-facing equivalent.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { createAdapter } from '../adapters/registry.js';
import { ClickHouseSink } from '../analytics/clickhouse-sink.js';
import { ConfigError, errorMessage } from '../lib/errors.js';
import { createLogger, type LogLevel } from '../lib/log.js';
import { FactorizationMachine } from '../models/fm.js';
import { RedisEntityStore } from '../model-store/redis-store.js';
import { DeadLetterWriter } from '../streams/dead-letters.js';
import { EventProducer } from '../streams/producer.js';
import { TOPICS } from '../streams/topics.js';
import { AdaptationWorker, installSignalHandlers } from './worker.js';

export const workerMainSchema = z
  .object({
    kafka: z.object({ brokers: z.array(z.string().min(1)).min(1), clientId: z.string().min(1).optional() }).strict(),
    redis: z.object({ url: z.string().min(1), keyPrefix: z.string().min(1).default('thaw') }).strict(),
    clickhouse: z
      .object({
        url: z.string().min(1),
        database: z.string().min(1).default('thaw'),
        table: z.string().min(1).default('predictions'),
        /** Directory of the outage spool. */
        spoolDir: z.string().min(1),
      })
      .strict(),
    side: z.enum(['user', 'item']),
    adapter: z.string().min(1).default('fm-adagrad'),
    /** The shared FM: a file written by FactorizationMachine.toBuffer, or an untrained seeded one. */
    model: z.union([
      z.object({ path: z.string().min(1) }).strict(),
      z.object({ buckets: z.number().int().positive(), k: z.number().int().positive(), seed: z.number().int().default(1) }).strict(),
    ]),
    namespace: z.string().min(1).default('live'),
    groupId: z.string().min(1).optional(),
    topic: z.string().min(1).optional(),
    deadLetterTopic: z.string().min(1).default(TOPICS.deadLetters),
    fromBeginning: z.boolean().default(true),
    maxBatchMessages: z.number().int().positive().optional(),
    /** Consumer group session timeout, ms (how soon a killed worker's partitions move). */
    sessionTimeoutMs: z.number().int().min(6000).optional(),
    heartbeatIntervalMs: z.number().int().min(100).optional(),
    /** 0 disables the metrics endpoint. */
    metricsPort: z.number().int().min(0).max(65535).default(0),
    logLevel: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  })
  .strict();

export type WorkerMainOptions = z.input<typeof workerMainSchema>;

/** Parses the options blob: JSON text, `@path` to a JSON file, or env THAW_WORKER_OPTIONS. */
export function parseWorkerMainOptions(arg: string | undefined, env: NodeJS.ProcessEnv = process.env): z.output<typeof workerMainSchema> {
  const raw = arg ?? env.THAW_WORKER_OPTIONS;
  if (raw === undefined || raw === '') throw new ConfigError('options', 'pass the worker options as JSON (argv[2], @file or env THAW_WORKER_OPTIONS)');
  let json: unknown;
  try {
    json = JSON.parse(raw.startsWith('@') ? readFileSync(raw.slice(1), 'utf8') : raw);
  } catch (err) {
    throw new ConfigError('options', `not valid JSON: ${errorMessage(err)}`, { cause: err });
  }
  const parsed = workerMainSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(issue?.path.join('.') || 'options', issue?.message ?? 'invalid', { cause: parsed.error });
  }
  return parsed.data;
}

async function main(): Promise<void> {
  const opts = parseWorkerMainOptions(process.argv[2]);
  const logger = createLogger(opts.logLevel as LogLevel, { proc: 'worker', pid: process.pid });
  const model =
    'path' in opts.model
      ? FactorizationMachine.fromBuffer(readFileSync(opts.model.path))
      : FactorizationMachine.create({ buckets: opts.model.buckets, k: opts.model.k, seed: opts.model.seed, side: opts.side });
  const adapter = createAdapter(opts.adapter, opts.side, model);
  const store = new RedisEntityStore({ redis: { url: opts.redis.url }, keyPrefix: opts.redis.keyPrefix, logger });
  const sink = new ClickHouseSink({
    url: opts.clickhouse.url,
    database: opts.clickhouse.database,
    table: opts.clickhouse.table,
    spoolDir: opts.clickhouse.spoolDir,
    logger,
  });
  const kafka = { brokers: opts.kafka.brokers, ...(opts.kafka.clientId === undefined ? {} : { clientId: opts.kafka.clientId }) };
  const producer = new EventProducer({ kafka, logger });
  const closeAll = async (): Promise<void> => {
    for (const c of [producer, sink, store] as const) {
      try {
        await c.close();
      } catch (err) {
        logger.warn('close failed', { error: errorMessage(err) });
      }
    }
  };
  let worker: AdaptationWorker;
  try {
    await sink.ensureSchema();
    await producer.connect();
    worker = new AdaptationWorker({
      kafka,
      side: opts.side,
      adapter,
      store,
      sink,
      deadLetters: new DeadLetterWriter(producer, opts.deadLetterTopic),
      namespace: opts.namespace,
      fromBeginning: opts.fromBeginning,
      metricsPort: opts.metricsPort,
      logger,
      ...(opts.groupId === undefined ? {} : { groupId: opts.groupId }),
      ...(opts.topic === undefined ? {} : { topic: opts.topic }),
      ...(opts.maxBatchMessages === undefined ? {} : { maxBatchMessages: opts.maxBatchMessages }),
      consumer: {
        ...(opts.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: opts.sessionTimeoutMs }),
        ...(opts.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: opts.heartbeatIntervalMs }),
      },
    });
  } catch (err) {
    await closeAll();
    throw err;
  }
  // Drain, close the clients this process built, then exit with the worker's verdict.
  installSignalHandlers(worker, {
    logger,
    exit: (code) => {
      closeAll().then(
        () => process.exit(code),
        () => process.exit(code === 0 ? 1 : code),
      );
    },
  });
  await worker.start();
  // Tests wait for this line on stderr... and on the metrics, not on timing.
  logger.info('worker-main started', { groupId: worker.groupId, topic: worker.topic });
  const final = await worker.whenStopped();
  if (final === 'FAILED') {
    await closeAll();
    process.exit(1);
  }
}

// Run only as an entry point, so tests can import parseWorkerMainOptions.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'worker-main failed', error: errorMessage(err), code: (err as { code?: unknown }).code })}\n`);
    process.exit(1);
  });
}
