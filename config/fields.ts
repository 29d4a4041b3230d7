import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { userinfoProblem } from '../lib/url.js';

/**
 * Reusable, documented field schemas. Descriptions state the unit; defaults are attached where a
 * command uses the field, so `--help` and docs/cli.md show them.
 */

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;

/** A Kafka broker address `host:port` (port 1..65535). */
export const brokerAddress = z.string().superRefine((s, ctx) => {
  const m = HOST_PORT.exec(s);
  const port = Number(m?.[2]);
  // A broker address holds no secret: echo it, so the typo shows.
  if (!(port >= 1 && port <= 65535)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected host:port, got ${JSON.stringify(s)}` });
});

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
      return;
    }
    if (u.hostname === '') {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected a host (${schemes[0] ?? 'scheme'}://host:port)` });
      return;
    }
    // Clients parse raw user info differently (or throw "URI malformed" deep inside a connect), and
    // redaction cannot tell where a raw password ends: refuse it here, naming the key.
    const problem = userinfoProblem(s);
    if (problem !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
  });
}

/**
 * A PEM file of trusted CA certificates (TLS). Read at validation time, so a missing or unreadable
 * file, or one that holds no certificate, stops start-up with a ConfigError naming the key, instead
 * of a TLS handshake failing later with a message that names no option.
 */
export const caFile = z
  .string()
  .min(1, 'expected a path to a PEM file')
  .superRefine((file, ctx) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `cannot read the CA file ${file} (${code})` });
      return;
    }
    if (!text.includes('-----BEGIN CERTIFICATE-----')) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `the CA file ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)` });
    }
  });

/** A TCP port number, 0 to disable where the description says so. */
export const port = z.number().int('expected an integer').min(0, 'expected a port 0..65535').max(65535, 'expected a port 0..65535');

export const positiveInt = z.number().int('expected an integer').positive('expected a positive integer');
/**
 * Consumer group session timeout of the stream processors (`thaw rekey`, `thaw join`): after a crash
 * their partitions go to the next member after this long. Milliseconds, 6000..300000.
 */
export const groupSessionTimeoutMs = positiveInt
  .min(6_000, 'expected at least 6000 (the broker default group.min.session.timeout.ms)')
  .max(300_000, 'expected at most 300000')
  .default(10_000)
  .describe(
    'Kafka consumer group session timeout (ms): after a crash (kill -9, lost host) the partitions move to the restarted or another member after this long. Heartbeats go every tenth of it. 6000..300000. @default 10000',
  );
/**
 * Copies of each partition of the topics a command creates when they are missing (existing topics
 * are left as they are). Unset: min(3, brokers in the cluster), and min.insync.replicas min(2, RF − 1).
 */
export const replicationFactor = positiveInt
  .max(16, 'expected at most 16')
  .optional()
  .describe(
    'Replication factor of the topics this command creates if missing (count, at most the brokers in the cluster); min.insync.replicas becomes min(2, RF-1), at least 1. @default min(3, brokers in the cluster)',
  );
export const nonNegativeInt = z.number().int('expected an integer').nonnegative('expected an integer >= 0');

/**
 * A namespace isolates state keys, consumer groups and analytics rows. Restricted to characters
 * that are safe in Redis keys, Kafka group ids and SQL string literals.
 */
export const namespaceName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected 1-63 characters [a-z0-9_-], starting with a letter or digit');

/** Adapter names as the registry knows them; validated again by the registry itself. */
export const adapterName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'expected an adapter name like fm-adagrad');

export const side = z.enum(['item', 'user']);

export const logLevel = z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info').describe('Log level of the JSON lines on stderr: debug, info, warn, error or silent.');

/** Path to a directory or file (non-empty). */
export const path = z.string().min(1, 'expected a non-empty path');

const ISO_WITH_ZONE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2})(?::?(\d{2}))?)$/i;

/**
 * An instant as the CLI takes it: unix milliseconds (digits only), or an ISO-8601 date-time WITH a
 * zone (`2024-01-01T00:00:00Z`, `2024-01-01T01:00+01:00`). A time without a zone is refused rather
 * than read in the local zone of whoever runs the command. Undefined when `text` is neither, or is
 * not a calendar date and time (2024-02-30, 24:00).
 */
export function parseInstantMs(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) {
    const ms = Number(t);
    return Number.isSafeInteger(ms) ? ms : undefined;
  }
  const m = ISO_WITH_ZONE.exec(t);
  if (m === null) return undefined;
  // Date.parse rolls 2024-02-30 over to March 1st and takes 24:00: check the fields first.
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, zoneH = 0, zoneM = 0] = m.slice(1).map((x) => Number(x ?? '0'));
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const ok = month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour <= 23 && minute <= 59 && second <= 59 && zoneH <= 23 && zoneM <= 59;
  const ms = ok ? Date.parse(t) : NaN;
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** An event-time bound (unix ms or ISO-8601 with a zone, see parseInstantMs), as unix ms. */
export const instantMs = z.union([z.number(), z.string()]).transform((v, ctx): number => {
  const ms = parseInstantMs(String(v));
  if (ms === undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected unix milliseconds or an ISO-8601 time with a zone like 2024-01-01T00:00:00Z, got "${String(v)}"` });
    return z.NEVER;
  }
  return ms;
});
