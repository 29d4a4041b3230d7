import { z } from 'zod';
import { logLevel, path, positiveInt } from '../fields.js';
import { FLAGS } from '../common.js';
import type { CommandSpec } from '../types.js';

/** Adapter families of the demo: `fm` = none + fm-adagrad over the shared FM; the others run over their own meta-learned release, each beside a frozen `none` over that release. */
export const DEMO_FAMILIES = ['fm', 'emerg', 'coldnas', 'fixed-adaptive'] as const;
export type DemoFamily = (typeof DEMO_FAMILIES)[number];

export const demoSchema = z
  .object({
    events: positiveInt.max(10_000_000, 'expected at most 10000000').default(100_000).describe('Synthetic events in the stream (count). @default 100000'),
    seed: z.number().int('expected an integer').default(7).describe('Seed of the synthetic stream and of training. @default 7'),
    json: z.boolean().default(false).describe('Print only the result as JSON on stdout. @default false'),
    out: path.default('.thaw/demo').describe('Output directory: chDB data, curves.svg. @default .thaw/demo'),
    trainFraction: z
      .number()
      .gt(0, 'expected a fraction in (0, 1)')
      .lt(1, 'expected a fraction in (0, 1)')
      .default(0.3)
      .describe('Share of the stream (its beginning) that trains the releases: the history (0..1). @default 0.3'),
    adapters: z
      .array(z.enum(DEMO_FAMILIES))
      .min(1, 'expected at least one of fm, emerg, coldnas, fixed-adaptive')
      .default([...DEMO_FAMILIES])
      .describe('Adapter families to run: fm (none + fm-adagrad on the shared FM), emerg (item), coldnas, fixed-adaptive (user). @default fm,emerg,coldnas,fixed-adaptive'),
    quick: z.boolean().default(false).describe('Only the shared-FM adapters (same as --adapters fm): seconds instead of minutes. @default false'),
    logLevel,
  })
  .strict();

export type DemoConfig = z.output<typeof demoSchema>;

export const demoSpec: CommandSpec<typeof demoSchema> = {
  name: 'demo',
  summary: 'zero-setup demo: synthetic stream, offline FM + meta-learned releases, online adapters, warm-up curves (no services needed)',
  schema: demoSchema,
  flags: [
    { flag: 'events', key: 'events', kind: 'int', meta: 'N' },
    { flag: 'seed', key: 'seed', kind: 'int', meta: 'N' },
    FLAGS.json,
    { flag: 'out', key: 'out', kind: 'string', meta: 'DIR' },
    { flag: 'train-fraction', key: 'trainFraction', kind: 'number', meta: 'F' },
    { flag: 'adapters', key: 'adapters', kind: 'list', meta: 'LIST' },
    { flag: 'quick', key: 'quick', kind: 'boolean' },
    FLAGS.logLevel,
  ],
  notes:
    'Trains, on the first part of the stream, the two-sided shared FM and the meta-learned releases\n' +
    '(EmerG for items; ColdNAS and the fixed/adaptive split for users; with fewer epochs than `thaw train`\n' +
    'so the demo takes minutes), then replays the stream through the production BatchProcessor, both sides\n' +
    "in lockstep, each scoring with the other side's fresh state, the shared parameters learning on, with an\n" +
    'in-memory store and embedded ClickHouse (chDB): thaw eval --protocol stream on a synthetic source.\n' +
    'Every release family has its own `none` baseline (its model, never adapted); the tables, JSON and plot\n' +
    'keep them apart by family, and the lift of each adapter is over its own `none`. Writes <out>/curves.svg.',
};
