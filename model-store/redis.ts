/**
 * Creates the ioredis client every Redis user in Thaw shares, with outage behaviour chosen for
 * stream workers: during an outage commands fail fast (ThawError REDIS_ERROR, retryable) so the
 * worker can pause its consumer and retry the batch, while the client keeps reconnecting in the
 * background. Nothing here ever logs or throws a password.
 */
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { ConfigError, ThawError, errorMessage } from '../lib/errors.js';
import { redactUrl, silentLogger, type Logger } from '../lib/log.js';
import { tlsCertificateProblem } from '../lib/tls.js';
import { credentialsOf, userinfoProblem } from '../lib/url.js';
import { ensureSlots, isCluster, type RedisClient } from './redis-cluster.js';

export interface RedisConnection {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://…` for TLS. Credentials in it are never logged. */
  url: string;
  /** ACL user name; overrides the one in `url`. @default from `url`, else none */
  username?: string;
  /** AUTH password; overrides the one in `url`. @default from `url`, else none */
  password?: string;
  /** TLS: `true` for system CAs, or Node TLS options (CA, client cert). A `rediss:` URL implies `true`. @default false */
  tls?: boolean | ConnectionOptions;
  /**
   * Upper bound for any single command, including the time it waits in the offline queue while
   * the client reconnects, in milliseconds. Keep it above the slowest expected batch script.
   * @default 5_000
   */
  commandTimeoutMs?: number;
  /** Timeout of one TCP (+TLS) connection attempt, in milliseconds. @default 2_000 */
  connectTimeoutMs?: number;
  /**
   * The URL is a seed node of a Redis Cluster: connect with ioredis' Cluster client, which learns
   * the other nodes and the slot map from it (credentials and TLS apply to every node). The store
   * then splits each batch by node (redis-cluster.ts). @default false
   */
  cluster?: boolean;
}

/**
 * Outage policy (why these ioredis settings):
 * - `maxRetriesPerRequest: 2`: a queued command is rejected after two failed reconnect attempts
 *   (ioredis' default of 20, or `null` = forever, would stall a worker for a long time or for ever
 *   with its batch in flight and its consumer unaware).
 * - `commandTimeout`: hard bound per command even when the server accepts TCP but never answers
 *   (a hung or blackholed server, where reconnect attempts never fail quickly).
 * - `enableOfflineQueue: true`: commands issued while the client is (re)connecting wait for it
 *   (bounded by the two settings above) instead of failing during a normal start-up or blip.
 * - `retryStrategy`: reconnect for ever with backoff capped at 1 s, so a worker that paused resumes
 *   by itself within about a second of Redis coming back.
 * Measured against a closed port: the first call fails after ~0.6 s; during a long outage calls
 * fail within ~3 s (three capped reconnect attempts), never later than `commandTimeoutMs`.
 * - `autoResendUnfulfilledCommands` stays on: everything Thaw sends is idempotent (GET, and CAS
 *   writes that skip states not newer than the stored one).
 */
export const REDIS_DEFAULTS = { commandTimeoutMs: 5_000, connectTimeoutMs: 2_000, maxRetriesPerRequest: 2 } as const;

function positiveMs(key: string, value: number | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  if (!Number.isFinite(value) || value <= 0) throw new ConfigError(key, `must be a positive number of milliseconds, got ${value}`);
  return value;
}

/** Compiles a RedisConnection into ioredis options; exported for tests (no network). */
export function redisOptionsOf(conn: RedisConnection): { url: string; options: RedisOptions } {
  let parsed: URL;
  try {
    parsed = new URL(conn.url);
  } catch (err) {
    throw new ConfigError('redis.url', `not a URL: ${redactUrl(conn.url)}`, { cause: new Error(redactUrl(errorMessage(err))) });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError('redis.url', `protocol must be redis: or rediss:, got ${parsed.protocol}`);
  }
  const problem = userinfoProblem(conn.url);
  if (problem !== undefined) throw new ConfigError('redis.url', problem);
  // The credentials go to ioredis as options, decoded here: its own URL parsing throws `URI malformed`
  // on a bad escape and splits a password at an encoded ':'.
  const fromUrl = credentialsOf(parsed);
  parsed.username = '';
  parsed.password = '';
  const options: RedisOptions = {
    maxRetriesPerRequest: REDIS_DEFAULTS.maxRetriesPerRequest,
    enableOfflineQueue: true,
    commandTimeout: positiveMs('redis.commandTimeoutMs', conn.commandTimeoutMs, REDIS_DEFAULTS.commandTimeoutMs),
    connectTimeout: positiveMs('redis.connectTimeoutMs', conn.connectTimeoutMs, REDIS_DEFAULTS.connectTimeoutMs),
    retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 4), 1_000),
  };
  const username = conn.username ?? fromUrl.username;
  const password = conn.password ?? fromUrl.password;
  if (username !== undefined) options.username = username;
  if (password !== undefined) options.password = password;
  if (conn.tls === true) options.tls = {};
  else if (typeof conn.tls === 'object') options.tls = conn.tls;
  return { url: parsed.toString(), options };
}

