/** Helpers for long-running commands that stop on SIGTERM/SIGINT (the context's abort signal). */

/** Resolves when `signal` aborts (at once if it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** Closes everything, in order, logging instead of throwing so one failure does not leak the rest. */
export async function closeAll(items: readonly { close(): Promise<void> }[], onError: (err: unknown) => void): Promise<void> {
  for (const c of items) {
    try {
      await c.close();
    } catch (err) {
      onError(err);
    }
  }
}

/**
 * Whether this process was started by npm (`npx thaw ...`, `npm exec`, `npm run`/`npm start`). npm
 * runs a bin through `sh -c`, and on SIGTERM it signals that shell only: dash does not pass the
 * signal on, so the node process is orphaned and keeps running, undrained.
 */
export function startedByNpm(env: Record<string, string | undefined>): boolean {
  return (env.npm_command ?? '') !== '' || (env.npm_lifecycle_event ?? '') !== '';
}

/**
 * Calls `onGone` once when this process's parent exits (the process is re-parented, its ppid
 * changes). Polls every `pollMs` (ms, @default 500) on an unref'd timer. Returns a stop function.
 */
export function watchParent(onGone: () => void, pollMs = 500): () => void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone();
  }, pollMs);
  timer.unref();
  return () => clearInterval(timer);
}
