/**
 * Tells an outage (retry later, spool meanwhile) from a refusal (bad data or schema: retrying the
 * same rows can never succeed). ClickHouse 18.16 answers errors as `Code: N, e.displayText() = ...`,
 * which @clickhouse/client does not parse into a ClickHouseError, so the code is read from the text.
 */
import { errorMessage, ThawError } from '../lib/errors.js';
import { redactUrl } from '../lib/log.js';

/** Server error codes that are about load or availability, not about the request. */
const TRANSIENT_CODES: ReadonlySet<number> = new Set([
  159, // TIMEOUT_EXCEEDED
  164, // READONLY (replica going read-only during restart)
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY
  252, // TOO_MANY_PARTS
  279, // ALL_CONNECTION_TRIES_FAILED (a shard of a Distributed table is down)
  319, // UNKNOWN_STATUS_OF_INSERT
  425, // SYSTEM_ERROR
]);

/** The numeric ClickHouse error code of a server-side error, or undefined for a transport failure. */
export function serverErrorCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^\d+$/.test(code)) return Number(code);
  const m = /^Code: (\d+)/.exec(errorMessage(err));
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** True when the failure is an outage: connection refused/reset, timeouts, overload codes. */
export function isTransientClickHouseError(err: unknown): boolean {
  const code = serverErrorCode(err);
  return code === undefined || TRANSIENT_CODES.has(code);
}

/** Server codes of refused credentials: UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, AUTHENTICATION_FAILED. */
const AUTH_CODES: ReadonlySet<number> = new Set([192, 193, 194, 516]);

/** True when the server refused the credentials (retrying cannot help). */
export function isClickHouseAuthError(err: unknown): boolean {
  const code = serverErrorCode(err);
  return code !== undefined && AUTH_CODES.has(code);
}

/** UNKNOWN_TABLE (60) or UNKNOWN_DATABASE (81), on the error or on any error it wraps. */
export function isMissingTableError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e != null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = serverErrorCode(e) ?? Number(/\bCode: (\d+)/.exec(errorMessage(e))?.[1]);
    if (code === 60 || code === 81) return true;
  }
  return false;
}

/**
 * Wraps a client error as CLICKHOUSE_ERROR (AUTH_FAILED for refused credentials) with a redacted,
 * one-line message.
 */
export function wrapClickHouseError(what: string, err: unknown): ThawError {
  // The message of a client error never carries the password (basic auth lives in a header), but it
  // may quote the URL: strip userinfo anyway.
  const msg = redactUrl(errorMessage(err)).split('\n')[0] ?? '';
  if (isClickHouseAuthError(err)) return new ThawError('AUTH_FAILED', `clickhouse refused the credentials (${what}): ${msg.slice(0, 500)}`, { cause: err });
  return new ThawError('CLICKHOUSE_ERROR', `${what}: ${msg.slice(0, 500)}`, { cause: err });
}
