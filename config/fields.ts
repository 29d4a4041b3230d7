import { z } from 'zod';

/**
 * Reusable, documented field schemas. Descriptions state the unit; defaults are attached where a
 * command uses the field, so `--help` and docs/cli.md show them.
 */

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;

/** A Kafka broker address `host:port` (port 1..65535). */
export const brokerAddress = z.string().refine((s) => {
  const m = HOST_PORT.exec(s);
  if (!m) return false;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535;
}, 'expected host:port');

/** A URL with one of the given schemes. Messages never echo the value (it may hold a password). */
export function url(schemes: readonly string[]): z.ZodEffects<z.ZodString, string, string> {
  return z.string().superRefine((s, ctx) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected a URL (${schemes.map((x) => x + '://').join(' or ')}...)` });
      return;
    }
    if (!schemes.includes(u.protocol.replace(/:$/, ''))) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected a ${schemes.join(' or ')} URL` });
    }
  });
}

/** A TCP port number, 0 to disable where the description says so. */
export const port = z.number().int('expected an integer').min(0, 'expected a port 0..65535').max(65535, 'expected a port 0..65535');

export const positiveInt = z.number().int('expected an integer').positive('expected a positive integer');
export const nonNegativeInt = z.number().int('expected an integer').nonnegative('expected an integer >= 0');

/**
 * A namespace isolates state keys, consumer groups and analytics rows. Restricted to characters
 * that are safe in Redis keys, Kafka group ids and SQL string literals.
 */
export const namespaceName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected 1-63 characters [a-z0-9_-], starting with a letter or digit');

/** Adapter names as the registry knows them; validated again by the registry itself. */
export const adapterName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'expected an adapter name like fm-adagrad');

export const side = z.enum(['item', 'user']);

export const logLevel = z
  .enum(['debug', 'info', 'warn', 'error', 'silent'])
  .default('info')
  .describe('Log level of the JSON lines on stderr: debug, info, warn, error or silent.');

/** Path to a directory or file (non-empty). */
export const path = z.string().min(1, 'expected a non-empty path');
