/**
 * Validation of values that enter SQL text. ClickHouse 18.16 has no query parameters, so every value
 * that is not data in an INSERT body passes through one of these functions; anything unexpected is
 * refused (SQL_VALUE_INVALID) rather than escaped into something surprising.
 */
import { ThawError } from '../lib/errors.js';
import type { Side } from '../schemas/types.js';

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
/** Longest string literal accepted in a filter (namespaces, adapter names, releases). */
const MAX_LITERAL = 256;

/** Returns `name` if it is a plain identifier (database, table, column); throws otherwise. */
export function sqlIdent(name: unknown, what = 'identifier'): string {
  if (typeof name !== 'string' || !IDENT.test(name)) {
    throw new ThawError('SQL_VALUE_INVALID', `${what} must match ${IDENT.source}, got ${JSON.stringify(String(name)).slice(0, 80)}`);
  }
  return name;
}

/** `db.table` with both parts validated. */
export function sqlTable(database: unknown, table: unknown): string {
  return `${sqlIdent(database, 'database')}.${sqlIdent(table, 'table')}`;
}

/**
 * A quoted string literal. Control characters (including NUL and newlines) are refused: no legitimate
 * namespace, adapter or release name contains them. Backslash and quote are escaped.
 */
export function sqlString(value: unknown, what = 'value'): string {
  if (typeof value !== 'string' || value.length > MAX_LITERAL || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new ThawError('SQL_VALUE_INVALID', `${what} must be a string of at most ${MAX_LITERAL} printable characters`);
  }
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A side literal, by whitelist. */
export function sqlSide(value: unknown): `'${Side}'` {
  if (value === 'user' || value === 'item') return `'${value}'`;
  throw new ThawError('SQL_VALUE_INVALID', `side must be "user" or "item", got ${JSON.stringify(String(value)).slice(0, 40)}`);
}

/** A non-negative safe integer literal (unix ms, counts). */
export function sqlUInt(value: unknown, what = 'value'): string {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ThawError('SQL_VALUE_INVALID', `${what} must be a non-negative safe integer`);
  }
  return String(value);
}
