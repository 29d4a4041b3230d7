import { z } from 'zod';
import { logLevel, namespaceName, nonNegativeInt, path, port, positiveInt } from '../fields.js';
import { kafkaSchema, redisSchema } from '../connections.js';
import { FLAGS, releaseDir, KAFKA_FLAGS, REDIS_FLAGS } from '../common.js';
import type { CommandSpec } from '../types.js';

export const serveSchema = z
  .object({
    kafka: kafkaSchema,
    redis: redisSchema,
    releaseDir,
    demo: z
      .boolean()
      .default(false)
      .describe('Serve what `thaw demo` left in --out (its FM release and fm-adagrad states), with no services: no Redis, no Kafka. @default false'),
    out: path.default('.thaw/demo').describe('With --demo: the demo\'s output directory. @default .thaw/demo'),
    model: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a model name')
      .default('fm')
      .describe("FM model in the release directory whose current release is served (the fm-adagrad workers' model); followed live like the workers do. @default fm"),
    namespace: namespaceName.default('live').describe('State namespace the workers write (env THAW_NAMESPACE). @default live'),
    host: z.string().min(1).default('127.0.0.1').describe('Address to listen on. @default 127.0.0.1'),
    port: port.default(8080).describe('HTTP port (0: any free port, printed at start). @default 8080'),
    processes: positiveInt
      .max(64)
      .default(1)
      .describe('Server processes sharing the port (node:cluster; each with its own cache and Redis connection); a process that dies is replaced (count). @default 1'),
    releasePollMs: positiveInt.min(100).default(10_000).describe('How often the release directory is checked for a newly promoted release (ms); announcements on thaw.releases are taken at once. @default 10000'),
    releaseAnnouncements: z.boolean().default(true).describe('Listen to release announcements on Kafka (thaw.releases); off: poll only, no Kafka needed. @default true'),
    maxCandidates: positiveInt.max(100_000).default(1000).describe('Most candidates in one request (count). @default 1000'),
    bodyLimitBytes: positiveInt.min(1024).default(1_048_576).describe('Largest request body (bytes); larger is a 413. @default 1048576'),
    freshnessMs: nonNegativeInt.default(1000).describe('Freshness bound of the in-process state cache (ms): a state is served from cache for at most this long after it was read from Redis. @default 1000'),
    cacheEntries: positiveInt.min(1024).default(262_144).describe('States held by the in-process cache (count; preallocated). @default 262144'),
    fetchConcurrency: positiveInt.max(256).default(4).describe('Coalesced MGETs in flight at once (count). @default 4'),
    fetchTimeoutMs: positiveInt.default(25).describe('A state read slower than this scores its entities shared-only (ms). @default 25'),
    modelMaxBatch: positiveInt.default(64).describe('Most requests in one model micro-batch (count). @default 64'),
    modelMaxWaitMs: z.number().min(0).max(1000).default(0).describe('How long the model stage waits to fill a micro-batch (ms); 0: the next turn of the event loop. @default 0'),
    maxInFlight: positiveInt.default(2048).describe('Admitted, unanswered requests over all stages (count): the bound of the queues. @default 2048'),
    deadlineMs: positiveInt.default(50).describe('Deadline of a request without an x-deadline-ms header (ms); admission refuses (503) a request that cannot meet it. @default 50'),
    safeguard: z
      .enum(['item', 'user', 'off'])
      .default('item')
      .describe("Whose worker's safeguard mixes the adapted score with the release's baseline, as that worker logs it: item (by the candidate's warm-up bucket), user, or off (the adapted score alone). @default item"),
    safeguardPartitions: positiveInt
      .optional()
      .describe('Partitions of the labelled topic of the --safeguard side (the safeguard keeps one state per partition). @default read from Kafka (thaw.labelled.by-<side>)'),
    logLevel,
  })
  .strict();

export type ServeConfig = z.output<typeof serveSchema>;

export const serveSpec: CommandSpec<typeof serveSchema> = {
  name: 'serve',
  summary: 'scoring API: POST /v1/score with the workers\' fresh entity states from Redis (staged pipeline, load shedding)',
  schema: serveSchema,
  flags: [
    ...KAFKA_FLAGS,
    ...REDIS_FLAGS,
    FLAGS.redisCluster,
    FLAGS.releaseDir,
    { flag: 'demo', key: 'demo', kind: 'boolean' },
    { flag: 'out', key: 'out', kind: 'string', meta: 'DIR' },
    { flag: 'model', key: 'model', kind: 'string', meta: 'NAME' },
    FLAGS.namespace,
    { flag: 'host', key: 'host', kind: 'string', meta: 'ADDR' },
    { flag: 'port', key: 'port', kind: 'int', meta: 'PORT' },
    { flag: 'processes', key: 'processes', kind: 'int', meta: 'N' },
    { flag: 'release-poll-ms', key: 'releasePollMs', kind: 'int', meta: 'MS' },
    { flag: 'release-announcements', key: 'releaseAnnouncements', kind: 'boolean' },
    { flag: 'max-candidates', key: 'maxCandidates', kind: 'int', meta: 'N' },
    { flag: 'body-limit', key: 'bodyLimitBytes', kind: 'int', meta: 'BYTES' },
    { flag: 'freshness-ms', key: 'freshnessMs', kind: 'int', meta: 'MS' },
    { flag: 'cache-entries', key: 'cacheEntries', kind: 'int', meta: 'N' },
    { flag: 'fetch-concurrency', key: 'fetchConcurrency', kind: 'int', meta: 'N' },
    { flag: 'fetch-timeout-ms', key: 'fetchTimeoutMs', kind: 'int', meta: 'MS' },
    { flag: 'model-max-batch', key: 'modelMaxBatch', kind: 'int', meta: 'N' },
    { flag: 'model-max-wait-ms', key: 'modelMaxWaitMs', kind: 'number', meta: 'MS' },
    { flag: 'max-in-flight', key: 'maxInFlight', kind: 'int', meta: 'N' },
    { flag: 'deadline-ms', key: 'deadlineMs', kind: 'int', meta: 'MS' },
    { flag: 'safeguard', key: 'safeguard', kind: 'string', meta: 'item|user|off' },
    { flag: 'safeguard-partitions', key: 'safeguardPartitions', kind: 'int', meta: 'N' },
    FLAGS.logLevel,
  ],
  notes:
    'Serves the current release of --model (an fm release) with the states the fm-adagrad workers of --namespace write\n' +
    'to Redis, following new releases as the workers do. A served score equals the worker\'s logged prediction for the\n' +
    'same states (the --safeguard side\'s worker). SIGTERM/SIGINT: stop accepting, answer what is in flight, exit 0.\n' +
    '--demo serves what `thaw demo` left in --out instead (its last FM release, its fm-adagrad states in memory):\n' +
    'thaw demo --quick && thaw serve --demo, then POST /v1/score.',
};
