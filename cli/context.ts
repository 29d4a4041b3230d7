import { ConfigError, ThawError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

/** Where a command writes and what it may react to; injectable so tests can run commands in process. */
export interface CommandContext {
  /** Command output only (tables, --json). */
  stdout: { write(s: string): unknown };
  /** Progress lines and logs. */
  stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  /** JSON logger on stderr at the command's log level. */
  logger: Logger;
  /** Aborted on SIGTERM/SIGINT: long-running commands drain and return. */
  signal: AbortSignal;
  env: Record<string, string | undefined>;
}

/** A runnable command: its spec (schema, flags, help) lives in config/commands/. */
export interface Command<C> {
  run(config: C, ctx: CommandContext): Promise<number>;
}

/** Exit codes of `thaw`. */
export const EXIT = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

/**
 * Errors the user fixes by changing the command line or the config, which exit with EXIT.usage and
 * print their message: bad configuration, bad usage, and a training history too thin to train on.
 */
export function isUsageError(err: unknown): err is ThawError {
  return err instanceof ConfigError || (err instanceof ThawError && (err.code === 'USAGE' || err.code === 'HISTORY_TOO_THIN'));
}
