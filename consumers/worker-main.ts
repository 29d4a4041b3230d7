/**
 * A worker in its own process: `node --import tsx consumers/worker-main.ts '<json>'` (or `@file.json`,
 * or the JSON in env THAW_WORKER_OPTIONS). Builds the Kafka, Redis and ClickHouse clients from the
 * options, runs an AdaptationWorker, drains on SIGTERM/SIGINT and exits 0 (1 if the worker failed).
 * With `untilEnd` it also drains and exits 0 once the group has committed the topic up to its end
 * offsets as they were at start (consumers/until-end.ts).
 * Used by the fault tests (kill -9, restarts); `thaw run` is the user-facing equivalent.
 *
 * The shared FM comes from `model` (a file or a seeded untrained one), or, with `releaseDir`, from the
 * current release of `releaseModel` in that release store, followed live: polled every
 * `releasePollMs`, and checked at once on an announcement on the Kafka topic `releaseTopic` and/or
 * the Redis pointer channel (`releaseRedisPrefix`), see consumers/release-adapter.ts.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { createAdapter } from '../adapters/registry.js';
import { ClickHouseSink } from '../analytics/clickhouse-sink.js';
import { ConfigError, errorMessage } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { FactorizationMachine } from '../models/fm.js';
import { createRedis } from '../model-store/redis.js';
import { RedisEntityStore } from '../model-store/redis-store.js';
import type { ReleaseWatcher } from '../model-store/release-sync.js';
import { ReleaseStore } from '../model-store/releases.js';
import { DeadLetterWriter } from '../streams/dead-letters.js';
import { EventProducer } from '../streams/producer.js';
import { TOPICS } from '../streams/topics.js';
import { createAdapterReleaseWatcher, type ReleasedAdapter } from './release-adapter.js';
import { AdaptationWorker, installSignalHandlers } from './worker.js';

export const workerMainSchema = z
  .object({
    kafka: z.object({ brokers: z.array(z.string().min(1)).min(1), clientId: z.string().min(1).optional() }).strict(),
    redis: z.object({ url: z.string().min(1), keyPrefix: z.string().min(1).default('thaw'), /** A Redis Cluster seed node. @default false */ cluster: z.boolean().default(false) }).strict(),
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
    /** The shared FM: a file written by FactorizationMachine.toBuffer, or an untrained seeded one. Exactly one of `model` and `releaseDir`. */
    model: z
      .union([z.object({ path: z.string().min(1) }).strict(), z.object({ buckets: z.number().int().positive(), k: z.number().int().positive(), seed: z.number().int().default(1) }).strict()])
      .optional(),
    /** Release store root: run the current release of `releaseModel` and follow new ones. */
    releaseDir: z.string().min(1).optional(),
    /** Model name in the release store. @default 'fm' */
    releaseModel: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a model name')
      .default('fm'),
    /** Interval between polls of the release store, ms. @default 60000 */
    releasePollMs: z.number().int().min(10).default(60_000),
    /** Kafka topic of release announcements to listen to (e.g. 'thaw.releases'). @default none */
    releaseTopic: z.string().min(1).optional(),
    /** Key prefix of the Redis release pointer to subscribe to (`${prefix}:release:${model}`). @default none */
    releaseRedisPrefix: z.string().min(1).optional(),
    namespace: z.string().min(1).default('live'),
    /** The other side's adapter to score with (cross-side read, base state epoch). @default none: the other side cold */
    crossAdapter: z.string().min(1).optional(),
    groupId: z.string().min(1).optional(),
    topic: z.string().min(1).optional(),
    deadLetterTopic: z.string().min(1).default(TOPICS.deadLetters),
    fromBeginning: z.boolean().default(true),
    /** Drain and exit 0 once the group committed every partition up to its end offset at start. @default false */
    untilEnd: z.boolean().default(false),
    /** With untilEnd: time between checks of the committed offsets, ms. @default 1000 */
    untilEndPollMs: z.number().int().min(10).optional(),
    maxBatchMessages: z.number().int().positive().optional(),
    /** The worker's pipelineDepth. @default DEFAULT_WORKER_PIPELINE_DEPTH */
    pipelineDepth: z.number().int().min(1).max(16).optional(),
    /** The worker's fetchAhead. @default DEFAULT_WORKER_FETCH_AHEAD */
    fetchAhead: z.boolean().optional(),
    /** Consumer group session timeout, ms (how soon a killed worker's partitions move). */
    sessionTimeoutMs: z.number().int().min(6000).optional(),
    heartbeatIntervalMs: z.number().int().min(100).optional(),
    /** 0 disables the metrics endpoint. */
    metricsPort: z.number().int().min(0).max(65535).default(0),
    logLevel: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info'),
  })
  .strict()
  .superRefine((o, ctx) => {
    if ((o.model === undefined) === (o.releaseDir === undefined)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['model'], message: 'give exactly one of model and releaseDir' });
    }
    if (o.releaseDir === undefined && (o.releaseTopic !== undefined || o.releaseRedisPrefix !== undefined)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['releaseDir'], message: 'is required with releaseTopic / releaseRedisPrefix' });
    }
  });

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
  const logger = createLogger(opts.logLevel, { proc: 'worker', pid: process.pid });
  const kafka = { brokers: opts.kafka.brokers, ...(opts.kafka.clientId === undefined ? {} : { clientId: opts.kafka.clientId }) };
  const releases = opts.releaseDir === undefined ? undefined : await startReleaseWatcher(opts, kafka, logger);
  const adapter = releases === undefined ? createAdapter(opts.adapter, opts.side, fixedModel(opts)) : undefined;
  const store = new RedisEntityStore({ redis: { url: opts.redis.url, cluster: opts.redis.cluster }, keyPrefix: opts.redis.keyPrefix, logger });
  const sink = new ClickHouseSink({
    url: opts.clickhouse.url,
    database: opts.clickhouse.database,
    table: opts.clickhouse.table,
    spoolDir: opts.clickhouse.spoolDir,
    logger,
  });
  const producer = new EventProducer({ kafka, logger });
  // Once only: the signal handler and the end of the run may both close.
  let closing: Promise<void> | undefined;
  const closeAll = (): Promise<void> => (closing ??= closeClients());
  const closeClients = async (): Promise<void> => {
    if (releases !== undefined) {
      try {
        await releases.watcher.stop();
      } catch (err) {
        logger.warn('release watcher stop failed', { error: errorMessage(err) });
      }
      releases.redis?.disconnect();
    }
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
      ...(adapter === undefined ? {} : { adapter }),
      ...(releases === undefined ? {} : { releaseWatcher: releases.watcher }),
      store,
      sink,
      deadLetters: new DeadLetterWriter(producer, opts.deadLetterTopic),
      namespace: opts.namespace,
      ...(opts.crossAdapter === undefined ? {} : { crossAdapter: opts.crossAdapter }),
      fromBeginning: opts.fromBeginning,
      untilEnd: opts.untilEnd,
      metricsPort: opts.metricsPort,
      logger,
      ...(opts.untilEndPollMs === undefined ? {} : { untilEndPollMs: opts.untilEndPollMs }),
      ...(opts.groupId === undefined ? {} : { groupId: opts.groupId }),
      ...(opts.topic === undefined ? {} : { topic: opts.topic }),
      ...(opts.maxBatchMessages === undefined ? {} : { maxBatchMessages: opts.maxBatchMessages }),
      ...(opts.pipelineDepth === undefined ? {} : { pipelineDepth: opts.pipelineDepth }),
      ...(opts.fetchAhead === undefined ? {} : { fetchAhead: opts.fetchAhead }),
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
  logger.info('worker-main started', { groupId: worker.groupId, topic: worker.topic, release: worker.adapter.release });
  // Stopped by a signal (the handler exits too, with the same code), by the end of the topic
  // (untilEnd), or by a failure: close what this process built and exit with the verdict.
  const final = await worker.whenStopped();
  await closeAll();
  process.exit(final === 'FAILED' ? 1 : 0);
}

