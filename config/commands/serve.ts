import { z } from 'zod';
import { logLevel, namespaceName, nonNegativeInt, path, port, positiveInt } from '../fields.js';
import { kafkaSchema, redisSchema } from '../connections.js';
import { FLAGS, releaseDir, KAFKA_FLAGS, REDIS_FLAGS } from '../common.js';
import { ADAPTER_OPTION_FLAGS, adapterOptionsSchema, unreadAdapterSection } from '../adapter-options.js';
import type { CommandSpec } from '../types.js';

/** Adapters `thaw serve` serves: serving/adapter-release.ts SERVED_ADAPTERS (a unit test keeps them equal; not imported here, so `thaw --help` does not load TensorFlow.js). */
export const SERVE_ADAPTERS = ['fm-adagrad', 'emerg', 'coldnas', 'fixed-adaptive'] as const;

/** The fields of `thaw serve` (serveSchema without its cross-key checks; serve-models.ts picks a model's from them). */
export const serveFields = z.object({
  kafka: kafkaSchema,
  redis: redisSchema,
  releaseDir,
  demo: z.boolean().default(false).describe('Serve what `thaw demo` left in --out (its FM release and fm-adagrad states), with no services: no Redis, no Kafka. @default false'),
  out: path.default('.thaw/demo').describe("With --demo: the demo's output directory. @default .thaw/demo"),
  adapter: z
    .enum(SERVE_ADAPTERS)
    .default('fm-adagrad')
    .describe(
      "Whose states are served, which must run on the type of the --model release (as for thaw run): fm-adagrad on fm releases (both sides' fm-adagrad states, the typed-array FM kernel); emerg on emerg releases (items' states), coldnas and fixed-adaptive on theirs (users' states), scored through the adapter's own prediction code with the other side's --cross-adapter views; an entity without a state gets the initial state its worker would give it, from the request's features. @default fm-adagrad",
    ),
  adapterOptions: adapterOptionsSchema.describe(
    "With a meta adapter: its options as its workers run them (config file section adapterOptions.<adapter>; those that shape scores, e.g. crossSide and biasVariance, must match the workers'); none for fm-adagrad. @default {} (the adapter's defaults)",
  ),
  crossAdapter: z
    .enum(['auto', 'off', 'fm-adagrad', 'emerg', 'coldnas', 'fixed-adaptive'])
    .default('auto')
    .describe(
      "With a meta adapter: the other side's adapter whose views enter the score, as the workers' --cross-adapter (auto: fm-adagrad; off: the other side cold). Must be auto with fm-adagrad, which reads both sides itself. @default auto",
    ),
  crossModel: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a model name')
    .optional()
    .describe("Release model of --cross-adapter's states, as the workers' --cross-model. @default --model when the partner is the served adapter, else fm"),
  model: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a model name')
    .default('fm')
    .describe("Model in the release directory whose current release is served (the --adapter workers' --model); followed live like the workers do. @default fm"),
  namespace: namespaceName.default('live').describe('State namespace the workers write (env THAW_NAMESPACE). @default live'),
  host: z.string().min(1).default('127.0.0.1').describe('Address to listen on. @default 127.0.0.1'),
  port: port.default(8080).describe('HTTP port (0: any free port, printed at start). @default 8080'),
  processes: positiveInt
    .max(64)
    .default(1)
    .describe('Server processes sharing the port (node:cluster; each with its own cache and Redis connection); a process that dies is replaced (count). @default 1'),
  releasePollMs: positiveInt
    .min(100)
    .default(10_000)
    .describe('How often the release directory is checked for a newly promoted release (ms); announcements on thaw.releases are taken at once. @default 10000'),
  releaseAnnouncements: z.boolean().default(true).describe('Listen to release announcements on Kafka (thaw.releases); off: poll only, no Kafka needed. @default true'),
  maxCandidates: positiveInt.max(100_000).default(1000).describe('Most candidates in one request (count). @default 1000'),
  bodyLimitBytes: positiveInt.min(1024).default(1_048_576).describe('Largest request body (bytes); larger is a 413. @default 1048576'),
  freshnessMs: nonNegativeInt
    .default(1000)
    .describe('Freshness bound of the in-process state cache (ms): a state is served from cache for at most this long after it was read from Redis. @default 1000'),
  cacheEntries: positiveInt.min(1024).default(262_144).describe('States held by the in-process cache (count; preallocated). @default 262144'),
  fetchConcurrency: positiveInt.max(256).default(4).describe('Coalesced MGETs in flight at once (count). @default 4'),
  fetchTimeoutMs: positiveInt.default(25).describe('A state read slower than this scores its entities shared-only (ms). @default 25'),
  modelMaxBatch: positiveInt.default(64).describe('Most requests in one model micro-batch (count). @default 64'),
  modelMaxWaitMs: z.number().min(0).max(1000).default(0).describe('How long the model stage waits to fill a micro-batch (ms); 0: the next turn of the event loop. @default 0'),
  maxInFlight: positiveInt.default(2048).describe('Admitted, unanswered requests over all stages (count): the bound of the queues. @default 2048'),
  deadlineMs: positiveInt.default(50).describe('Deadline of a request without an x-deadline-ms header (ms); admission refuses (503) a request that cannot meet it. @default 50'),
  shedControl: z
    .enum(['aimd', 'off'])
    .default('aimd')
    .describe(
      "The shedding threshold: aimd adapts it from live feedback (the admitted requests' p99 latency / deadline held under --shed-target: over it, admit less; far under it while refusing, admit more; bounded, in /metrics as thaw_serve_shed_threshold); off: refuse when the predicted latency exceeds the deadline. @default aimd",
    ),
  shedTarget: z.number().gt(0).max(1).default(0.8).describe('With --shed-control aimd: the p99 of admitted latency / deadline the controller holds under (ratio in (0, 1]). @default 0.8'),
  recordLoad: path
    .optional()
    .describe(
      'Record the valid requests the default model scores (the first of --models) to FILE, as `thaw serve tune --load` replays them (thaw-load/1 JSON Lines: arrival time, x-deadline-ms, body). Requests refused before their body was read are counted, not recorded; the counts are logged when the server stops. @default off',
    ),
  recordMaxArrivals: positiveInt.default(100_000).describe('With --record-load: most arrivals recorded (count); later ones are counted, not recorded. @default 100000'),
  settings: path
    .optional()
    .describe(
      "Stage settings found by `thaw serve tune` (its --out file: fetchConcurrency, modelMaxBatch, modelMaxWaitMs, maxInFlight); they replace the flags' values of these four, and a --models entry's own values win over them. @default none: the flags'",
    ),
  safeguard: z
    .enum(['auto', 'item', 'user', 'off'])
    .default('auto')
    .describe(
      "Whose worker's safeguard mixes the adapted score with the release's baseline, as that worker logs it: item (by the candidate's warm-up bucket), user, or off (the adapted score alone). auto: item for fm-adagrad, the adapted side for a meta adapter (the only side it may be). @default auto",
    ),
  safeguardPartitions: positiveInt
    .optional()
    .describe('Partitions of the labelled topic of the --safeguard side (the safeguard keeps one state per partition). @default read from Kafka (thaw.labelled.by-<side>)'),
  models: path
    .optional()
    .describe(
      'Serve several models side by side: a JSON file of an array of {name, adapter, model, namespace, releaseDir?, crossAdapter?, crossModel?, adapterOptions?, safeguard?, safeguardPartitions?, maxCandidates?, freshnessMs?, cacheEntries?, fetchConcurrency?, fetchTimeoutMs?, modelMaxBatch?, modelMaxWaitMs?, maxInFlight?, deadlineMs?, shedControl?, shedTarget?}; a value not given is the flag\'s (the adapter-specific ones only for an entry of the flags\' --adapter). Requests pick a model by POST /v1/models/<name>/score or a body field "model"; the first is the default. Validated at start-up. @default none: the one model of the flags',
    ),
  retrieval: path
    .optional()
    .describe(
      "Serve POST /v1/retrieve and POST /v1/recommend (retrieve k, rank them with the model, answer the top n) from this retrieval snapshot directory (`thaw retrieval build --out DIR`: the dual encoder's towers and the ANN index of every item), and index new items from Kafka (--retrieval-profile-topic, --retrieval-event-topic) into it as their profile or first event arrives. A new snapshot written to DIR later (a new item tower) is loaded and the index rebuilt for it (--retrieval-reload-ms). @default none: no retrieval (/v1/recommend answers 503)",
    ),
  retrievalProfileTopic: z
    .string()
    .min(1)
    .default('thaw.profiles.item')
    .describe('With --retrieval: topic of item profiles (EntityProfile); an item is (re)indexed when its profile changes its vector. @default thaw.profiles.item'),
  retrievalEventTopic: z
    .string()
    .min(1)
    .default('thaw.labelled.by-item')
    .describe("With --retrieval: topic of labelled events keyed by item; an item not yet indexed is indexed from its first event's item features. @default thaw.labelled.by-item"),
  retrievalFromBeginning: z
    .boolean()
    .default(true)
    .describe(
      'With --retrieval: each server process reads both topics from their beginning in its own consumer group (items already indexed are skipped), so no item produced before start is missed; off: from the latest records. @default true',
    ),
  retrievalEf: positiveInt
    .max(10_000)
    .default(400)
    .describe(
      "With --retrieval: HNSW candidate list per search (raised to k); higher: better recall, slower; 400 reached recall@100 0.998 on the bench's 10^6 clustered vectors, 200 0.988 (count). @default 400",
    ),
  retrievalMaxK: positiveInt.max(10_000).default(1000).describe('With --retrieval: largest k of a /v1/retrieve request (count). @default 1000'),
  retrievalMaxGrowing: positiveInt
    .default(50_000)
    .describe('With --retrieval: when the growing segment holds more items than this (the sealer is behind), the Kafka indexer waits for the sealer (count). @default 50000'),
  retrievalReloadMs: nonNegativeInt
    .default(10_000)
    .describe(
      'With --retrieval: how often DIR is checked for a new snapshot (a new item tower); one found is loaded, the items seen on Kafka are re-encoded by its item tower and sealed into its index off the request path, then it replaces the one in use in one step; 0: never (ms). @default 10000',
    ),
  logLevel,
});

