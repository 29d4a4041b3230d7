/**
 * Private Redis and ClickHouse instances for the outage tests, started with scripts/services.sh on
 * free ports and in a directory of their own: stopping them does not disturb the shared services
 * that other tests (and other people's test runs) use at the same time.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '../../../lib/free-port.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../../scripts/services.sh', import.meta.url));

export class PrivateServices {
  private constructor(
    readonly dir: string,
    readonly redisPort: number,
    readonly clickhouseHttpPort: number,
    readonly clickhouseTcpPort: number,
  ) {}

  get redisUrl(): string {
    return `redis://127.0.0.1:${this.redisPort}`;
  }

  get clickhouseUrl(): string {
    return `http://127.0.0.1:${this.clickhouseHttpPort}`;
  }

  /** Starts `services` (default both) on free ports in a directory of their own. */
  static async up(services: readonly ('redis' | 'clickhouse')[] = ['redis', 'clickhouse']): Promise<PrivateServices> {
    const dir = mkdtempSync(join(tmpdir(), 'thaw-private-svc-'));
    const s = new PrivateServices(dir, await freePort(), await freePort(), await freePort());
    await s.sh('up', ...services);
    return s;
  }

  /** The managed redis-server's data directory (appendonlydir lives here). */
  get redisDataDir(): string {
    return join(this.dir, 'redis', 'data');
  }

  /** `kill -9` of the managed process of `service` (a crash: no shutdown save, no AOF rewrite). */
  async kill9(service: 'redis' | 'clickhouse'): Promise<void> {
    const pid = Number(readFileSync(join(this.dir, service, `${service}.pid`), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid for ${service} in ${this.dir}`);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${service} (pid ${pid}) survived SIGKILL`);
  }

  /** `scripts/services.sh <cmd> <names...>` against these instances. */
  async sh(cmd: 'up' | 'start' | 'stop' | 'down', ...services: ('redis' | 'clickhouse')[]): Promise<void> {
    await run('bash', [SCRIPT, cmd, ...services], {
      env: {
        ...process.env,
        THAW_SERVICES_DIR: this.dir,
        THAW_REDIS_PORT: String(this.redisPort),
        THAW_CLICKHOUSE_HTTP_PORT: String(this.clickhouseHttpPort),
        THAW_CLICKHOUSE_TCP_PORT: String(this.clickhouseTcpPort),
      },
      timeout: 150_000,
    });
  }

  async down(): Promise<void> {
    try {
      await this.sh('down', 'redis', 'clickhouse');
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
