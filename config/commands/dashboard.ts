import { z } from 'zod';
import { logLevel, namespaceName, path, port, positiveInt, url } from '../fields.js';
import { clickhouseSchema } from '../connections.js';
import { FLAGS, CLICKHOUSE_FLAGS, releaseDir } from '../common.js';
import type { CommandSpec } from '../types.js';

/** One namespace or several, comma-separated (the flag and THAW_NAMESPACE give text). */
const namespaces = z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()) : v), z.array(namespaceName).min(1, 'expected at least one namespace'));

export const dashboardSchema = z
  .object({
    clickhouse: clickhouseSchema,
    chdb: path.optional().describe('Read the curves from an embedded chDB data directory (e.g. .thaw/demo/chdb) instead of the ClickHouse server. @default the server (--clickhouse)'),
    namespace: namespaces
      .optional()
      .describe("Namespaces whose warm-up curves are shown, comma-separated (env THAW_NAMESPACE); with --demo, some of the demo's (one per family). @default live; with --demo every family's"),
    releaseDir,
    targets: z
      .array(url(['http', 'https']))
      .min(1, 'expected at least one URL')
      .optional()
      .describe(
        'Prometheus endpoints of the running workers (and servers) to scrape, comma-separated: http://host:port (path /metrics) or a full URL. A target that does not answer shows as down. @default none',
      ),
    pollMs: positiveInt.min(200).max(3_600_000).default(5000).describe("Interval between two scrapes of every target, and of the page's refresh (ms). @default 5000"),
    scrapeTimeoutMs: positiveInt.min(50).max(60_000).default(2000).describe('A scrape slower than this fails and the target shows as down (ms). @default 2000'),
    curvesRefreshMs: positiveInt.min(1000).default(30_000).describe("How long a curve query's result is reused before the prediction log is queried again (ms). @default 30000"),
    host: z.string().min(1).default('127.0.0.1').describe('Address to listen on. @default 127.0.0.1'),
    port: port.default(8090).describe('HTTP port (0: any free port, printed at start). @default 8090'),
    demo: z.boolean().default(false).describe("Show what `thaw demo` left in --out (its chDB prediction log, every family's namespace, and its release directory), with no services. @default false"),
    out: path.default('.thaw/demo').describe("With --demo: the demo's output directory. @default .thaw/demo"),
    logLevel,
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.demo && c.chdb !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['chdb'], message: '--demo reads <out>/chdb: leave --chdb out, or pass --out' });
    if (c.scrapeTimeoutMs > c.pollMs) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['scrapeTimeoutMs'], message: `must be at most --poll-ms (${c.pollMs} ms)` });
  });

export type DashboardConfig = z.output<typeof dashboardSchema>;

export const dashboardSpec: CommandSpec<typeof dashboardSchema> = {
  name: 'dashboard',
  summary: "web page: warm-up curves from ClickHouse or chDB, workers' rate, lag, latency and dead letters, releases and their age",
  schema: dashboardSchema,
  flags: [
    ...CLICKHOUSE_FLAGS,
    FLAGS.clickhouseCluster,
    FLAGS.clickhouseShards,
    { flag: 'chdb', key: 'chdb', kind: 'string', meta: 'DIR' },
    { flag: 'namespace', key: 'namespace', kind: 'list', meta: 'NAME[,...]' },
    FLAGS.releaseDir,
    { flag: 'targets', key: 'targets', kind: 'list', meta: 'URL[,...]' },
    { flag: 'poll-ms', key: 'pollMs', kind: 'int', meta: 'MS' },
    { flag: 'scrape-timeout-ms', key: 'scrapeTimeoutMs', kind: 'int', meta: 'MS' },
    { flag: 'curves-refresh-ms', key: 'curvesRefreshMs', kind: 'int', meta: 'MS' },
    { flag: 'host', key: 'host', kind: 'string', meta: 'ADDR' },
    { flag: 'port', key: 'port', kind: 'int', meta: 'PORT' },
    { flag: 'demo', key: 'demo', kind: 'boolean' },
    { flag: 'out', key: 'out', kind: 'string', meta: 'DIR' },
    FLAGS.logLevel,
  ],
  notes:
    'Serves one page and its JSON API (GET /api/curves[?day=YYYY-MM-DD], /api/workers, /api/releases) on\n' +
    '--host:--port until SIGTERM/SIGINT. The curves are the query `thaw curves` runs, pooled over days and per\n' +
    "day; the workers panel scrapes each --targets endpoint (a worker's --metrics-port) every --poll-ms; the\n" +
    'releases panel reads the release pointers of --release-dir. The page and its chart library (uPlot) are\n' +
    "served by the command itself: it works offline. --demo: `thaw demo`'s output, no services.",
};
