/**
 * `thaw dashboard`: the web page of dashboard/ over the prediction log (ClickHouse server or chDB),
 * the workers' metrics endpoints and the release directory. `--demo`: what `thaw demo` left in --out
 * (its chDB, every family's namespace, its release directory), no services. Stops on SIGTERM/SIGINT:
 * stops polling, answers the requests in flight, closes the curve source, exits 0.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DashboardConfig } from '../../config/commands/dashboard.js';
import { redactConfig } from '../../config/redact.js';
import { CurvesView } from '../../dashboard/curves.js';
import { ReleasesView } from '../../dashboard/releases.js';
import { DashboardServer } from '../../dashboard/server.js';
import { TargetPoller } from '../../dashboard/targets.js';
import { FAMILIES, namespaceOf, PEER_NAMESPACE } from '../../evaluation/stream/families.js';
import { errorMessage, ThawError } from '../../lib/errors.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { openSqlTarget } from '../connect.js';
import { aborted } from '../lifecycle.js';

export const dashboardCommand: Command<DashboardConfig> = { run: dashboard };

/** Where the curves come from, which namespaces, and the release directory. */
interface Sources {
  chdb: string | undefined;
  namespaces: readonly string[];
  byRelease: boolean;
  releaseDir: string;
  title: string;
}

/** The namespaces `thaw demo` writes: one per family, and the peer's. */
export const DEMO_NAMESPACES: readonly string[] = [...FAMILIES.map(namespaceOf), PEER_NAMESPACE];

/** Where the curves come from, which namespaces (a --namespace with --demo picks among the demo's), and the release directory. */
export function sourcesOf(cfg: DashboardConfig, demoOutExists: (dir: string) => boolean = existsSync): Sources {
  if (!cfg.demo) return { chdb: cfg.chdb, namespaces: cfg.namespace ?? ['live'], byRelease: true, releaseDir: cfg.releaseDir, title: 'Thaw dashboard' };
  const unknown = (cfg.namespace ?? []).filter((n) => !DEMO_NAMESPACES.includes(n));
  if (unknown.length > 0) throw new ThawError('USAGE', `--namespace ${unknown.join(',')}: not a namespace of the demo (it writes ${DEMO_NAMESPACES.join(', ')})`);
  const chdb = join(cfg.out, 'chdb');
  if (!demoOutExists(chdb)) throw new ThawError('USAGE', `no demo output in ${resolve(cfg.out)} (no chdb directory): run \`thaw demo --out ${cfg.out}\` first, or pass --out`);
  // The demo publishes a release every sync interval: its curves pool them, one per family's namespace.
  return { chdb, namespaces: cfg.namespace ?? DEMO_NAMESPACES, byRelease: false, releaseDir: join(cfg.out, 'releases'), title: 'Thaw dashboard (demo)' };
}

async function dashboard(cfg: DashboardConfig, ctx: CommandContext): Promise<number> {
  const src = sourcesOf(cfg);
  const log = ctx.logger.child({ command: 'dashboard' });
  log.info('starting the dashboard', { config: redactConfig(cfg), chdb: src.chdb ?? null, namespaces: src.namespaces });
  const target = openSqlTarget(cfg.clickhouse, src.chdb);
  const server = new DashboardServer({
    curves: new CurvesView({ source: target, namespaces: src.namespaces, byRelease: src.byRelease, refreshMs: cfg.curvesRefreshMs, logger: log }),
    targets: new TargetPoller({ targets: cfg.targets ?? [], pollMs: cfg.pollMs, timeoutMs: cfg.scrapeTimeoutMs, logger: log }),
    releases: new ReleasesView(src.releaseDir),
    host: cfg.host,
    port: cfg.port,
    pagePollMs: cfg.pollMs,
    title: src.title,
    onStop: () => target.close(),
    logger: log,
  });
  try {
    await server.start();
  } catch (err) {
    await target.close().catch((e: unknown) => log.warn('close failed', { error: errorMessage(e) }));
    throw err;
  }
  ctx.stdout.write(`thaw dashboard: listening on ${server.address}\n`);
  await aborted(ctx.signal);
  log.info('stopping the dashboard');
  await server.stop();
  return EXIT.ok;
}
