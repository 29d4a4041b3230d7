import { z } from 'zod';
import { logLevel, path, positiveInt } from '../fields.js';
import { FLAGS } from '../common.js';
import type { CommandSpec } from '../types.js';

export const demoSchema = z
  .object({
    events: positiveInt
      .max(10_000_000, 'expected at most 10000000')
      .default(100_000)
      .describe('Synthetic events in the stream (count). @default 100000'),
    seed: z.number().int('expected an integer').default(7).describe('Seed of the synthetic stream and of training. @default 7'),
    json: z.boolean().default(false).describe('Print only the result as JSON on stdout. @default false'),
    out: path.default('.thaw/demo').describe('Output directory: chDB data, curves.svg. @default .thaw/demo'),
    batchSize: positiveInt.default(2000).describe('Events per micro-batch through the BatchProcessor (count). @default 2000'),
    trainFraction: z
      .number()
      .gt(0, 'expected a fraction in (0, 1)')
      .lt(1, 'expected a fraction in (0, 1)')
      .default(0.3)
      .describe('Share of the stream (its beginning) used to train the shared FM offline (0..1). @default 0.3'),
    logLevel,
  })
  .strict();

export type DemoConfig = z.output<typeof demoSchema>;

export const demoSpec: CommandSpec<typeof demoSchema> = {
  name: 'demo',
  summary: 'zero-setup demo: synthetic stream, offline FM, online adapters, warm-up curves (no services needed)',
  schema: demoSchema,
  flags: [
    { flag: 'events', key: 'events', kind: 'int', meta: 'N' },
    { flag: 'seed', key: 'seed', kind: 'int', meta: 'N' },
    FLAGS.json,
    { flag: 'out', key: 'out', kind: 'string', meta: 'DIR' },
    { flag: 'batch-size', key: 'batchSize', kind: 'int', meta: 'N' },
    { flag: 'train-fraction', key: 'trainFraction', kind: 'number', meta: 'F' },
    FLAGS.logLevel,
  ],
  notes:
    'Trains the shared FM on the hot entities of the first part of the stream, then runs the rest through the\n' +
    'production BatchProcessor for each side (item, user) and adapter (none, fm-adagrad) with an in-memory\n' +
    'store and embedded ClickHouse (chDB), and prints the warm-up curves. Writes <out>/curves.svg.',
};
