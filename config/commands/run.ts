import { z } from 'zod';
import { logLevel, namespaceName, nonNegativeInt, port, positiveInt, replicationFactor, side } from '../fields.js';
import { clickhouseSchema, kafkaSchema, redisSchema } from '../connections.js';
import { FLAGS, releaseDir, spoolDir, KAFKA_FLAGS, REDIS_FLAGS, CLICKHOUSE_FLAGS } from '../common.js';
import { ADAPTER_OPTION_FLAGS, adapterOptionsSchema, unreadAdapterSection } from '../adapter-options.js';
import type { CommandSpec } from '../types.js';

/** Adapters `thaw run` accepts: adapters/registry.ts ADAPTER_NAMES (a unit test keeps them equal; not imported here, so `thaw --help` does not load TensorFlow.js). */
/** The worker's consumer group session timeout unless --session-timeout-ms says otherwise. Milliseconds. */
export const DEFAULT_SESSION_TIMEOUT_MS = 8_000;

/** Most `--threads` one `thaw run` accepts. */
export const MAX_RUN_THREADS = 64;

export const RUN_ADAPTERS = ['none', 'fm-adagrad', 'emerg', 'coldnas', 'fixed-adaptive'] as const;

export const runSchema = z
  .object({
    side: side.describe('Side whose entities this worker adapts: item or user (positional).'),
    kafka: kafkaSchema,
    redis: redisSchema,
    clickhouse: clickhouseSchema,
    adapter: z
      .enum(RUN_ADAPTERS)
      .default('fm-adagrad')
      .describe(
        'Adapter, which must run on the type of the --model release: fm releases run none or fm-adagrad; emerg releases (item side) emerg or none; coldnas releases (user side) coldnas or none; fixed-adaptive releases (user side) fixed-adaptive or none. none is the same release with no per-entity adaptation (the baseline of the warm-up curves). @default fm-adagrad',
      ),
    adapterOptions: adapterOptionsSchema,
    crossAdapter: z
      .enum(['auto', 'off', 'fm-adagrad', 'emerg', 'coldnas', 'fixed-adaptive'])
      .default('auto')
      .describe(
        "The other side's adapter whose states this worker scores with (the cross-side read: an item worker scores a user with what the user worker has learned of them, never a state that holds the scored event or a later one). auto: fm-adagrad (the two-sided FM's workers; none reads nothing); off: score the other side's entities cold. @default auto",
      ),
    crossModel: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a model name')
      .optional()
      .describe("Release model of --cross-adapter's states in --release-dir (their state epoch follows its current release). @default --model when the partner is this worker's own adapter, else fm"),
    releaseDir,
    model: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a model name')
      .default('fm')
      .describe(
        'Model name in the release directory whose current release is loaded; its type (fm, emerg, coldnas, fixed-adaptive) must match --adapter and stays fixed while the worker runs (a release of another type is refused, the one in use stays). @default fm',
      ),
    releasePollMs: positiveInt
      .min(1_000)
      .default(60_000)
      .describe('How often the worker checks the release directory for a newly promoted release (ms); announcements on thaw.releases are picked up at once. @default 60000'),
    namespace: namespaceName.default('live').describe('State and analytics namespace (env THAW_NAMESPACE). @default live'),
    metricsPort: port.default(9464).describe('Prometheus metrics and /healthz port; 0: any free port, logged at start (several workers on one host) (env THAW_METRICS_PORT). @default 9464'),
    metricsHost: z.string().min(1).default('127.0.0.1').describe("Interface of the metrics endpoint; '0.0.0.0' when Prometheus scrapes from another host (env THAW_METRICS_HOST). @default 127.0.0.1"),
    spoolDir,
    groupId: z.string().min(1).optional().describe('Consumer group. @default thaw-<side>-<adapter>-<namespace>'),
    topic: z.string().min(1).optional().describe('Topic to consume. @default thaw.labelled.by-<side>'),
    fromBeginning: z.boolean().default(true).describe('A new consumer group starts at the earliest retained event (else at new events only). @default true'),
    untilEnd: z
      .boolean()
      .default(false)
      .describe(
        "Exit 0 once the topic is processed up to its end as it was at start: every partition's end offset is snapshotted when the worker starts, and once the group's committed offsets reached them all the worker drains as on SIGTERM (batch in flight committed, sink flushed). Events produced later are left for the next run; a topic with nothing to consume exits at once. For backfills and evaluations. @default false",
      ),
    maxBatchMessages: positiveInt.optional().describe('Largest micro-batch (messages). @default the consumer default (5000)'),
    partitionsConcurrency: positiveInt
      .max(256)
      .optional()
      .describe(
        'Partitions whose micro-batches are processed at the same time (1..256). Safe because the topic is keyed by the entity: concurrent batches touch disjoint entities, each partition keeps its order and commits its own offsets. Use 1 for a topic not keyed by this side. @default every partition of the topic',
      ),
    pipelineDepth: positiveInt
      .max(16)
      .default(1)
      .describe(
        'Micro-batches of one partition in flight at once (1..16): the next is prepared (load, score, adapt) while the previous is written (rows, then states); commits stay in order. 2 measured no faster than 1 on a 2-core host (bench/README.md). @default 1',
      ),
    fetchAhead: z
      .boolean()
      .default(false)
      .describe(
        "Fetch a partition's next events while its previous micro-batches are being made durable (at most --pipeline-depth in flight), instead of after: shortens the wait for kafkajs' fetch round; commits still only after durability, a failed micro-batch is refetched. With --pipeline-depth 1 it lowered p99 by about a quarter on a loaded 2-core host (with 2 it was worse); throughput not measured cleanly yet (bench/README.md, latency at 50 % load). @default false",
      ),
    sessionTimeoutMs: positiveInt
      .min(6_000, 'expected at least 6000 (the broker default group.min.session.timeout.ms)')
      .max(300_000, 'expected at most 300000')
      .default(DEFAULT_SESSION_TIMEOUT_MS)
      .describe(
        "Kafka consumer group session timeout (ms): after a crash (kill -9, lost host) the worker's partitions move to another worker after this long, so a replacement resumes within about a second more (bench/README.md, failover). Heartbeats go every tenth of it, also while a micro-batch runs; a slow adapter's micro-batch yields to them between waves. Raise it on hosts whose event loop stalls for seconds. 6000..300000. @default 8000",
      ),
    heartbeatIntervalMs: positiveInt.min(100).optional().describe('Consumer group heartbeat interval (ms), at most a third of the session timeout. @default a tenth of --session-timeout-ms'),
    drainTimeoutMs: positiveInt
      .min(1_000, 'expected at least 1000')
      .max(3_600_000, 'expected at most 3600000 (1 hour)')
      .default(30_000)
      .describe(
        'Deadline of a drain (SIGTERM/SIGINT, or the end of the topic with --until-end), from its start (ms). Past it the worker exits 1 without waiting any longer, saying how much stays in the disk spool (rows already durable there are sent on the next start; the batch in flight is not committed and is consumed again). 1000..3600000. @default 30000',
      ),
    threads: positiveInt
      .max(MAX_RUN_THREADS, `expected at most ${MAX_RUN_THREADS}`)
      .default(1)
      .describe(
        "Worker threads in this process (count, 1..64): each is a whole worker (its own consumer group member, Redis connection, cache tier, ClickHouse sink and dead-letter producer), so Kafka spreads the topic's partitions over the threads and each entity keeps one writer, as with as many processes. Use up to the host's cores and at most the topic's partitions (a thread beyond them gets none and idles). /metrics serves every thread's series with a `thread` label; a thread that fails stops the others (drained) and the process exits 1. @default 1",
      ),
    cacheEntries: positiveInt.default(100_000).describe('States kept in the in-process cache tier (count). @default 100000'),
    cacheReadTtlMs: nonNegativeInt.default(1_000).describe('How long a state only read (not written here) is served from cache (ms). @default 1000'),
    stateTtlSeconds: nonNegativeInt.default(2_592_000).describe('Redis expiry of an untouched entity state (seconds), 0 = never. @default 2592000 (30 days)'),
    stateMaxEntities: nonNegativeInt
      .default(0)
      .describe(
        'Cap on entity states per (namespace, side, adapter) in Redis; beyond it the least recently seen are evicted in the same write (count), 0 = no cap. Every worker of a scope must use the same cap. Must be 0 with redis.cluster. @default 0',
      ),
    replicationFactor,
    logLevel,
  })
  .strict()
  .superRefine((c, ctx) => {
    const unread = unreadAdapterSection(c.adapter, c.adapterOptions);
    if (unread !== undefined) {
      const why = c.adapter === 'none' ? "none reads the section of its release's adapter only: keep one" : `adapter ${c.adapter} reads adapterOptions.${c.adapter} only`;
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['adapterOptions', unread], message: `not read: ${why}` });
    }
    if (c.redis.cluster && c.stateMaxEntities > 0) {
      // The cap's least-recently-seen index is one key per scope: one slot, one node.
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['stateMaxEntities'],
        message: 'must be 0 with redis.cluster (the cap is not supported on a Redis Cluster; bound state with stateTtlSeconds)',
      });
    }
  });

