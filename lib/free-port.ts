/** Free TCP ports on 127.0.0.1, for the private services that tests and benchmarks start. */
import { createServer, type Server } from 'node:net';

function listening(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}

/**
 * `n` distinct ports the OS had free a moment ago (all held open together, so none repeats). Another
 * process may take one before the caller binds it: start the service right away.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, listening));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

/** One port the OS had free a moment ago (see freePorts). */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error('no port');
  return port;
}
