/**
 * `thaw dashboard`'s web server (fastify): the page (dashboard/static/), uPlot's script and style
 * served from node_modules (the page loads nothing from elsewhere, so it works offline), and the JSON
 * API the page reads and machines can use:
 *
 *   GET /api/curves[?day=all|YYYY-MM-DD]   warm-up curves per side, styled series (dashboard/curves.ts)
 *   GET /api/workers                       every metrics target: up/down, rate, lag, latency, dead letters, release
 *   GET /api/releases                      the release pointers of the release directory, with their age
 *   GET /healthz                           200 ok
 *
 * Lifecycle: `start()` reads the assets, starts the target poller, listens; `stop()` stops polling,
 * closes the listener (requests in flight are answered) and the curve source.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { CurvesView } from './curves.js';
import type { ReleasesView } from './releases.js';
import type { TargetPoller } from './targets.js';

export interface DashboardServerOptions {
  curves: CurvesView;
  targets: TargetPoller;
  releases: ReleasesView;
  /** Interface to listen on. @default '127.0.0.1' */
  host?: string;
  /** TCP port; 0: any free port (the bound one is in `address`). @default 8090 */
  port?: number;
  /** How often the page refreshes its data, in ms (passed to the page). @default 5000 */
  pagePollMs?: number;
  /** Page title. @default 'Thaw dashboard' */
  title?: string;
  /** Closed on stop (the curve source). */
  onStop?: () => Promise<void>;
  /** @default silentLogger */
  logger?: Logger;
}

interface Asset {
  type: string;
  body: Buffer;
}

/** The static page's directory: next to this file in the source tree; from dist/dashboard/ back into it (tsc copies no assets). */
function staticDir(): string {
  for (const url of [new URL('./static/', import.meta.url), new URL('../../dashboard/static/', import.meta.url)]) {
    const dir = fileURLToPath(url);
    if (existsSync(dir)) return dir;
  }
  throw new ThawError('CONFIG_INVALID', `dashboard/static directory not found next to ${fileURLToPath(import.meta.url)}`);
}

async function loadAssets(title: string, pagePollMs: number): Promise<Map<string, Asset>> {
  const dir = staticDir();
  const uplot = createRequire(import.meta.url);
  const read = (p: string): Promise<Buffer> => readFile(p);
  const html = (await readFile(`${dir}index.html`, 'utf8')).replace(/\{\{title\}\}/g, title.replace(/[<>&"]/g, '')).replace('{{pollMs}}', String(pagePollMs));
  return new Map<string, Asset>([
    ['/', { type: 'text/html; charset=utf-8', body: Buffer.from(html) }],
    ['/app.js', { type: 'text/javascript; charset=utf-8', body: await read(`${dir}app.js`) }],
    ['/style.css', { type: 'text/css; charset=utf-8', body: await read(`${dir}style.css`) }],
    ['/vendor/uPlot.iife.min.js', { type: 'text/javascript; charset=utf-8', body: await read(uplot.resolve('uplot/dist/uPlot.iife.min.js')) }],
    ['/vendor/uPlot.min.css', { type: 'text/css; charset=utf-8', body: await read(uplot.resolve('uplot/dist/uPlot.min.css')) }],
  ]);
}

const DAY = /^(all|\d{4}-\d{2}-\d{2})$/;

export class DashboardServer {
  private app: FastifyInstance | undefined;
  private addressText = '';
  private readonly logger: Logger;

  constructor(private readonly opts: DashboardServerOptions) {
    this.logger = opts.logger ?? silentLogger;
  }

  /** `http://host:port` once listening. */
  get address(): string {
    return this.addressText;
  }

  async start(): Promise<string> {
    const assets = await loadAssets(this.opts.title ?? 'Thaw dashboard', this.opts.pagePollMs ?? 5000);
    const app = Fastify({ logger: false });
    for (const [path, asset] of assets) {
      app.get(path, async (_req, reply) => reply.header('cache-control', 'no-cache').type(asset.type).send(asset.body));
    }
    app.get('/healthz', async (_req, reply) => reply.type('text/plain').send('ok\n'));
    app.get<{ Querystring: { day?: string } }>('/api/curves', async (req, reply) => {
      const day = req.query.day ?? 'all';
      if (!DAY.test(day)) return reply.code(400).send({ error: 'day must be all or YYYY-MM-DD', code: 'REQUEST_INVALID' });
      return this.opts.curves.get(day);
    });
    app.get('/api/workers', () => ({ atMs: Date.now(), targets: this.opts.targets.views() }));
    app.get('/api/releases', async () => this.opts.releases.get());
    this.opts.targets.start();
    try {
      await app.listen({ host: this.opts.host ?? '127.0.0.1', port: this.opts.port ?? 8090 });
    } catch (err) {
      await this.opts.targets.stop();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE')
        throw new ThawError('CONFIG_INVALID', `dashboard port ${this.opts.port ?? 8090} on ${this.opts.host ?? '127.0.0.1'} is in use: pass --port 0 for any free port, or another port`, {
          cause: err,
        });
      throw err;
    }
    this.app = app;
    const addr = app.server.address();
    const host = typeof addr === 'object' && addr !== null ? addr.address : (this.opts.host ?? '127.0.0.1');
    const port = typeof addr === 'object' && addr !== null ? addr.port : (this.opts.port ?? 8090);
    this.addressText = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.logger.info('dashboard listening', { address: this.addressText });
    return this.addressText;
  }

  async stop(): Promise<void> {
    await this.opts.targets.stop();
    const app = this.app;
    this.app = undefined;
    if (app !== undefined) await app.close();
    await this.opts.onStop?.();
  }
}
