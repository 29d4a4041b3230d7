/**
 * Runs the `thaw` CLI from source in child processes against the real services, with everything
 * (topic, Redis key prefix, ClickHouse table, release and spool directories) owned by one test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const KAFKA = process.env.THAW_KAFKA ?? '127.0.0.1:19092';
export const REDIS = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';
export const CH = process.env.THAW_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliHarness {
  id: string;
  topic: string;
  dir: string;
  /** Redis key prefix of this test. */
  prefix: string;
  /** ClickHouse table (in database `thaw`) of this test. */
  table: string;
  // Closures, not methods: tests destructure them.
  /** Starts `thaw <args>`; `extraEnv` is added to (and overrides) the harness' environment. */
  start: (args: string[], extraEnv?: Record<string, string>) => { child: ChildProcess; done: Promise<CliRun> };
  thaw: (...args: string[]) => Promise<CliRun>;
  chQuery: (sql: string) => Promise<string>;
}

export function cliHarness(name: string): CliHarness {
  const id = randomUUID().replace(/-/g, '').slice(0, 12);
  const dir = join(tmpdir(), `thaw-${name}-${id}`);
  const prefix = `t${id}`;
  const table = `pred_${id}`;
  const env = {
    ...process.env,
    THAW_KAFKA: KAFKA,
    THAW_REDIS_URL: REDIS,
    THAW_CLICKHOUSE_URL: CH,
    THAW_REDIS_PREFIX: prefix,
    THAW_CLICKHOUSE_TABLE: table,
    THAW_RELEASE_DIR: join(dir, 'releases'),
    THAW_SPOOL_DIR: join(dir, 'spool'),
    THAW_LOG_LEVEL: 'warn',
  };
  const start = (args: string[], extraEnv: Record<string, string> = {}): { child: ChildProcess; done: Promise<CliRun> } => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/dev.ts', ...args], { cwd: ROOT, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const done = new Promise<CliRun>((resolve) =>
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      }),
    );
    return { child, done };
  };
  const chQuery = async (sql: string): Promise<string> => {
    const res = await fetch(CH, { method: 'POST', body: sql });
    const text = await res.text();
    if (!res.ok) throw new Error(text);
    return text.trim();
  };
  return { id, topic: `thaw-test-${name}-${id}`, dir, prefix, table, start, thaw: async (...args) => start(args).done, chQuery };
}
