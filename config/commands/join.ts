import { z } from 'zod';
import { groupSessionTimeoutMs, logLevel, positiveInt, replicationFactor } from '../fields.js';
import { kafkaSchema, redisSchema } from '../connections.js';
import { FLAGS, KAFKA_FLAGS, REDIS_FLAGS } from '../common.js';
import type { CommandSpec } from '../types.js';

export const joinSchema = z
  .object({
    kafka: kafkaSchema,
    redis: redisSchema,
    groupId: z.string().min(1).default('thaw-join').describe('Consumer group of the join. @default thaw-join'),
    impressionsTopic: z.string().min(1).default('thaw.impressions').describe('Impression topic. @default thaw.impressions'),
    clicksTopic: z.string().min(1).default('thaw.clicks').describe('Click topic. @default thaw.clicks'),
    outputTopic: z.string().min(1).default('thaw.labelled').describe('Topic of the labelled events. @default thaw.labelled'),
    joinKeyPrefix: z.string().min(1).default('thaw:join').describe('Prefix of the pending-impression keys in Redis. @default thaw:join'),
    attributionWindowMs: positiveInt.default(1_800_000).describe('A click counts if at most this long after its impression, event time (ms). @default 1800000 (30 min)'),
    allowedLatenessMs: positiveInt.default(10_000).describe('How far the watermark trails the newest impression (ms). @default 10000'),
    pendingTtlMs: positiveInt
      .optional()
      .describe(
        'Wall-clock TTL of an impression in Redis, from the commit of its chunk; one neither clicked nor swept by then loses its label (counted). Must be >= the attribution window (ms). @default 2 x attribution window',
      ),
    sessionTimeoutMs: groupSessionTimeoutMs,
    replicationFactor,
    logLevel,
  })
  .strict();

export type JoinConfig = z.output<typeof joinSchema>;

export const joinSpec: CommandSpec<typeof joinSchema> = {
  name: 'join',
  summary: 'join impressions with clicks into labelled events (pending impressions in Redis; runs until SIGTERM)',
  schema: joinSchema,
  flags: [
    ...KAFKA_FLAGS,
    ...REDIS_FLAGS,
    { flag: 'group-id', key: 'groupId', kind: 'string', meta: 'GROUP' },
    { flag: 'impressions-topic', key: 'impressionsTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'clicks-topic', key: 'clicksTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'output-topic', key: 'outputTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'join-key-prefix', key: 'joinKeyPrefix', kind: 'string', meta: 'PREFIX' },
    { flag: 'attribution-window-ms', key: 'attributionWindowMs', kind: 'int', meta: 'MS' },
    { flag: 'allowed-lateness-ms', key: 'allowedLatenessMs', kind: 'int', meta: 'MS' },
    { flag: 'pending-ttl-ms', key: 'pendingTtlMs', kind: 'int', meta: 'MS' },
    { flag: 'session-timeout-ms', key: 'sessionTimeoutMs', kind: 'int', meta: 'MS' },
    FLAGS.replicationFactor,
    FLAGS.logLevel,
  ],
};