export type RunConfig = z.output<typeof runSchema>;

export const runSpec: CommandSpec<typeof runSchema> = {
  name: 'run',
  summary: 'production adaptation worker for one side: Kafka -> adapter -> Redis -> ClickHouse',
  schema: runSchema,
  positionals: [{ key: 'side', name: 'item|user' }],
  flags: [
    ...KAFKA_FLAGS,
    ...REDIS_FLAGS,
    ...CLICKHOUSE_FLAGS,
    FLAGS.clickhouseCluster,
    FLAGS.clickhouseShards,
    FLAGS.redisCluster,
    FLAGS.adapter,
    ...ADAPTER_OPTION_FLAGS,
    { flag: 'cross-adapter', key: 'crossAdapter', kind: 'string', meta: 'NAME' },
    { flag: 'cross-model', key: 'crossModel', kind: 'string', meta: 'NAME' },
    FLAGS.releaseDir,
    { flag: 'model', key: 'model', kind: 'string', meta: 'NAME' },
    { flag: 'release-poll-ms', key: 'releasePollMs', kind: 'int', meta: 'MS' },
    FLAGS.namespace,
    { flag: 'metrics-port', key: 'metricsPort', kind: 'int', meta: 'PORT' },
    { flag: 'metrics-host', key: 'metricsHost', kind: 'string', meta: 'ADDR' },
    FLAGS.spoolDir,
    { flag: 'group-id', key: 'groupId', kind: 'string', meta: 'GROUP' },
    { flag: 'topic', key: 'topic', kind: 'string', meta: 'TOPIC' },
    { flag: 'until-end', key: 'untilEnd', kind: 'boolean' },
    { flag: 'max-batch', key: 'maxBatchMessages', kind: 'int', meta: 'N' },
    { flag: 'partitions-concurrency', key: 'partitionsConcurrency', kind: 'int', meta: 'N' },
    { flag: 'pipeline-depth', key: 'pipelineDepth', kind: 'int', meta: 'N' },
    { flag: 'fetch-ahead', key: 'fetchAhead', kind: 'boolean' },
    { flag: 'session-timeout-ms', key: 'sessionTimeoutMs', kind: 'int', meta: 'MS' },
    { flag: 'heartbeat-interval-ms', key: 'heartbeatIntervalMs', kind: 'int', meta: 'MS' },
    { flag: 'drain-timeout-ms', key: 'drainTimeoutMs', kind: 'int', meta: 'MS' },
    { flag: 'threads', key: 'threads', kind: 'int', meta: 'N' },
    { flag: 'cache-entries', key: 'cacheEntries', kind: 'int', meta: 'N' },
    { flag: 'state-ttl-seconds', key: 'stateTtlSeconds', kind: 'int', meta: 'S' },
    { flag: 'state-max-entities', key: 'stateMaxEntities', kind: 'int', meta: 'N' },
    FLAGS.replicationFactor,
    FLAGS.logLevel,
  ],
  notes:
    'Drains on SIGTERM/SIGINT: finishes the batch in flight, flushes, commits, exits 0. A second signal exits at once.\n' +
    'A drain that takes longer than --drain-timeout-ms exits 1, saying what stays in the disk spool.\n' +
    'Started through npm (npx thaw run ..., npm exec), the worker also drains when npm exits: npm does not pass\n' +
    'every SIGTERM on to it, so `kill <npx pid>` works as the README shows.\n' +
    'With --until-end it drains the same way, and exits 0, once the consumer group has committed every partition up to\n' +
    'its end offset at start (a backfill or an evaluation run over what the topic holds).\n' +
    'At start Kafka, Redis and ClickHouse must answer and accept the credentials within 20 s, else exit 1 naming\n' +
    'the service and the cause (AUTH_FAILED, TLS_FAILED for a certificate the CA does not sign, UNAVAILABLE_AT_START);\n' +
    'outages after start are waited out, the batch retried. Secured services: docs/security.md.\n' +
    'Refused credentials after start (the password changed) stop the worker: exit 1 (AUTH_FAILED).\n' +
    'A Kafka consumer that crashes for good makes the worker FAILED: /healthz answers 503, exit 1.',
};
