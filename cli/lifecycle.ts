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
