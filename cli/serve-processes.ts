/**
 * `thaw serve --processes N`: the scoring server is stateless (states in Redis, releases on disk),
 * so N processes can share one port. node:cluster forks them from this one (the primary), which
 * accepts the connections and hands them out round-robin; each process has its own pipeline, cache
 * and Redis connection.
 *
 * The primary supervises: it prints one "listening" line once every process listens, starts a new
 * process (after RESTART_DELAY_MS) when one dies, and gives up (exit 1) when one dies before it ever
 * listened (a start-up failure: another try would fail the same way) or when processes die more
 * than MAX_RESTARTS times within RESTART_WINDOW_MS. On SIGTERM/SIGINT it asks every process to stop
 * over the IPC channel (not with a signal: a Ctrl-C already signalled the whole process group, and a
 * second signal means "exit now"), waits for them, and exits 0 if they all did.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../lib/log.js';
import { EXIT, type CommandContext } from './context.js';

/** The IPC message that asks a server process to drain and exit. */
export const STOP_MESSAGE = 'thaw:serve:stop';
const RESTART_DELAY_MS = 1000;
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

/** True in a process forked by `superviseServerProcesses`. */
export function isServerProcess(): boolean {
  return cluster.isWorker;
}

/**
 * In a server process: a signal that aborts on the command's own signal, on the primary's stop
 * message, or when the primary is gone (the IPC channel closed: nobody hands out connections any more).
 */
export function serverProcessSignal(own: AbortSignal): AbortSignal {
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  own.addEventListener('abort', stop, { once: true });
  process.on('message', (m) => {
    if (m === STOP_MESSAGE) stop();
  });
  process.once('disconnect', stop);
  return ac.signal;
}

/** In the primary: forks `n` server processes of this same command line and supervises them. Resolves to the exit code. */
export function superviseServerProcesses(n: number, ctx: CommandContext, log: Logger): Promise<number> {
  const live = new Map<number, { worker: Worker; index: number; listened: boolean }>();
  const deaths: number[] = [];
  let stopping = false;
  let code: number = EXIT.ok;
  let announced = false;

  return new Promise<number>((resolve) => {
    // The primary's shared listening handle closes with the last process; disconnect() makes sure.
    const finish = (): void => cluster.disconnect(() => resolve(code));
    const stopAll = (exitCode: number): void => {
      if (exitCode !== EXIT.ok) code = exitCode;
      if (stopping) return;
      stopping = true;
      log.info('stopping the server processes', { processes: live.size });
      // A process still starting may not listen to IPC yet: it gets SIGTERM instead.
      for (const { worker, listened } of live.values()) {
        if (listened && worker.isConnected()) worker.send(STOP_MESSAGE);
        else worker.process.kill('SIGTERM');
      }
      if (live.size === 0) finish();
    };

    const fork = (index: number): void => {
      const worker = cluster.fork({ THAW_SERVE_PROCESS: String(index) });
      const entry = { worker, index, listened: false };
      live.set(worker.id, entry);
      worker.on('listening', (address) => {
        entry.listened = true;
        if (!announced && [...live.values()].filter((e) => e.listened).length === n) {
          announced = true;
          const url = `http://${address.address ?? '127.0.0.1'}:${address.port}`;
          log.info('serving', { processes: n, address: url, pids: [...live.values()].map((e) => e.worker.process.pid) });
          ctx.stdout.write(`thaw serve: listening on ${url} (${n} processes)\n`);
        }
      });
      worker.on('exit', (exitCode, signal) => {
        live.delete(worker.id);
        if (stopping) {
          if (exitCode !== 0) code = EXIT.failure;
          if (live.size === 0) finish();
          return;
        }
        const fields = { index, pid: worker.process.pid, exitCode, signal };
        if (!entry.listened) {
          log.error('a server process failed before it listened: stopping', fields);
          stopAll(EXIT.failure);
          return;
        }
        const now = Date.now();
        deaths.push(now);
        while (deaths.length > 0 && (deaths[0] ?? now) < now - RESTART_WINDOW_MS) deaths.shift();
        if (deaths.length > MAX_RESTARTS) {
          log.error(`server processes died more than ${MAX_RESTARTS} times within ${RESTART_WINDOW_MS} ms: stopping`, fields);
          stopAll(EXIT.failure);
          return;
        }
        log.error('a server process died: starting another', { ...fields, inMs: RESTART_DELAY_MS });
        setTimeout(() => {
          if (!stopping) fork(index);
        }, RESTART_DELAY_MS);
      });
    };

    ctx.signal.addEventListener('abort', () => stopAll(EXIT.ok), { once: true });
    for (let i = 0; i < n; i++) fork(i);
  });
}
