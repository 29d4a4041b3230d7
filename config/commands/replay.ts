import { z } from 'zod';
import { adapterName, logLevel, namespaceName, positiveInt, side } from '../fields.js';
import { clickhouseSchema, kafkaSchema, redisSchema } from '../connections.js';
import { FLAGS, releaseDir, spoolDir, KAFKA_FLAGS, REDIS_FLAGS, CLICKHOUSE_FLAGS } from '../common.js';
import { ADAPTER_OPTION_FLAGS, fmAdapterOptionsSchema } from '../adapter-options.js';
import type { CommandSpec } from '../types.js';

/** A replay bound as streams/replay.ts takes it. */
export type RangeBoundConfig = { offset: number } | { timeMs: number };

/** `123` is an offset (every partition), anything else must be an ISO-8601 time. */
export const rangeBound = z.union([z.number(), z.string()]).transform((v, ctx): RangeBoundConfig => {
  const text = String(v).trim();
  if (/^\d+$/.test(text)) return { offset: Number(text) };
  // Only full ISO dates (2024-01-01 or 2024-01-01T10:00:00Z), not Date.parse's liberal forms.
  const ms = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(ms)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'expected an offset (integer >= 0) or an ISO time like 2024-01-01T00:00:00Z' });
    return z.NEVER;
  }
  return { timeMs: ms };
});

export const replaySchema = z
  .object({
    kafka: kafkaSchema,
    redis: redisSchema,
    clickhouse: clickhouseSchema,
    namespace: namespaceName
      .refine((ns) => ns !== 'live', 'a replay never runs in the live namespace: choose another name')
      .describe('Namespace of the replay: Redis key prefix, analytics namespace; never live.'),
    topic: z.string().min(1).optional().describe('Topic to replay. @default thaw.labelled.by-<side>'),
    from: rangeBound.optional().describe('Start of the range: offset or ISO time (inclusive).'),
    to: rangeBound.optional().describe('End of the range: offset or ISO time (exclusive).'),
    side: side.default('item').describe('Side to adapt: item or user. @default item'),
    adapter: adapterName.default('fm-adagrad').describe('Adapter: none or fm-adagrad. @default fm-adagrad'),
    adapterOptions: fmAdapterOptionsSchema,
    releaseDir,
    model: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a model name')
      .default('fm')
      .describe('Model name in the release directory. @default fm'),
    spoolDir,
    batchSize: positiveInt.default(2000).describe('Events per micro-batch (count). @default 2000'),
    promote: z.boolean().default(false).describe("Copy the namespace's states into live (then drop nothing). @default false"),
    drop: z.boolean().default(false).describe("Delete the namespace's states and analytics rows. @default false"),
    strict: z.boolean().default(false).describe('Exit 1 when the range selects no event (a warning either way). @default false'),
    logLevel,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.promote && c.drop) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['drop'], message: 'use either --promote or --drop, not both' });
    if (!c.promote && !c.drop) {
      if (c.from === undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['from'], message: 'required (offset or ISO time)' });
      else if (c.to === undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['to'], message: 'required (offset or ISO time)' });
    }
  });

export type ReplayConfig = z.output<typeof replaySchema>;

export const replaySpec: CommandSpec<typeof replaySchema> = {
  name: 'replay',
  summary: 're-run a topic range under its own namespace; --promote it into live or --drop it',
  schema: replaySchema,
  flags: [
    ...KAFKA_FLAGS,
    ...REDIS_FLAGS,
    ...CLICKHOUSE_FLAGS,
    FLAGS.clickhouseCluster,
    FLAGS.clickhouseShards,
    FLAGS.redisCluster,
    FLAGS.namespace,
    { flag: 'topic', key: 'topic', kind: 'string', meta: 'TOPIC' },
    { flag: 'from', key: 'from', kind: 'string', meta: 'OFFSET|ISO' },
    { flag: 'to', key: 'to', kind: 'string', meta: 'OFFSET|ISO' },
    FLAGS.side,
    FLAGS.adapter,
    ADAPTER_OPTION_FLAGS[0],
    FLAGS.releaseDir,
    { flag: 'model', key: 'model', kind: 'string', meta: 'NAME' },
    FLAGS.spoolDir,
    { flag: 'batch-size', key: 'batchSize', kind: 'int', meta: 'N' },
    { flag: 'promote', key: 'promote', kind: 'boolean' },
    { flag: 'drop', key: 'drop', kind: 'boolean' },
    { flag: 'strict', key: 'strict', kind: 'boolean' },
    FLAGS.logLevel,
  ],
  notes:
    'thaw replay --namespace NAME --from A --to B   replays [A, B) into namespace NAME (states and analytics rows).\n' +
    "thaw replay --namespace NAME --promote         copies NAME's states into live.\n" +
    "thaw replay --namespace NAME --drop            deletes NAME's states and analytics rows.",
};
