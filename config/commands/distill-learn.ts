import { z } from 'zod';
import { logLevel, nonNegativeInt, positiveInt, replicationFactor, side } from '../fields.js';
import { kafkaSchema } from '../connections.js';
import { FLAGS, KAFKA_FLAGS, releaseDir } from '../common.js';
import type { CommandSpec } from '../types.js';

export const distillLearnSchema = z
  .object({
    kafka: kafkaSchema,
    releaseDir,
    model: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a model name')
      .default('fm')
      .describe('The student: an fm model in the release directory (its current release starts the lineage); its releases are what workers and serving run. @default fm'),
    side: side.default('item').describe('Side of the labelled topic read (the FM student learns both sides from every event). @default item'),
    labelledTopic: z.string().min(1).optional().describe('Labelled topic. @default thaw.labelled.by-<side>'),
    softLabelTopic: z.string().min(1).default('thaw.soft-labels').describe('Soft labels written by thaw distill teach (read read_committed). @default thaw.soft-labels'),
    groupId: z.string().min(1).optional().describe('Consumer group of the student trainer. @default thaw-distill-learn-<model>-<side>'),
    alpha: z
      .number()
      .min(0, 'expected a weight in [0, 1]')
      .max(1, 'expected a weight in [0, 1]')
      .default(0.5)
      .describe('Weight of the hard label: loss = alpha*BCE(label) + (1-alpha)*T^2*KL(teacher||student). 1 = no distillation. @default 0.5'),
    temperature: z.number().positive('expected a temperature > 0').max(100, 'expected a temperature <= 100').default(2).describe('Distillation temperature T (unitless). @default 2'),
    softLabelWaitMs: nonNegativeInt
      .max(600_000)
      .default(5_000)
      .describe('Longest a chunk of labelled events waits for its soft labels (ms); events still without one train on the hard label alone and are counted as late. @default 5000'),
    maxPendingSoftLabels: positiveInt.default(1_000_000).describe('Soft labels held while waiting for their events (count; oldest dropped first). @default 1000000'),
    syncIntervalMs: positiveInt.min(100).default(60_000).describe('Time between student releases (ms), as thaw train --online. @default 60000'),
    syncEveryEvents: nonNegativeInt.default(0).describe('Also publish every N trained events; 0 = by time only (count). @default 0'),
    maxBatchMessages: positiveInt
      .max(100_000)
      .default(2000)
      .describe('Largest number of labelled events trained per chunk (between soft-label waits, heartbeats and release checks; count). @default 2000'),
    resume: z
      .boolean()
      .default(false)
      .describe(
        'Resume exactly from the newest checkpoint of the lineage (parameters, optimiser, entity replicas, RNG, counters, pending soft labels and their offsets): the student ends bit-equal to a run never stopped. Fails if the lineage has releases but no checkpoint. Off: continue from the newest release and its optimiser only. @default false',
      ),
    keepCheckpoints: positiveInt.max(1000).default(3).describe('Checkpoints kept beside the releases (one written per release, by atomic rename; count). @default 3'),
    replicationFactor,
    logLevel,
  })
  .strict();

export type DistillLearnConfig = z.output<typeof distillLearnSchema>;

export const distillLearnSpec: CommandSpec<typeof distillLearnSchema> = {
  name: 'distill learn',
  summary: 'student trainer: the FM learns from labels joined with soft labels by event id, a release every sync interval (runs until SIGTERM)',
  schema: distillLearnSchema,
  flags: [
    ...KAFKA_FLAGS,
    FLAGS.releaseDir,
    { flag: 'model', key: 'model', kind: 'string', meta: 'NAME' },
    FLAGS.side,
    { flag: 'labelled-topic', key: 'labelledTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'soft-label-topic', key: 'softLabelTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'group-id', key: 'groupId', kind: 'string', meta: 'GROUP' },
    { flag: 'alpha', key: 'alpha', kind: 'number', meta: 'X' },
    { flag: 'temperature', key: 'temperature', kind: 'number', meta: 'T' },
    { flag: 'soft-label-wait-ms', key: 'softLabelWaitMs', kind: 'int', meta: 'MS' },
    { flag: 'max-pending-soft-labels', key: 'maxPendingSoftLabels', kind: 'int', meta: 'N' },
    { flag: 'sync-interval-ms', key: 'syncIntervalMs', kind: 'int', meta: 'MS' },
    { flag: 'sync-every', key: 'syncEveryEvents', kind: 'int', meta: 'N' },
    { flag: 'max-batch-messages', key: 'maxBatchMessages', kind: 'int', meta: 'N' },
    { flag: 'resume', key: 'resume', kind: 'boolean' },
    { flag: 'keep-checkpoints', key: 'keepCheckpoints', kind: 'int', meta: 'N' },
    FLAGS.replicationFactor,
    FLAGS.logLevel,
  ],
};
