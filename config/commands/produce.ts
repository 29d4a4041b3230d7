import { z } from 'zod';
import { logLevel, nonNegativeInt, positiveInt, replicationFactor } from '../fields.js';
import { kafkaSchema } from '../connections.js';
import { FLAGS, sourceSpec, KAFKA_FLAGS } from '../common.js';
import type { CommandSpec } from '../types.js';

export const produceSchema = z
  .object({
    kafka: kafkaSchema,
    source: sourceSpec,
    rate: z.number().nonnegative('expected events/s >= 0').default(0).describe('Target send rate (events/s), 0 = as fast as possible. @default 0'),
    topic: z.string().min(1).default('thaw.labelled').describe('Topic of labelled events (mode labelled, not --rekeyed). @default thaw.labelled'),
    limit: positiveInt.optional().describe('Stop after this many events (count). @default the whole source'),
    strict: z.boolean().default(false).describe('Exit 1 when the source yields no event (a warning either way). @default false'),
    mode: z.enum(['labelled', 'impressions']).default('labelled').describe('labelled: LabelledEvents; impressions: impressions + clicks for the join. @default labelled'),
    rekeyed: z.boolean().default(false).describe('Write labelled events straight to thaw.labelled.by-user and .by-item keyed by entity (no rekeyer needed). @default false'),
    byUserTopic: z.string().min(1).default('thaw.labelled.by-user').describe('With --rekeyed: topic keyed by user. @default thaw.labelled.by-user'),
    byItemTopic: z.string().min(1).default('thaw.labelled.by-item').describe('With --rekeyed: topic keyed by item. @default thaw.labelled.by-item'),
    impressionsTopic: z.string().min(1).default('thaw.impressions').describe('Mode impressions: impression topic. @default thaw.impressions'),
    clicksTopic: z.string().min(1).default('thaw.clicks').describe('Mode impressions: click topic. @default thaw.clicks'),
    batchSize: positiveInt.max(100_000, 'expected at most 100000').default(1000).describe('Events per produce request (count). @default 1000'),
    clickDelayMs: nonNegativeInt.default(3_000).describe('Mode impressions: event-time delay of a click after its impression (ms). @default 3000'),
    partitions: positiveInt.default(4).describe('Partitions of topics created if missing (count). @default 4'),
    replicationFactor,
    logLevel,
  })
  .strict();

export type ProduceConfig = z.output<typeof produceSchema>;

export const produceSpec: CommandSpec<typeof produceSchema> = {
  name: 'produce',
  summary: 'read an event source and send it to Kafka (Avro) at a chosen rate',
  schema: produceSchema,
  flags: [
    ...KAFKA_FLAGS,
    FLAGS.source,
    { flag: 'rate', key: 'rate', kind: 'number', meta: 'EVENTS_PER_S' },
    { flag: 'topic', key: 'topic', kind: 'string', meta: 'TOPIC' },
    { flag: 'limit', key: 'limit', kind: 'int', meta: 'N' },
    { flag: 'strict', key: 'strict', kind: 'boolean' },
    { flag: 'mode', key: 'mode', kind: 'string', meta: 'labelled|impressions' },
    { flag: 'rekeyed', key: 'rekeyed', kind: 'boolean' },
    { flag: 'by-user-topic', key: 'byUserTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'by-item-topic', key: 'byItemTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'impressions-topic', key: 'impressionsTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'clicks-topic', key: 'clicksTopic', kind: 'string', meta: 'TOPIC' },
    { flag: 'batch-size', key: 'batchSize', kind: 'int', meta: 'N' },
    { flag: 'click-delay-ms', key: 'clickDelayMs', kind: 'int', meta: 'MS' },
    { flag: 'partitions', key: 'partitions', kind: 'int', meta: 'N' },
    FLAGS.replicationFactor,
    FLAGS.logLevel,
  ],
  notes: 'Sources: synthetic[:events=N,seed=S,...], ml100k:DIR, ml1m:DIR, csv:PATH, jsonl:PATH. Progress goes to stderr.',
};