/**
 * Opens a client. The returned client connects in the background; the first command waits for it
 * (bounded, see REDIS_DEFAULTS). Connection errors are logged once per outage, redacted.
 */
export function createRedis(conn: RedisConnection & { cluster?: false }, logger?: Logger): Redis;
export function createRedis(conn: RedisConnection, logger?: Logger): RedisClient;
export function createRedis(conn: RedisConnection, logger: Logger = silentLogger): RedisClient {
  const { url, options } = redisOptionsOf(conn);
  // `url` has no credentials any more; redact anyway in case a caller passes a hostile one.
  const target = redactUrl(url);
  const log = logger.child({ component: 'redis', target, ...(conn.cluster === true ? { cluster: true } : {}) });
  const redis = conn.cluster === true ? new Cluster([seedOf(url)], clusterOptionsOf(options)) : new Redis(url, options);
  let down = false;
  // Without an 'error' listener ioredis prints every reconnect failure to the console.
  redis.on('error', (err: unknown) => {
    if (down) return;
    down = true;
    log.warn('redis connection error; reconnecting in the background', { error: redactUrl(errorMessage(err)) });
  });
  redis.on('ready', () => {
    if (down) log.info('redis connection restored');
    else log.debug('redis connected');
    down = false;
  });
  return redis;
}

/** host and port of a redis:// URL without credentials (the cluster client's seed node). */
function seedOf(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port === '' ? 6379 : Number(u.port) };
}

/**
 * Cluster client options with the same outage policy as a standalone client: per-node options are
 * the standalone ones (credentials, TLS, timeouts); the cluster-level reconnect follows the same
 * capped backoff; redirections (MOVED, ASK) are followed by ioredis, and a batch that still meets a
 * changed topology is split again by the store (withTopologyRetry). Reads go to masters only.
 */
export function clusterOptionsOf(options: RedisOptions): ClusterOptions {
  const { retryStrategy, ...perNode } = options;
  return {
    redisOptions: perNode,
    enableOfflineQueue: true,
    clusterRetryStrategy: (times: number) => retryStrategy?.(times) ?? 1_000,
    scaleReads: 'master',
    maxRedirections: 16,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: options.connectTimeout ?? REDIS_DEFAULTS.connectTimeoutMs,
  };
}

/** Replies of a Redis server that refuses the credentials (or wants some): retrying cannot help. */
const AUTH_REPLY = /^(WRONGPASS|NOAUTH|NOPERM)\b|^ERR (invalid password|AUTH\b|Client sent AUTH, but no password is set)/i;

/** Whether `err` says Redis refused the credentials (WRONGPASS, NOAUTH, NOPERM). */
export function isRedisAuthError(err: unknown): boolean {
  return AUTH_REPLY.test(errorMessage(err));
}

/**
 * Wraps a failure of a Redis call: stable code, redacted message, original error as cause. Refused
 * credentials become AUTH_FAILED (not retryable: a worker stops instead of waiting for ever).
 */
export function redisError(op: string, err: unknown): ThawError {
  if (err instanceof ThawError) return err;
  const message = redactUrl(errorMessage(err));
  if (isRedisAuthError(err)) {
    return new ThawError('AUTH_FAILED', `redis refused the credentials (${op}): ${message}; check redis.username, redis.password and the user and password of redis.url`, { cause: err });
  }
  return new ThawError('REDIS_ERROR', `redis ${op} failed: ${message}`, { cause: err });
}

/**
 * One PING, bounded by the client's command timeout: throws AUTH_FAILED for refused credentials,
 * TLS_FAILED for a certificate the configured CA does not sign, REDIS_ERROR for an unreachable server. For start-up checks.
 */
export async function pingRedis(redis: RedisClient): Promise<void> {
  // A PING that ran out of reconnect attempts says only that: the connection error says why.
  let lastConnectionError: unknown;
  const onError = (err: unknown): void => {
    lastConnectionError = err;
  };
  redis.on('error', onError);
  try {
    if (isCluster(redis)) await ensureSlots(redis);
    else await redis.ping();
  } catch (err) {
    const tls = tlsCertificateProblem(lastConnectionError);
    if (!isRedisAuthError(err) && tls !== undefined) {
      throw new ThawError('TLS_FAILED', `redis: TLS certificate not trusted (${redactUrl(tls)}); check redis.tlsCaFile`, { cause: lastConnectionError });
    }
    throw redisError('PING', isRedisAuthError(err) || lastConnectionError === undefined ? err : lastConnectionError);
  } finally {
    redis.off('error', onError);
  }
}
