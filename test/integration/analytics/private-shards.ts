/**
 * A private 2-shard ClickHouse (scripts/services.sh up clickhouse-shards) on free ports, in a
 * directory of its own, so that tests never touch the shared single node's configuration.
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

export class PrivateShards {
  private constructor(
    readonly dir: string,
    readonly cluster: string,
    readonly httpPorts: readonly [number, number],
    readonly tcpPorts: readonly [number, number],
  ) {}

  /** HTTP URL of each shard. */
  get shardUrls(): string[] {
    return this.httpPorts.map((p) => `http://127.0.0.1:${p}`);
  }

  static async up(cluster = 'thaw_test_shards'): Promise<PrivateShards> {
    const dir = mkdtempSync(join(tmpdir(), 'thaw-private-shards-'));
    const s = new PrivateShards(dir, cluster, [await freePort(), await freePort()], [await freePort(), await freePort()]);
    try {
      await s.sh('up');
    } catch (err) {
      await s.down().catch(() => undefined); // one shard may have started
      throw err;
    }
    return s;
  }

  async sh(cmd: 'up' | 'down' | 'status'): Promise<string> {
    const { stdout } = await run('bash', [SCRIPT, cmd, 'clickhouse-shards'], {
      env: {
        ...process.env,
        THAW_SERVICES_DIR: this.dir,
        THAW_CLICKHOUSE_CLUSTER_NAME: this.cluster,
        THAW_CLICKHOUSE_SHARD1_HTTP_PORT: String(this.httpPorts[0]),
        THAW_CLICKHOUSE_SHARD2_HTTP_PORT: String(this.httpPorts[1]),
        THAW_CLICKHOUSE_SHARD1_TCP_PORT: String(this.tcpPorts[0]),
        THAW_CLICKHOUSE_SHARD2_TCP_PORT: String(this.tcpPorts[1]),
      },
      timeout: 150_000,
    });
    return stdout;
  }

  /** SIGKILLs shard `i` (1 or 2) as a crash would; `sh('up')` starts it again. */
  killShard(i: 1 | 2): void {
    const pid = Number(readFileSync(join(this.dir, 'clickhouse-shards', `shard${i}`, 'clickhouse', 'clickhouse.pid'), 'utf8').trim());
    if (!Number.isSafeInteger(pid) || pid <= 1) throw new Error(`no pid for shard ${i}`);
    process.kill(pid, 'SIGKILL');
  }

  async down(): Promise<void> {
    try {
      await this.sh('down');
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
