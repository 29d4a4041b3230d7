/**
 * Joins the JSON results of curves runs made one side per process (`run.ts --sides item` and
 * `--sides user`, run side by side) into one Markdown report and one side-by-side plot.
 *
 *   node --import tsx bench/curves/merge.ts --plot bench/curves/synthetic-curves.svg --title "synthetic 10M" A.json B.json
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writePlot } from '../../analytics/plot.js';
import { ConfigError, errorMessage } from '../../lib/errors.js';
import type { CurvesRunResult } from './bench.js';
import { sideBySideSvg } from './report.js';
import { markdownReport } from './run.js';

type Saved = CurvesRunResult & { wallS: number; transport: string };

/** One result from several: releases by id, workers and curves concatenated; the windows must agree. */
export function mergeResults(parts: readonly Saved[]): Saved {
  const first = parts[0];
  if (first === undefined) throw new ConfigError('inputs', 'at least one JSON result');
  for (const p of parts) {
    if (p.since !== first.since || p.metaUntil !== first.metaUntil || p.events !== first.events) {
      throw new ConfigError('inputs', `run ${p.runId} has another stream or window than ${first.runId}`);
    }
  }
  const releases = new Map(parts.flatMap((p) => p.releases.map((r) => [r.id, r] as const)));
  const common = parts.every((p) => p.commonCurves !== undefined) ? parts.flatMap((p) => p.commonCurves ?? []) : undefined;
  return {
    ...first,
    runId: parts.map((p) => p.runId).join('+'),
    table: parts.map((p) => p.table).join(', thaw.'),
    releases: [...releases.values()],
    workers: parts.flatMap((p) => p.workers),
    curves: parts.flatMap((p) => p.curves),
    ...(common === undefined ? {} : { commonCurves: common }),
    wallS: Math.max(...parts.map((p) => p.wallS)),
  };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    strict: true,
    options: { plot: { type: 'string' }, title: { type: 'string', default: 'Warm-up curves' } },
  });
  if (values.plot === undefined) throw new ConfigError('plot', 'is required');
  const parts = await Promise.all(positionals.map(async (p) => JSON.parse(await readFile(resolve(p), 'utf8')) as Saved));
  const m = mergeResults(parts);
  const plot = resolve(values.plot);
  await writePlot(plot, sideBySideSvg(m.commonCurves ?? m.curves, values.title));
  if (m.commonCurves !== undefined) await writePlot(plot.replace(/\.svg$/, '-full.svg'), sideBySideSvg(m.curves, `${values.title} (full window)`));
  const report = markdownReport(m, m.transport) + `\nWall time ${m.wallS.toFixed(0)} s (the parts ran side by side).\n`;
  process.stdout.write(report);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  main().catch((err: unknown) => {
    process.stderr.write(`curves merge failed: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  });
}
