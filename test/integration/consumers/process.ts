/** Runs consumers/worker-main.ts in a child process, as production would, for the fault tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WorkerMainOptions } from '../../../consumers/worker-main.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface WorkerProcess {
  child: ChildProcess;
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** Everything it wrote to stderr (its JSON log), for failure messages. */
  stderr(): string;
}

export function spawnWorker(opts: WorkerMainOptions): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'consumers/worker-main.ts', JSON.stringify(opts)], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, THAW_LOG_LEVEL: 'warn' },
  });
  let err = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    // Bounded: keep the tail only.
    err = (err + d).slice(-20_000);
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  return { child, exited, stderr: () => err };
}
