/**
 * A private 3-master Redis Cluster for one test file, started with `scripts/services.sh up
 * redis-cluster` on free ports (client and bus) in a directory of its own, and stopped by `down()`.
 * The shared services are not touched.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePorts } from '../../../lib/free-port.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../../scripts/services.sh', import.meta.url));

/** Distinct free TCP ports on 127.0.0.1 (held open together, so no two are the same). */

export class PrivateCluster {
  private constructor(
    readonly dir: string,
    readonly ports: number[],
    private readonly busPorts: number[],
  ) {}

  /** The seed node's URL (any node works as a seed). */
  get url(): string {
    return `redis://127.0.0.1:${this.ports[0] ?? 0}`;
  }

  static async up(): Promise<PrivateCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'thaw-private-cluster-'));
    const all = await freePorts(6);
    const c = new PrivateCluster(dir, all.slice(0, 3), all.slice(3));
    await c.sh('up');
    return c;
  }

  /** `scripts/services.sh <cmd> redis-cluster` against this cluster (up restarts stopped nodes). */
  async sh(cmd: 'up' | 'down' | 'status'): Promise<string> {
    const { stdout } = await run('bash', [SCRIPT, cmd, 'redis-cluster'], {
      env: {
        ...process.env,
        THAW_SERVICES_DIR: this.dir,
        THAW_REDIS_CLUSTER_PORT: this.ports.join(','),
        THAW_REDIS_CLUSTER_BUS_PORTS: this.busPorts.join(','),
      },
      timeout: 150_000,
    });
    return stdout;
  }

  /** A plain client on one node (no redirections): to look at what that node holds. */
  node(port: number): Redis {
    return new Redis({ host: '127.0.0.1', port, lazyConnect: false, maxRetriesPerRequest: 1 });
  }

  /** `kill -9` of the redis-server on `port`; resolves once it is gone. */
  async kill9(port: number): Promise<void> {
    const client = this.node(port);
    let pid: number;
    try {
      const info = await client.info('server');
      pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    } finally {
      client.disconnect();
    }
    if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error(`no process_id from node ${port}`);
    process.kill(pid, 'SIGKILL');
    for (;;) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async down(): Promise<void> {
    try {
      await this.sh('down');
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
