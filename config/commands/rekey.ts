import { z } from 'zod';
import { groupSessionTimeoutMs, logLevel, replicationFactor } from '../fields.js';
import { kafkaSchema } from '../connections.js';
import { FLAGS, KAFKA_FLAGS } from '../common.js';
import type { CommandSpec } from '../types.js';

export const rekeySchema = z
  .object({
    kafka: kafkaSchema,
    groupId: z.string().min(1).default('thaw-rekey').describe('Consumer group of the re-keyer. @default thaw-rekey'),
    sourceTopic: z.string().min(1).default('thaw.labelled').describe('Input topic. @default thaw.labelled'),
    byUserTopic: z.string().min(1).default('thaw.labelled.by-user').describe('Output keyed by user. @default thaw.labelled.by-user'),
    byItemTopic: z.string().min(1).default('thaw.labelled.by-item').describe('Output keyed by item. @default thaw.labelled.by-item'),
    sessionTimeoutMs: groupSessionTimeoutMs,
    replicationFactor,
    logLevel,
  })
  .strict();

export type RekeyConfig = z.output<typeof rekeySchema>;

export const rekeySpec: CommandSpec<typeof rekeySchema> = {
  name: 'rekey',
  summary: 're-key thaw.labelled into the by-user and by-item topics (runs until SIGTERM)',
  schema: rekeySchema,
  flags: [
    ...KAFKA_FLAGS,
    { flag: 'group-id', key: 'groupId', kind: 'string', meta: 'GROUP' },
    { flag: 'source-topic', key: 'sourceTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'by-user-topic', key: 'byUserTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'by-item-topic', key: 'byItemTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'session-timeout-ms', key: 'sessionTimeoutMs', kind: 'int', meta: 'MS' },
    FLAGS.replicationFactor,
    FLAGS.logLevel,
  ],
};
