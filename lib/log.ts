/**
 * Structured JSON-lines logger with levels. Writes to stderr so stdout stays free for command output
 * (tables, --json). Any field whose name looks like a secret is redacted, and URLs have their
 * userinfo stripped, so secrets never reach the logs.
 */
import { redactUrl } from './url.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const SECRET_KEY = /pass(word)?|secret|token|sasl|credential|auth/i;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/** Masks URL user info (and secret query parameters) inside a string: lib/url.ts. */
export { redactUrl };

function redact(value: unknown, key: string): unknown {
  if (SECRET_KEY.test(key)) return '***';
  if (typeof value === 'string') return redactUrl(value);
  if (value instanceof Error) return { name: value.name, message: redactUrl(value.message), code: (value as { code?: unknown }).code };
  if (Array.isArray(value)) return value.map((v) => redact(v, ''));
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

export function createLogger(
  level: LogLevel = (process.env.THAW_LOG_LEVEL as LogLevel | undefined) ?? 'info',
  base: Record<string, unknown> = {},
  sink: (line: string) => void = (line) => process.stderr.write(line + '\n'),
): Logger {
  const min = LEVELS[level] ?? LEVELS.info;
  const emit = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>): void => {
    if (LEVELS[lvl] < min) return;
    const rec: Record<string, unknown> = { t: new Date().toISOString(), level: lvl, msg: redactUrl(msg) };
    for (const [k, v] of Object.entries({ ...base, ...fields })) rec[k] = redact(v, k);
    sink(JSON.stringify(rec));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }, sink),
  };
}

/** A logger that drops everything (tests, --json runs). */
export const silentLogger: Logger = createLogger('silent');
