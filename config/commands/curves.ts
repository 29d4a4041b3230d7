import { z } from 'zod';
import { adapterName, instantMs, logLevel, namespaceName, path, side } from '../fields.js';
import { clickhouseSchema } from '../connections.js';
import { FLAGS, CLICKHOUSE_FLAGS } from '../common.js';
import type { CommandSpec } from '../types.js';

export const curvesSchema = z
  .object({
    clickhouse: clickhouseSchema,
    chdb: path.optional().describe('Read from an embedded chDB data directory (e.g. .thaw/demo/chdb) instead of the server.'),
    namespace: namespaceName.default('live').describe('Namespace to show (env THAW_NAMESPACE). @default live'),
    adapter: adapterName.optional().describe('Only this adapter. @default all'),
    side: side.optional().describe('Only this side. @default both'),
    release: z.string().min(1).optional().describe('Only this release. @default all'),
    since: instantMs.optional().describe('Only events at or after this event time (inclusive): unix ms, or ISO-8601 with a zone (2024-01-01T00:00:00Z). @default no bound'),
    until: instantMs.optional().describe('Only events before this event time (exclusive): unix ms, or ISO-8601 with a zone; must be after --since. @default no bound'),
    byDay: z.boolean().default(false).describe('One curve per UTC day of the events. @default false'),
    json: z.boolean().default(false).describe('Print {"curves": [...]} JSON on stdout instead of a table. @default false'),
    plot: path.optional().describe('Also write the curves as an SVG plot to this file.'),
    logLevel,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.since !== undefined && c.until !== undefined && c.since >= c.until) {
      const iso = (ms: number): string => new Date(ms).toISOString();
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['until'],
        message: `--until (${iso(c.until)}) must be after --since (${iso(c.since)}): --since is inclusive, --until exclusive, so the window is empty`,
      });
    }
  });

export type CurvesConfig = z.output<typeof curvesSchema>;

export const curvesSpec: CommandSpec<typeof curvesSchema> = {
  name: 'curves',
  summary: 'query warm-up curves (CTR, AUC, log loss by prior interactions) as a table, JSON or SVG',
  schema: curvesSchema,
  flags: [
    ...CLICKHOUSE_FLAGS,
    FLAGS.clickhouseCluster,
    FLAGS.clickhouseShards,
    { flag: 'chdb', key: 'chdb', kind: 'string', meta: 'DIR' },
    FLAGS.namespace,
    FLAGS.adapter,
    FLAGS.side,
    { flag: 'release', key: 'release', kind: 'string', meta: 'R' },
    { flag: 'since', key: 'since', kind: 'string', meta: 'TIME' },
    { flag: 'until', key: 'until', kind: 'string', meta: 'TIME' },
    { flag: 'by-day', key: 'byDay', kind: 'boolean' },
    FLAGS.json,
    { flag: 'plot', key: 'plot', kind: 'string', meta: 'FILE.svg' },
    FLAGS.logLevel,
  ],
  notes:
    '--since/--until restrict the curves to a window of event time (the time inside each event, as logged in\n' +
    'event_time_ms), not the time the rows were written: --since 2024-01-01T00:00:00Z --until 2024-01-08T00:00:00Z\n' +
    'is the first week of 2024 (UTC). Either may be given alone.',
};
