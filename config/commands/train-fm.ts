import { z } from 'zod';
import { logLevel, positiveInt, side } from '../fields.js';
import { FLAGS, releaseDir, sourceSpec } from '../common.js';
import type { CommandSpec } from '../types.js';

export const trainFmSchema = z
  .object({
    source: sourceSpec,
    releaseDir,
    side: side.default('item').describe('Side whose entities get a per-entity vector while training: item or user. @default item'),
    epochs: positiveInt.default(3).describe('Passes over the training events (count). @default 3'),
    k: positiveInt.max(256, 'expected at most 256').default(8).describe('Latent dimension of the FM. @default 8'),
    buckets: positiveInt.default(262_144).describe('Rows of the hashed feature table (count). @default 262144'),
    learningRate: z.number().positive('expected a number > 0').default(0.05).describe('Adagrad learning rate. @default 0.05'),
    minCount: positiveInt.default(20).describe('An entity is hot (trained on) with at least this many events (count). @default 20'),
    maxEvents: positiveInt.optional().describe('Events read from the source (the training prefix, count). @default all'),
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
    { flag: 'learning-rate', key: 'learningRate', kind: 'number', meta: 'LR' },
    { flag: 'min-count', key: 'minCount', kind: 'int', meta: 'N' },
    { flag: 'max-events', key: 'maxEvents', kind: 'int', meta: 'N' },
    { flag: 'seed', key: 'seed', kind: 'int', meta: 'N' },
    { flag: 'model', key: 'model', kind: 'string', meta: 'NAME' },
    { flag: 'no-promote', key: 'noPromote', kind: 'boolean' },
    FLAGS.json,
    FLAGS.logLevel,
  ],
  notes: 'Prints the published version on stdout.',
};
