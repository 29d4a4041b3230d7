import { z } from 'zod';
import { groupSessionTimeoutMs, logLevel, nonNegativeInt, positiveInt, replicationFactor } from '../fields.js';
import { kafkaSchema } from '../connections.js';
import { FLAGS, KAFKA_FLAGS, releaseDir } from '../common.js';
import type { CommandSpec } from '../types.js';

export const distillTeachSchema = z
  .object({
    kafka: kafkaSchema,
    groupId: z.string().min(1).default('thaw-distill-teach').describe('Consumer group of the teacher workers (every member of one group shares the partitions). @default thaw-distill-teach'),
    sourceTopic: z.string().min(1).default('thaw.labelled').describe('Labelled topic the teachers score. @default thaw.labelled'),
    softLabelTopic: z
      .string()
      .min(1)
      .default('thaw.soft-labels')
      .describe('Topic of the soft labels {eventId, teacherLogit, teacherRelease}, written in transactions (read it read_committed). @default thaw.soft-labels'),
    deadLetterTopic: z.string().min(1).default('thaw.dead-letters').describe('Where undecodable labelled records go, with the reason. @default thaw.dead-letters'),
    releaseDir,
    teacherModel: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a model name')
      .default('teacher')
      .describe(
        'Model name of the teacher in the release directory: a deepfm (or metaemb, emerg) release trained for the stream, e.g. thaw train deepfm --source ... --model teacher. @default teacher',
      ),
    releasePollMs: positiveInt
      .min(1_000)
      .default(60_000)
      .describe('How often a worker checks the release directory for a newly promoted teacher (ms); announcements on thaw.releases are picked up at once. @default 60000'),
    maxBatchMessages: positiveInt.max(100_000).default(2_000).describe('Largest number of events scored and committed in one transaction (count). @default 2000'),
    teacherRetries: nonNegativeInt
      .max(100)
      .default(3)
      .describe(
        "Tries after a chunk's scoring failed (teacher release load or inference error), with doubling backoff, before the worker leaves the group so another member takes its partitions; it then exits with status 1 (count). @default 3",
      ),
    teacherRetryMinMs: nonNegativeInt.max(600_000).default(200).describe('Backoff before the first retry of a failed scoring, doubling per retry (ms). @default 200'),
    teacherRetryMaxMs: nonNegativeInt.max(600_000).default(5_000).describe('Backoff cap between retries of a failed scoring (ms; at least --teacher-retry-min-ms, checked at start). @default 5000'),
    sessionTimeoutMs: groupSessionTimeoutMs,
    replicationFactor,
    logLevel,
  })
  .strict();

export type DistillTeachConfig = z.output<typeof distillTeachSchema>;

export const distillTeachSpec: CommandSpec<typeof distillTeachSchema> = {
  name: 'distill teach',
  summary: 'elastic teacher worker: score thaw.labelled with the teacher release into thaw.soft-labels, exactly once (runs until SIGTERM)',
  schema: distillTeachSchema,
  flags: [
    ...KAFKA_FLAGS,
    { flag: 'group-id', key: 'groupId', kind: 'string', meta: 'GROUP' },
    { flag: 'source-topic', key: 'sourceTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'soft-label-topic', key: 'softLabelTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'dead-letter-topic', key: 'deadLetterTopic', kind: 'string', meta: 'TOPIC' },
    FLAGS.releaseDir,
    { flag: 'teacher-model', key: 'teacherModel', kind: 'string', meta: 'NAME' },
    { flag: 'release-poll-ms', key: 'releasePollMs', kind: 'int', meta: 'MS' },
    { flag: 'max-batch-messages', key: 'maxBatchMessages', kind: 'int', meta: 'N' },
    { flag: 'teacher-retries', key: 'teacherRetries', kind: 'int', meta: 'N' },
    { flag: 'teacher-retry-min-ms', key: 'teacherRetryMinMs', kind: 'int', meta: 'MS' },
    { flag: 'teacher-retry-max-ms', key: 'teacherRetryMaxMs', kind: 'int', meta: 'MS' },
    { flag: 'session-timeout-ms', key: 'sessionTimeoutMs', kind: 'int', meta: 'MS' },
    FLAGS.replicationFactor,
    FLAGS.logLevel,
  ],
};
