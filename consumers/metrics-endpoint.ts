/**
 * The HTTP endpoint of a worker's metrics: the Prometheus text exposition on `/metrics` and a
 * liveness answer on `/healthz` (200 when healthy, 503 otherwise). One worker serves its own
 * registry (consumers/metrics.ts); a process of several worker threads serves them all from its
 * main thread (cli/run-threads.ts).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, errorMessage } from '../lib/errors.js';

export interface MetricsEndpointOptions {
  /** TCP port; 0 binds any free port. */
  port: number;
  /** Interface to bind. */
  host: string;
  /** The exposition to serve on `/metrics`. */
  metrics: () => Promise<{ contentType: string; body: string }>;
  /** The answer of `/healthz`. */
  healthy: () => boolean | Promise<boolean>;
}

/** Starts the endpoint; resolves once it listens. A port in use is a CONFIG_INVALID error that says how to pick another. */
export async function serveMetrics(opts: MetricsEndpointOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      opts.metrics().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'content-type': contentType });
          res.end(body);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(errorMessage(err));
        },
      );
    } else if (req.method === 'GET' && path === '/healthz') {
      Promise.resolve(opts.healthy()).then(
        (ok) => {
          res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
          res.end(ok ? 'ok\n' : 'unhealthy\n');
        },
        () => {
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('unhealthy\n');
        },
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new ConfigError('metricsPort', `metrics port ${opts.port} on ${opts.host} is in use (another worker on this host?): pass --metrics-port 0 for any free port, or another port`, {
              cause: err,
            })
          : err,
      );
    });
    server.listen(opts.port, opts.host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  return server;
}

/** The port `server` is bound to. */
export function boundPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/** Stops accepting and drops open connections. */
export async function closeEndpoint(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