type MainOptions = z.output<typeof workerMainSchema>;

function fixedModel(opts: MainOptions): FactorizationMachine {
  const m = opts.model;
  if (m === undefined) throw new ConfigError('model', 'is required without releaseDir');
  return 'path' in m ? FactorizationMachine.fromBuffer(readFileSync(m.path)) : FactorizationMachine.create({ buckets: m.buckets, k: m.k, seed: m.seed });
}

/** Builds and starts the release watcher (and the Redis client its pointer subscription duplicates). */
async function startReleaseWatcher(
  opts: MainOptions,
  kafka: { brokers: string[]; clientId?: string },
  logger: ReturnType<typeof createLogger>,
): Promise<{ watcher: ReleaseWatcher<ReleasedAdapter>; redis: ReturnType<typeof createRedis> | undefined }> {
  const redis = opts.releaseRedisPrefix === undefined ? undefined : createRedis({ url: opts.redis.url, cluster: opts.redis.cluster }, logger);
  try {
    const watcher = await createAdapterReleaseWatcher({
      store: new ReleaseStore({ root: opts.releaseDir as string }),
      model: opts.releaseModel,
      adapter: opts.adapter,
      side: opts.side,
      pollIntervalMs: opts.releasePollMs,
      logger,
      ...(opts.releaseTopic === undefined ? {} : { kafka: { connection: kafka, topic: opts.releaseTopic } }),
      ...(redis === undefined || opts.releaseRedisPrefix === undefined ? {} : { redis: { client: redis, prefix: opts.releaseRedisPrefix } }),
    });
    try {
      await watcher.start();
    } catch (err) {
      await watcher.stop();
      throw err;
    }
    return { watcher, redis };
  } catch (err) {
    redis?.disconnect();
    throw err;
  }
}

// Run only as an entry point, so tests can import parseWorkerMainOptions.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'worker-main failed', error: errorMessage(err), code: (err as { code?: unknown }).code })}\n`);
    process.exit(1);
  });
}
