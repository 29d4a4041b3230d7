/**
 * The retry policy of a teacher worker (EDL-Dist: "a failed teacher call is retried elsewhere").
 * Scoring a chunk (taking the current teacher release, then its forward pass) that throws is tried
 * again with exponential backoff (p-retry) in this worker; if it still fails after `retries`, the
 * worker gives up with TEACHER_FAILED and leaves the group (trainers/distill/teach-worker.ts), so
 * the partitions move to another member, which scores the chunk from the last committed offset.
 * The failed chunk's transaction is never begun: no offset of an unscored event is committed.
 */
import pRetry from 'p-retry';
import { ConfigError, PoisonEventError, ThawError } from '../../lib/errors.js';

/** How often and how patiently a worker retries a failing teacher before leaving. */
export interface TeacherRetryOptions {
  /** Tries after the first failure before the worker leaves. Count. @default 3 */
  retries?: number;
  /** Backoff before the first retry (doubling). Milliseconds. @default 200 */
  minTimeoutMs?: number;
  /** Backoff cap. Milliseconds. @default 5000 */
  maxTimeoutMs?: number;
}

export type TeacherRetry = Required<TeacherRetryOptions>;

/** Defaults applied and ranges checked (ConfigError naming the key). */
export function teacherRetryOf(o: TeacherRetryOptions = {}, prefix = 'distill.teacherRetry'): TeacherRetry {
  const out = { retries: o.retries ?? 3, minTimeoutMs: o.minTimeoutMs ?? 200, maxTimeoutMs: o.maxTimeoutMs ?? 5000 };
  if (!Number.isInteger(out.retries) || out.retries < 0 || out.retries > 100) throw new ConfigError(`${prefix}.retries`, `must be an integer in [0, 100], got ${String(o.retries)}`);
  if (!Number.isInteger(out.minTimeoutMs) || out.minTimeoutMs < 0) throw new ConfigError(`${prefix}.minTimeoutMs`, `must be an integer >= 0, got ${String(o.minTimeoutMs)}`);
  if (!Number.isInteger(out.maxTimeoutMs) || out.maxTimeoutMs < out.minTimeoutMs)
    throw new ConfigError(`${prefix}.maxTimeoutMs`, `must be an integer >= minTimeoutMs (${out.minTimeoutMs}), got ${String(o.maxTimeoutMs)}`);
  return out;
}

/**
 * `score()` with retries; TEACHER_FAILED (cause: the last error) once they are spent. A
 * PoisonEventError is bad input, not a teacher failure: thrown at once. `onRetry` sees each failure
 * that will be retried (for logs and counters).
 */
export async function scoreWithRetry<T>(score: () => T | Promise<T>, o: TeacherRetry, onRetry?: (attempt: number, err: unknown) => void): Promise<T> {
  try {
    return await pRetry(() => score(), {
      retries: o.retries,
      minTimeout: o.minTimeoutMs,
      maxTimeout: o.maxTimeoutMs,
      randomize: false,
      shouldRetry: ({ error }) => !(error instanceof PoisonEventError),
      onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
        if (retriesLeft > 0 && !(error instanceof PoisonEventError)) onRetry?.(attemptNumber, error);
      },
    });
  } catch (err) {
    if (err instanceof PoisonEventError) throw err;
    throw new ThawError('TEACHER_FAILED', `teacher scoring failed ${o.retries + 1} times; leaving the group so another worker takes the partitions`, { cause: err });
  }
}
