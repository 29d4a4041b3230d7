import { z } from 'zod';
import { logLevel, positiveInt, side } from '../fields.js';
import { FLAGS, releaseDir, sourceSpec } from '../common.js';
import { DEFAULT_HISTORY_FRACTION, DEFAULT_MIN_EVENTS, HISTORY_MINIMUM } from '../../trainers/history.js';
import { DEFAULT_CROSS_BUCKETS } from '../../trainers/fm-trainer.js';
import type { CommandSpec } from '../types.js';

export const trainFmSchema = z
  .object({
    source: sourceSpec,
    releaseDir,
    side: side.optional().describe('Deprecated and ignored (logs a warning): FM releases are two-sided, one release serves the user and the item workers. @default none'),
    epochs: positiveInt.default(3).describe('Passes over the training events (count). @default 3'),
    k: positiveInt.max(256, 'expected at most 256').default(8).describe('Latent dimension of the FM. @default 8'),
    buckets: positiveInt.default(262_144).describe('Rows of the hashed feature table (count). @default 262144'),
    crossBuckets: z
      .union(
        [
          z.literal('fit'),
          z.coerce
            .number()
            .int()
            .min(0)
            .max(2 ** 28),
        ],
        { errorMap: () => ({ message: 'expected fit or an integer in [0, 2^28]' }) },
      )
      .default('fit')
      .describe(
        `Rows of the hashed user-feature × item-feature cross table (count; 0 = no cross term), or fit: ${DEFAULT_CROSS_BUCKETS} or 0, whichever has the lower predict-then-learn loss on the history. @default fit`,
      ),
    learningRate: z.number().positive('expected a number > 0').default(0.05).describe('Adagrad learning rate. @default 0.05'),
    historyFraction: z
      .number()
      .optional()
      .describe(
        `Share of the source's events that forms the training history, 0 < F < 1: its first events; the rest is left for the workers, so their warm-up curves never score events the release trained on (the source is read once more to count it). Not with --history-events. @default ${DEFAULT_HISTORY_FRACTION}`,
      ),
    historyEvents: z.number().optional().describe('The first N events of the source form the history instead (count, >= 1); the rest is never read. Not with --history-fraction. @default none'),
    minEvents: z
      .number()
      .optional()
      .describe(
        `Events an entity needs in the history to be a training entity (count, >= 1): it gets its own vector and bias beside the shared table. The meta trainers (thaw train <model> --source) default to ${DEFAULT_MIN_EVENTS.meta}. @default ${DEFAULT_MIN_EVENTS.fm}`,
      ),
    maxEvents: z.number().optional().describe('Deprecated alias of --history-events (historyEvents); logs a warning. @default none'),
    minCount: z.number().optional().describe('Deprecated alias of --min-events (minEvents); logs a warning. @default none'),
    seed: z.number().int('expected an integer').default(1).describe('Seed of init and shuffling. @default 1'),
    model: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'expected a model name')
      .default('fm')
      .describe('Model name in the release directory. @default fm'),
    noPromote: z.boolean().default(false).describe('Publish without making it the current release. @default false'),
    json: z.boolean().default(false).describe('Print the published manifest as JSON on stdout. @default false'),
    logLevel,
  })
  .strict();

export type TrainFmConfig = z.output<typeof trainFmSchema>;

export const trainFmSpec: CommandSpec<typeof trainFmSchema> = {
  name: 'train fm',
  summary: 'train the shared FM offline and publish (and promote) a release',
  schema: trainFmSchema,
  flags: [
    FLAGS.source,
    FLAGS.releaseDir,
    FLAGS.side,
    { flag: 'epochs', key: 'epochs', kind: 'int', meta: 'N' },
    { flag: 'k', key: 'k', kind: 'int', meta: 'N' },
    { flag: 'buckets', key: 'buckets', kind: 'int', meta: 'N' },
    { flag: 'cross-buckets', key: 'crossBuckets', kind: 'string', meta: 'N|fit' },
    { flag: 'learning-rate', key: 'learningRate', kind: 'number', meta: 'LR' },
    { flag: 'history-fraction', key: 'historyFraction', kind: 'number', meta: 'F' },
    { flag: 'history-events', key: 'historyEvents', kind: 'number', meta: 'N' },
    { flag: 'min-events', key: 'minEvents', kind: 'number', meta: 'N' },
    { flag: 'max-events', key: 'maxEvents', kind: 'number', meta: 'N' },
    { flag: 'min-count', key: 'minCount', kind: 'number', meta: 'N' },
    { flag: 'seed', key: 'seed', kind: 'int', meta: 'N' },
    { flag: 'model', key: 'model', kind: 'string', meta: 'NAME' },
    { flag: 'no-promote', key: 'noPromote', kind: 'boolean' },
    FLAGS.json,
    FLAGS.logLevel,
  ],
  notes:
    'Prints the published version on stdout. The history options (--history-fraction, --history-events,\n' +
    '--min-events) are those of every `thaw train <model> --source` command, checked by the same code\n' +
    `(trainers/history.ts). A history that leaves fewer than ${HISTORY_MINIMUM.entities} hot entities or ${HISTORY_MINIMUM.rows.toLocaleString('en-US')} training rows\n` +
    'refuses to train (exit code 2, HISTORY_TOO_THIN) and says which flag to change.',
};
