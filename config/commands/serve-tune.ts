/**
 * `thaw serve tune`: the resource manager's offline search (serving/resource-manager.ts). Takes the
 * model flags of `thaw serve` (which states, of which release, in which namespace, over which Redis)
 * and a recorded load (serving/load-recording.ts); writes the settings `thaw serve --settings` reads.
 */
import { z } from 'zod';
import { path } from '../fields.js';
import { FLAGS, KAFKA_FLAGS, REDIS_FLAGS } from '../common.js';
import { ADAPTER_OPTION_FLAGS } from '../adapter-options.js';
import type { CommandSpec } from '../types.js';
import { checkServedModel, RETRIEVAL_KEYS, serveFields } from './serve.js';

export const serveTuneSchema = serveFields
  .omit({
    demo: true,
    out: true,
    host: true,
    port: true,
    processes: true,
    models: true,
    settings: true,
    releasePollMs: true,
    releaseAnnouncements: true,
    recordLoad: true,
    recordMaxArrivals: true,
    ...RETRIEVAL_KEYS,
  })
  .extend({
    load: path.describe(
      'The recorded load to replay: JSON Lines, a header {"format":"thaw-load/1","deadlineMs":N} then {"t":ms,"body":{...},"deadlineMs"?:N} per arrival (`thaw serve --record-load` records one from live traffic; bench/serving/record.ts from the bench\'s workload). Required.',
    ),
    settingsOut: path
      .default('thaw-settings.json')
      .describe('Where the chosen settings are written ({"format":"thaw-settings/1","settings":{...},"tuning":{...}}), for thaw serve --settings. @default thaw-settings.json'),
    minGain: z
      .number()
      .min(0)
      .max(1)
      .default(0.03)
      .describe('Relative goodput gain a setting needs to replace the one it is compared with (ratio): replays are noisy, and the defaults stay unless beaten by this much. @default 0.03'),
  })
  .strict()
  .superRefine(checkServedModel);

export type ServeTuneConfig = z.output<typeof serveTuneSchema>;

export const serveTuneSpec: CommandSpec<typeof serveTuneSchema> = {
  name: 'serve tune',
  summary: "resource manager: search the scoring pipeline's stage settings by replaying a recorded load over real Redis",
  schema: serveTuneSchema,
  flags: [
    ...KAFKA_FLAGS,
    ...REDIS_FLAGS,
    FLAGS.redisCluster,
    FLAGS.releaseDir,
    FLAGS.adapter,
    ...ADAPTER_OPTION_FLAGS,
    { flag: 'cross-adapter', key: 'crossAdapter', kind: 'string', meta: 'NAME' },
    { flag: 'cross-model', key: 'crossModel', kind: 'string', meta: 'NAME' },
    { flag: 'model', key: 'model', kind: 'string', meta: 'NAME' },
    FLAGS.namespace,
    { flag: 'load', key: 'load', kind: 'string', meta: 'FILE' },
    { flag: 'out', key: 'settingsOut', kind: 'string', meta: 'FILE' },
    { flag: 'min-gain', key: 'minGain', kind: 'number', meta: 'RATIO' },
    { flag: 'max-candidates', key: 'maxCandidates', kind: 'int', meta: 'N' },
    { flag: 'freshness-ms', key: 'freshnessMs', kind: 'int', meta: 'MS' },
    { flag: 'cache-entries', key: 'cacheEntries', kind: 'int', meta: 'N' },
    { flag: 'fetch-timeout-ms', key: 'fetchTimeoutMs', kind: 'int', meta: 'MS' },
    { flag: 'fetch-concurrency', key: 'fetchConcurrency', kind: 'int', meta: 'N' },
    { flag: 'model-max-batch', key: 'modelMaxBatch', kind: 'int', meta: 'N' },
    { flag: 'model-max-wait-ms', key: 'modelMaxWaitMs', kind: 'number', meta: 'MS' },
    { flag: 'max-in-flight', key: 'maxInFlight', kind: 'int', meta: 'N' },
    { flag: 'shed-control', key: 'shedControl', kind: 'string', meta: 'aimd|off' },
    { flag: 'shed-target', key: 'shedTarget', kind: 'number', meta: 'RATIO' },
    { flag: 'safeguard', key: 'safeguard', kind: 'string', meta: 'auto|item|user|off' },
    { flag: 'safeguard-partitions', key: 'safeguardPartitions', kind: 'int', meta: 'N' },
    FLAGS.logLevel,
  ],
  notes:
    'Replays --load against a real scoring pipeline in this process (the model of the flags, its states in Redis) once per\n' +
    'candidate setting, open loop at the recorded arrival times, and keeps the setting with the best goodput (answers\n' +
    "within the deadline, per s) whose answered p99 stays within the recording's deadline: coordinate descent over\n" +
    'fetchConcurrency 1,2,4,8,16; modelMaxBatch 8..128; modelMaxWaitMs 0,0.5,1,2; maxInFlight 64..2048, starting from\n' +
    "the flags' values (one replay each, about 14 replays per pass). Prints each replay; writes --out for\n" +
    'thaw serve --settings FILE. The HTTP layer is not replayed: run the tuned settings through the bench to confirm.',
};