/** The --retrieval keys (`thaw serve tune` replays scoring only and omits them). */
export const RETRIEVAL_KEYS = {
  retrieval: true,
  retrievalProfileTopic: true,
  retrievalEventTopic: true,
  retrievalFromBeginning: true,
  retrievalEf: true,
  retrievalMaxK: true,
  retrievalMaxGrowing: true,
  retrievalReloadMs: true,
} as const;

/** The keys that must agree within one served model (adapter, partner, safeguard side, options): the flags' model and each of --models. */
export function checkServedModel(c: Pick<z.output<typeof serveFields>, 'adapter' | 'adapterOptions' | 'crossAdapter' | 'crossModel' | 'safeguard'>, ctx: z.RefinementCtx): void {
  const unread = unreadAdapterSection(c.adapter, c.adapterOptions);
  if (unread !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['adapterOptions', unread], message: `not read: adapter ${c.adapter} reads adapterOptions.${c.adapter} only` });
  else if (c.adapter === 'fm-adagrad' && c.adapterOptions['fm-adagrad'] !== undefined) {
    // The FM kernel scores with the release's cold views and the stored states: no fm-adagrad option reaches it.
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['adapterOptions', 'fm-adagrad'],
      message: "not read: fm-adagrad is served by the FM kernel, which takes no adapter options (the meta adapters' sections are read)",
    });
  }
  if (c.adapter === 'fm-adagrad' && (c.crossAdapter !== 'auto' || c.crossModel !== undefined)) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: [c.crossAdapter !== 'auto' ? 'crossAdapter' : 'crossModel'],
      message: "fm-adagrad is served with both sides' fm-adagrad states of its release: leave the cross-side partner at auto",
    });
  }
  const sides: Record<string, string> = { emerg: 'item', coldnas: 'user', 'fixed-adaptive': 'user' };
  const side = sides[c.adapter];
  if (side !== undefined && c.safeguard !== 'auto' && c.safeguard !== 'off' && c.safeguard !== side) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['safeguard'], message: `adapter ${c.adapter} adapts ${side}s: only its ${side} worker logs scores (use ${side}, auto or off)` });
  }
}

