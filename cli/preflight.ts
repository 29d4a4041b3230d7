/**
 * Start-up checks of long-running commands: every service answers and accepts the credentials, or the
 * command stops at once (exit 1) with one message naming each service that failed and why. Without
 * them a worker started with a wrong Redis password (or with Redis down) ran "fine" and retried its
 * first batch for ever. Outages after start are not this file's business: the worker rides them out.
 */
import { errorMessage, ThawError } from '../lib/errors.js';
import { redactUrl } from '../lib/log.js';
import { probeKafka } from '../streams/admin.js';
import type { KafkaConnection } from '../streams/kafka.js';

/**
 * How long all checks together may take, in milliseconds. Above kafkajs' connect retries (about
 * 10 s against a closed port) and Redis' command timeout (5 s), well below the 30 s in which an
 * operator expects a verdict. @default 20_000
 */
export const STARTUP_CHECK_TIMEOUT_MS = 20_000;

/** One service to check. */
export interface ServiceCheck {
  service: 'kafka' | 'redis' | 'clickhouse';
  /** Where it was looked for, already redacted (printed in the message). */
  target: string;
  /** Resolves when the service answered and accepted the credentials. */
  check: () => Promise<void>;
}

/** Kafka answers (a cluster description) and accepts the SASL credentials, if any. */
export function kafkaCheck(kafka: KafkaConnection): ServiceCheck {
  return { service: 'kafka', target: kafka.brokers.join(','), check: () => probeKafka(kafka) };
}

/** Redis answers `ping` (pingRedis: AUTH_FAILED for refused credentials); `url` is printed redacted. */
export function redisCheck(url: string, ping: () => Promise<void>): ServiceCheck {
  return { service: 'redis', target: redactUrl(url), check: ping };
}

/** ClickHouse answers and accepts the credentials: `check` is typically the sink's ensureSchema. */
export function clickhouseCheck(url: string, check: () => Promise<void>): ServiceCheck {
  return { service: 'clickhouse', target: redactUrl(url), check };
}

/**
 * Runs the checks at the same time. Throws AUTH_FAILED when a service refused the credentials,
 * TLS_FAILED when one's certificate was not trusted, UNAVAILABLE_AT_START when one did not answer (within `timeoutMs`), naming every failed service
 * in the message; the first failure is the cause.
 */
export async function checkServices(checks: readonly ServiceCheck[], timeoutMs: number = STARTUP_CHECK_TIMEOUT_MS): Promise<void> {
  const results = await Promise.all(checks.map((c) => withDeadline(c, timeoutMs)));
  const failed = results.filter((r): r is { check: ServiceCheck; err: unknown } => r !== undefined);
  const first = failed[0];
  if (first === undefined) return;
  const has = (code: string): boolean => failed.some((f) => f.err instanceof ThawError && f.err.code === code);
  const text = failed.map((f) => `${f.check.service} (${f.check.target}): ${errorMessage(f.err)}`).join('; ');
  const code = has('AUTH_FAILED') ? 'AUTH_FAILED' : has('TLS_FAILED') ? 'TLS_FAILED' : 'UNAVAILABLE_AT_START';
  throw new ThawError(code, `cannot start: ${text}`, { cause: first.err });
}

async function withDeadline(c: ServiceCheck, timeoutMs: number): Promise<{ check: ServiceCheck; err: unknown } | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Error>((resolve) => {
    timer = setTimeout(() => resolve(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const err = await Promise.race([
      c.check().then(
        () => undefined,
        (e: unknown) => e ?? new Error('failed'),
      ),
      late,
    ]);
    return err === undefined ? undefined : { check: c, err };
  } finally {
    clearTimeout(timer);
  }
}
