/** `thaw curves`: warm-up curves from the prediction log as a table, JSON, and optionally an SVG plot. */
import { resolve } from 'node:path';
import { isMissingTableError } from '../../analytics/clickhouse-errors.js';
import { queryCurves, type CurveFilter } from '../../analytics/curves.js';
import type { CurveRow } from '../../analytics/types.js';
import { renderCurvesSvg, writePlot } from '../../analytics/plot.js';
import { formatCurveTable } from '../../analytics/table.js';
import type { CurvesConfig } from '../../config/commands/curves.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { openSqlTarget } from '../connect.js';
import { curvesJson } from '../curve-json.js';

export const curvesCommand: Command<CurvesConfig> = { run: runCurves };

/** The curve query's filter of a `thaw curves` config (event-time window included). */
export function curveFilterOf(cfg: CurvesConfig): CurveFilter {
  return {
    namespace: cfg.namespace,
    byDay: cfg.byDay,
    ...(cfg.adapter === undefined ? {} : { adapter: cfg.adapter }),
    ...(cfg.side === undefined ? {} : { side: cfg.side }),
    ...(cfg.release === undefined ? {} : { release: cfg.release }),
    ...(cfg.since === undefined ? {} : { since: cfg.since }),
    ...(cfg.until === undefined ? {} : { until: cfg.until }),
  };
}

async function runCurves(cfg: CurvesConfig, ctx: CommandContext): Promise<number> {
  const target = openSqlTarget(cfg.clickhouse, cfg.chdb);
  const filter = curveFilterOf(cfg);
  let rows: CurveRow[];
  let nothingYet: string | undefined;
  try {
    rows = await queryCurves(target, filter);
  } catch (err) {
    // A worker creates the table when it starts: before that there is nothing to show, not an error.
    if (!isMissingTableError(err)) throw err;
    nothingYet = `no predictions logged yet: table ${cfg.clickhouse.database}.${cfg.clickhouse.table} does not exist (a worker creates it when it starts)`;
    if (cfg.json) ctx.logger.warn(nothingYet);
    rows = [];
  } finally {
    await target.close();
  }
  if (cfg.plot !== undefined) {
    const path = resolve(cfg.plot);
    await writePlot(path, renderCurvesSvg(rows, { title: `Warm-up curves (namespace ${cfg.namespace}${windowText(cfg)})` }));
    ctx.logger.info('plot written', { path });
  }
  if (cfg.json) {
    ctx.stdout.write(JSON.stringify({ curves: curvesJson(rows) }) + '\n');
    return EXIT.ok;
  }
  if (rows.length === 0) {
    ctx.stdout.write(`${nothingYet ?? `no predictions in namespace ${cfg.namespace}${windowText(cfg)} matching the filter`}\n`);
    return EXIT.ok;
  }
  // The table has no day/release columns: print one table per (day, release) group when present.
  const groups = new Map<string, typeof rows>();
  for (const r of rows) {
    const day = (r as { day?: string }).day;
    const key = `${day === undefined ? '' : `day ${day}  `}release ${r.release}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const [key, g] of groups) ctx.stdout.write(`${groups.size > 1 || cfg.byDay ? `${key}\n` : ''}${formatCurveTable(g)}\n`);
  if (cfg.plot !== undefined) ctx.stdout.write(`Plot: ${resolve(cfg.plot)}\n`);
  return EXIT.ok;
}

/** `, events 2024-01-01T00:00:00.000Z .. 2024-01-08T00:00:00.000Z` for a window, '' without one. */
function windowText(cfg: CurvesConfig): string {
  if (cfg.since === undefined && cfg.until === undefined) return '';
  const at = (ms: number | undefined): string => (ms === undefined ? '' : new Date(ms).toISOString());
  return `, events ${at(cfg.since)} .. ${at(cfg.until)}`;
}