export const serveSchema = serveFields.strict().superRefine((c, ctx) => {
  checkServedModel(c, ctx);
  if (c.demo && c.adapter !== 'fm-adagrad') ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['adapter'], message: 'the demo leaves FM states only: --demo serves fm-adagrad' });
  if (c.demo && c.settings !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['settings'], message: "the demo serves with the flags' settings: --demo takes no --settings" });
  if (c.recordLoad !== undefined && c.processes > 1) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['recordLoad'], message: 'one process records: --record-load needs --processes 1' });
  if (c.demo && c.models !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['models'], message: 'the demo serves its one model: --demo takes no --models' });
});

export type ServeConfig = z.output<typeof serveSchema>;

export const serveSpec: CommandSpec<typeof serveSchema> = {
  name: 'serve',
  summary: "scoring API: POST /v1/score with the workers' fresh entity states from Redis (staged pipeline, load shedding)",
  schema: serveSchema,
  flags: [
    ...KAFKA_FLAGS,
    ...REDIS_FLAGS,
    FLAGS.redisCluster,
    FLAGS.releaseDir,
    FLAGS.adapter,
    ...ADAPTER_OPTION_FLAGS,
    { flag: 'cross-adapter', key: 'crossAdapter', kind: 'string', meta: 'NAME' },
    { flag: 'cross-model', key: 'crossModel', kind: 'string', meta: 'NAME' },
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
    { flag: 'shed-control', key: 'shedControl', kind: 'string', meta: 'aimd|off' },
    { flag: 'shed-target', key: 'shedTarget', kind: 'number', meta: 'RATIO' },
    { flag: 'settings', key: 'settings', kind: 'string', meta: 'FILE' },
    { flag: 'record-load', key: 'recordLoad', kind: 'string', meta: 'FILE' },
    { flag: 'record-max-arrivals', key: 'recordMaxArrivals', kind: 'int', meta: 'N' },
    { flag: 'safeguard', key: 'safeguard', kind: 'string', meta: 'auto|item|user|off' },
    { flag: 'safeguard-partitions', key: 'safeguardPartitions', kind: 'int', meta: 'N' },
    { flag: 'models', key: 'models', kind: 'string', meta: 'FILE' },
    { flag: 'retrieval', key: 'retrieval', kind: 'string', meta: 'DIR' },
    { flag: 'retrieval-profile-topic', key: 'retrievalProfileTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'retrieval-event-topic', key: 'retrievalEventTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'retrieval-from-beginning', key: 'retrievalFromBeginning', kind: 'boolean' },
    { flag: 'retrieval-ef', key: 'retrievalEf', kind: 'int', meta: 'N' },
    { flag: 'retrieval-max-k', key: 'retrievalMaxK', kind: 'int', meta: 'N' },
    { flag: 'retrieval-max-growing', key: 'retrievalMaxGrowing', kind: 'int', meta: 'N' },
    { flag: 'retrieval-reload-ms', key: 'retrievalReloadMs', kind: 'int', meta: 'MS' },
    FLAGS.logLevel,
  ],
  notes:
    'Serves the current release of --model with the states the --adapter workers of --namespace write to Redis,\n' +
    'following new releases as the workers do: fm-adagrad (default) on an fm release; emerg, coldnas or fixed-adaptive\n' +
    "on a release of that type (run the server with the workers' --adapter, --model, --cross-adapter and adapter options).\n" +
    "A served score equals the worker's logged prediction for the same states and release (the --safeguard side's\n" +
    'worker). SIGTERM/SIGINT: stop accepting, answer what is in flight, exit 0.\n' +
    '--models FILE serves several such models side by side (POST /v1/models/<name>/score, or a body field "model";\n' +
    'GET /v1/models lists them), each with its own release pointer, namespace and pipeline settings.\n' +
    '--demo serves what `thaw demo` left in --out instead (its last FM release, its fm-adagrad states in memory):\n' +
    'thaw demo --quick && thaw serve --demo, then POST /v1/score.\n' +
    '--retrieval DIR adds POST /v1/retrieve {user: {id, features?, history?}, k} -> {ids, scores} over a retrieval snapshot\n' +
    '(thaw retrieval build), with new items indexed from Kafka within the growing segment (README "Retrieval"), and\n' +
    'POST /v1/recommend {user, k, n} -> the top n of the k retrieved, ranked by the model (README "Serving").',
};
