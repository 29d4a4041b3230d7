import { redactUrl } from '../lib/log.js';

/** Key names whose values are secrets (same rule as the logger's). */
export const SECRET_KEY = /pass(word)?|secret|token|credential|auth/i;

/** Whether the dotted config key names a secret (its last segment looks like one). */
export function isSecretKey(key: string): boolean {
  const last = key.split('.').pop() ?? key;
  return SECRET_KEY.test(last);
}

/**
 * A deep copy of a config safe to print or log: secret values become `***` and URLs lose their
 * userinfo. The logger only redacts top-level fields, so nested configs must pass through here.
 */
export function redactConfig<T>(value: T): T {
  return redactValue(value, '') as T;
}

function redactValue(value: unknown, key: string): unknown {
  if (key !== '' && isSecretKey(key) && value !== undefined && value !== '') return '***';
  if (typeof value === 'string') return redactUrl(value);
  if (Array.isArray(value)) return value.map((v) => redactValue(v, ''));
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, k);
    return out;
  }
  return value;
}

/** Redacts anything that may be a secret from a message built from user input. */
export function redactMessage(message: string, secrets: readonly string[]): string {
  let out = redactUrl(message);
  for (const s of secrets) if (s.length >= 1) out = out.split(s).join('***');
  return out;
}
