/**
 * Shared by the exactly-once drills (rekey-exactly-once, join-exactly-once): a `thaw` command run as
 * a real process (`node --import tsx cli/dev.ts ...`) that the test `kill -9`s.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { conn, readCommittedRecords } from './helpers.js';

export { readCommittedRecords as readCommitted };

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A `thaw` command running from source; stderr is kept for assertion messages. */
export interface ThawProcess {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `thaw <args>` with the test's Kafka and Redis. */
export function startThaw(args: readonly string[]): ThawProcess {
  const env = { ...process.env, THAW_KAFKA: conn.brokers.join(','), THAW_LOG_LEVEL: 'warn' };
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/dev.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, stderr: () => stderr, exited };
}

/** `kill -9` and wait until the process is gone. */
export async function killHard(p: ThawProcess): Promise<void> {
  p.child.kill('SIGKILL');
  await p.exited;
}

/** Ids that occur more than once, with their counts. */
export function duplicates(ids: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return new Map([...counts].filter(([, n]) => n > 1));
}
