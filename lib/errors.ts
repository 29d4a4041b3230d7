/**
 * Errors that Thaw raises carry a stable `code` (safe to match on in code and alerts) and the
 * underlying `cause`. Messages never contain secrets: redact before building them.
 */
export const ERROR_CODES = [
  'CONFIG_INVALID',
  'DECODE_FAILED',
  'VALIDATION_FAILED',
  'KAFKA_ERROR',
  'KAFKA_CLIENT_UNPATCHED',
  'REDIS_ERROR',
  'CLICKHOUSE_ERROR',
  'SPOOL_ERROR',
  'STATE_CORRUPT',
  'RELEASE_CORRUPT',
  'RELEASE_INCOMPATIBLE',
  'RELEASE_NOT_FOUND',
  'SQL_VALUE_INVALID',
  'DATA_FORMAT',
  'LIFECYCLE',
  'MODEL_ERROR',
  'USAGE',
  // A trainer's history has too few hot entities, rows or validation users to fit on (trainers/history.ts).
  'HISTORY_TOO_THIN',
  // A service refused the credentials (Redis WRONGPASS/NOAUTH, ClickHouse 516, Kafka SASL): never retried.
  'AUTH_FAILED',
  // A service's TLS certificate was not trusted (not signed by the configured CA, wrong host name, expired): never retried.
  'TLS_FAILED',
  // A service was unreachable when a command started (after start, outages are ridden out instead).
  'UNAVAILABLE_AT_START',
  // A drain did not finish within its deadline (thaw run --drain-timeout-ms).
  'DRAIN_TIMEOUT',
  // A scoring request that is malformed or breaks a limit (serving/request.ts): HTTP 400/413.
  'REQUEST_INVALID',
  // The state store lost writes it had acknowledged: a partition's stored progress is behind what
  // this process wrote (a Redis crash under appendfsync everysec, a failover to a lagging replica).
  'STORE_REGRESSED',
  // A scoring request names a model the server does not serve (serving/models.ts): HTTP 404.
  'MODEL_NOT_FOUND',
  // A scoring request refused by admission control: its deadline cannot be met (serving/admission.ts): HTTP 503.
  'OVERLOADED',
  // An exact resume was asked for, but the lineage has releases and no exact checkpoint (trainers/online/resume.ts).
  'CHECKPOINT_MISSING',
  // A teacher kept failing to score a chunk after its retries (trainers/distill/teach-retry.ts).
  'TEACHER_FAILED',
  // A broken invariant of Thaw's own code (an index its logic proves in range was not, lib/at.ts): a bug to report.
  'INTERNAL',
  // The ANN index's native library (hnswlib-node, an optional dependency) is not installed or did not build.
  'INDEX_UNAVAILABLE',
  // An index snapshot directory is missing a file, or its files disagree (retrieval/index/snapshot.ts).
  'INDEX_CORRUPT',
  // A retrieval index rebuild for a new item tower was stopped before its swap; the old index kept serving (serving/retrieve-rebuild.ts).
  'REBUILD_ABORTED',
  // POST /v1/recommend on a server without a retrieval index (thaw serve without --retrieval): HTTP 503.
  'RETRIEVAL_UNAVAILABLE',
  // A worker thread of `thaw run --threads` died, failed to start, or did not answer the main thread (cli/run-threads.ts).
  'THREAD_FAILED',
] as const;

/** Whether `code` is one of Thaw's error codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return (ERROR_CODES as readonly unknown[]).includes(code);
}

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Codes of errors caused by a transient outage: the operation may succeed if retried. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['KAFKA_ERROR', 'REDIS_ERROR', 'CLICKHOUSE_ERROR']);

export class ThawError extends Error {
  override readonly name: string = 'ThawError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }

  /** Whether retrying the failed operation later can succeed (an outage, not bad input). */
  static isRetryable(err: unknown): boolean {
    return err instanceof ThawError && RETRYABLE.has(err.code);
  }
}

/** Bad configuration: start-up refuses with a message naming the key. */
export class ConfigError extends ThawError {
  override readonly name = 'ConfigError';
  readonly key: string;
  constructor(key: string, message: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', `invalid config "${key}": ${message}`, options);
    this.key = key;
  }
}

/**
 * An event that can never be processed (undecodable, invalid). Like bullmq's UnrecoverableError:
 * never retried, routed to the dead-letter topic with `reason`.
 */
export class PoisonEventError extends ThawError {
  override readonly name = 'PoisonEventError';
  constructor(code: 'DECODE_FAILED' | 'VALIDATION_FAILED', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * A state write refused because the partition's stored progress is behind `expected`, what this
 * process had written before: the store lost acknowledged writes. Nothing of the refused write was
 * applied. `stored` is the progress the store has now (undefined: none at all).
 */
export class StoreRegressedError extends ThawError {
  override readonly name = 'StoreRegressedError';
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly stored: number | undefined,
    readonly expected: number,
  ) {
    super('STORE_REGRESSED', `the state store lost acknowledged writes of ${topic}:${partition}: its progress is ${stored ?? 'gone'}, this worker had written ${expected}`);
  }
}

/** Message of an unknown thrown value, for logs. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An unknown thrown value as an Error to rethrow or reject with: itself if it is one. */
export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
