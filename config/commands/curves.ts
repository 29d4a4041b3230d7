import { z } from 'zod';
import { adapterName, logLevel, namespaceName, path, side } from '../fields.js';
import { clickhouseSchema } from '../connections.js';
import { FLAGS } from '../common.js';
import type { CommandSpec } from '../types.js';

export const curvesSchema = z
  .object({
    clickhouse: clickhouseSchema,
    chdb: path.optional().describe('Read from an embedded chDB data directory (e.g. .thaw/demo/chdb) instead of the server.'),
    namespace: namespaceName.default('live').describe('Namespace to show (env THAW_NAMESPACE). @default live'),
    adapter: adapterName.optional().describe('Only this adapter. @default all'),
    side: side.optional().describe('Only this side. @default both'),
    release: z.string().min(1).optional().describe('Only this release. @default all'),
    byDay: z.boolean().default(false).describe('One curve per UTC day of the events. @default false'),
    json: z.boolean().default(false).describe('Print {"curves": [...]} JSON on stdout instead of a table. @default false'),
    plot: path.optional().describe('Also write the curves as an SVG plot to this file.'),
    logLevel,
  })
  .strict();

export type CurvesConfig = z.output<typeof curvesSchema>;

export const curvesSpec: CommandSpec<typeof curvesSchema> = {
  name: 'curves',
  summary: 'query warm-up curves (CTR, AUC, log loss by prior interactions) as a table, JSON or SVG',
  schema: curvesSchema,
  flags: [
    FLAGS.clickhouse,
    { flag: 'chdb', key: 'chdb', kind: 'string', meta: 'DIR' },
    FLAGS.namespace,
    FLAGS.adapter,
    FLAGS.side,
    { flag: 'release', key: 'release', kind: 'string', meta: 'R' },
    { flag: 'by-day', key: 'byDay', kind: 'boolean' },
    FLAGS.json,
    { flag: 'plot', key: 'plot', kind: 'string', meta: 'FILE.svg' },
    FLAGS.logLevel,
  ],
};
