/**
 * `thaw run item` as its own process, exactly as an operator starts it (cli/dev.ts runs the same CLI
 * as bin/thaw.mjs, from source): Redis behind the in-process cache tier, ClickHouse, the release
 * watcher. For the failover drill and bench, which kill it (or a broker under it) with -9.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ThawRunOptions {
  /** Worker name: its Kafka client id, and its spool directory under `dir`. */
  name: string;
  brokers: readonly string[];
  redisUrl: string;
  redisPrefix: string;
  clickhouseUrl: string;
  table: string;
  topic: string;
  group: string;
  /** Holds `releases/` (the FM release) and the spools. */
  dir: string;
  sessionTimeoutMs?: number;
  maxBatch?: number;
  /** Port of its /metrics endpoint. @default 0 (none) */
  metricsPort?: number;
  /** Further `thaw run` flags. */
  extra?: readonly string[];
}

export interface ThawRunProcess {
  name: string;
  child: ChildProcess;
  exited: Promise<number | string>;
  /** The tail of its JSON log (stderr). */
  stderr(): string;
  alive(): boolean;
}

export function startThawRun(o: ThawRunOptions): ThawRunProcess {
  const args = [
    'run',
    'item',
    '--topic',
    o.topic,
    '--group-id',
    o.group,
    '--cross-adapter',
    'off',
    '--metrics-port',
    String(o.metricsPort ?? 0),
    '--max-batch',
    String(o.maxBatch ?? 100),
    '--session-timeout-ms',
    String(o.sessionTimeoutMs ?? 10_000),
    '--spool-dir',
    join(o.dir, `spool-${o.name}`),
    '--log-level',
    'warn',
    ...(o.extra ?? []),
  ];
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/dev.ts', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      THAW_KAFKA: o.brokers.join(','),
      THAW_KAFKA_CLIENT_ID: o.name,
      THAW_REDIS_URL: o.redisUrl,
      THAW_REDIS_PREFIX: o.redisPrefix,
      THAW_CLICKHOUSE_URL: o.clickhouseUrl,
      THAW_CLICKHOUSE_TABLE: o.table,
      THAW_RELEASE_DIR: join(o.dir, 'releases'),
    },
  });
  let err = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => (err = (err + d).slice(-20_000)));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  return { name: o.name, child, exited, stderr: () => err, alive: () => child.exitCode === null && child.signalCode === null };
}
