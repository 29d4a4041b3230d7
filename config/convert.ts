import { ConfigError } from '../lib/errors.js';
import type { FlagKind } from './types.js';

/**
 * Converts flag or environment text into the value type the schema expects. Bad numbers and
 * booleans fail here with a message naming the key, never echoing the text of a secret.
 */
export function convertText(key: string, kind: FlagKind, text: string | boolean): unknown {
  if (typeof text === 'boolean') return text;
  switch (kind) {
    case 'string':
      return text;
    case 'list':
      return text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
    case 'boolean': {
      const t = text.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(t)) return true;
      if (['0', 'false', 'no', 'off', ''].includes(t)) return false;
      throw new ConfigError(key, 'expected true or false');
    }
    case 'int':
    case 'number': {
      const t = text.trim().replace(/_/g, '');
      const n = t === '' ? NaN : Number(t);
      if (!Number.isFinite(n)) throw new ConfigError(key, kind === 'int' ? 'expected an integer' : 'expected a number');
      if (kind === 'int' && !Number.isInteger(n)) throw new ConfigError(key, 'expected an integer');
      return n;
    }
  }
}

/** Sets `obj[a][b][c] = value` for key `a.b.c`, creating objects on the way. */
export function setPath(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  const last = parts.pop() ?? key;
  let cur = obj;
  for (const p of parts) {
    const next = cur[p];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[last] = value;
}

/** Deep merge of plain objects; `over` wins, arrays are replaced, not concatenated. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    if (isPlain(v) && isPlain(b)) out[k] = deepMerge(b, v);
    else if (v !== undefined) out[k] = v;
  }
  return out;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
