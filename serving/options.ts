/**
 * Options of the scoring pipeline (serving/pipeline.ts), each with its unit and default, and their
 * normalised form. `thaw serve` builds them from its flags (config/commands/serve.ts); tests and the
 * benchmark pass them directly. Bad values stop start-up with a ConfigError naming the key.
 */
import { ConfigError } from '../lib/errors.js';
import type { Side } from '../schemas/types.js';

export interface ServingOptions {
  /** Most candidates in one request (count); more is a 400 naming `candidates`. @default 1000 */
  maxCandidates?: number;
  /** Largest request body (bytes); more is a 413. @default 1_048_576 */
  bodyLimitBytes?: number;
  /**
   * Freshness bound of the in-process state cache (ms): a state read from the store is served from
   * the cache for at most this long, then read again. 0 reads every state from the store. @default 1000
   */
  freshnessMs?: number;
  /** Entity states the in-process cache holds (count; preallocated typed arrays). @default 262_144 */
  cacheEntries?: number;
  /** Store round trips (coalesced MGETs) in flight at once (count). @default 4 */
  fetchConcurrency?: number;
  /** Most keys in one coalesced MGET (count); a tick with more sends several. @default 20_000 */
  fetchMaxKeys?: number;
  /** A store read slower than this is given up: its entities are scored shared-only (ms). @default 25 */
  fetchTimeoutMs?: number;
  /** Most requests in one model micro-batch (count). @default 64 */
  modelMaxBatch?: number;
  /**
   * How long the model stage waits for more requests before it runs a micro-batch (ms); 0 runs it
   * on the next turn of the event loop (everything that arrived meanwhile is batched). @default 0
   */
  modelMaxWaitMs?: number;
  /** Requests admitted and not yet answered, over all stages (count): the bound of the queues. @default 2048 */
  maxInFlight?: number;
  /** Deadline of a request without `x-deadline-ms` (ms from arrival). @default 50 */
  defaultDeadlineMs?: number;
  /**
   * How the shedding threshold is set (serving/shed-controller.ts): `aimd` adapts it from the
   * admitted requests' latency against their deadlines; `off` keeps it at 1 (refuse when the
   * predicted latency exceeds the deadline). @default 'aimd'
   */
  shedControl?: 'aimd' | 'off';
  /** With `aimd`: the p99 of admitted latency / deadline the controller holds below (ratio in (0, 1]). @default 0.8 */
  shedTargetRatio?: number;
  /** Largest `x-deadline-ms` honoured (ms); larger values are clamped. @default 10_000 */
  maxDeadlineMs?: number;
  /**
   * Whose worker's safeguard mixes the served score with the release's baseline, as that worker
   * logs it (consumers/safeguard.ts): `item` (the item worker: the mixture by the candidate's
   * warm-up bucket), `user`, or `off` (the adapted score alone). @default 'item'
   */
  safeguard?: Side | 'off';
  /** Partitions of that side's labelled topic (the safeguard keeps one state per partition) (count). @default 1 */
  safeguardPartitions?: number;
}

export type ServingConfig = Required<ServingOptions>;

export const SERVING_DEFAULTS: ServingConfig = {
  maxCandidates: 1000,
  bodyLimitBytes: 1_048_576,
  freshnessMs: 1000,
  cacheEntries: 262_144,
  fetchConcurrency: 4,
  fetchMaxKeys: 20_000,
  fetchTimeoutMs: 25,
  modelMaxBatch: 64,
  modelMaxWaitMs: 0,
  maxInFlight: 2048,
  defaultDeadlineMs: 50,
  shedControl: 'aimd',
  shedTargetRatio: 0.8,
  maxDeadlineMs: 10_000,
  safeguard: 'item',
  safeguardPartitions: 1,
};

function int(key: keyof ServingOptions, v: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!(Number.isSafeInteger(v) && v >= min && v <= max)) throw new ConfigError(`serving.${key}`, `must be an integer in [${min}, ${max}], got ${String(v)}`);
  return v;
}

function num(key: keyof ServingOptions, v: number, min: number, max = Number.MAX_VALUE): number {
  if (!(Number.isFinite(v) && v >= min && v <= max)) throw new ConfigError(`serving.${key}`, `must be a number in [${min}, ${max}], got ${String(v)}`);
  return v;
}

/** The options with their defaults, validated. */
export function servingConfig(opts: ServingOptions = {}): ServingConfig {
  const o = { ...SERVING_DEFAULTS, ...opts };
  const cfg: ServingConfig = {
    maxCandidates: int('maxCandidates', o.maxCandidates, 1, 100_000),
    bodyLimitBytes: int('bodyLimitBytes', o.bodyLimitBytes, 1024),
    freshnessMs: num('freshnessMs', o.freshnessMs, 0),
    cacheEntries: int('cacheEntries', o.cacheEntries, 1024, 1 << 26),
    fetchConcurrency: int('fetchConcurrency', o.fetchConcurrency, 1, 256),
    fetchMaxKeys: int('fetchMaxKeys', o.fetchMaxKeys, 1),
    fetchTimeoutMs: num('fetchTimeoutMs', o.fetchTimeoutMs, 1),
    modelMaxBatch: int('modelMaxBatch', o.modelMaxBatch, 1),
    modelMaxWaitMs: num('modelMaxWaitMs', o.modelMaxWaitMs, 0, 1000),
    maxInFlight: int('maxInFlight', o.maxInFlight, 1),
    defaultDeadlineMs: num('defaultDeadlineMs', o.defaultDeadlineMs, 1),
    maxDeadlineMs: num('maxDeadlineMs', o.maxDeadlineMs, 1),
    shedControl: o.shedControl,
    shedTargetRatio: num('shedTargetRatio', o.shedTargetRatio, 0.05, 1),
    safeguard: o.safeguard,
    safeguardPartitions: int('safeguardPartitions', o.safeguardPartitions, 1, 100_000),
  };
  if (cfg.safeguard !== 'item' && cfg.safeguard !== 'user' && cfg.safeguard !== 'off') {
    throw new ConfigError('serving.safeguard', `must be item, user or off, got ${String(cfg.safeguard)}`);
  }
  if (cfg.shedControl !== 'aimd' && cfg.shedControl !== 'off') throw new ConfigError('serving.shedControl', `must be aimd or off, got ${String(cfg.shedControl)}`);
  // Every in-flight request pins its entities' cache slots until it is scored: they must fit.
  const pinned = cfg.maxInFlight * (cfg.maxCandidates + 1);
  if (cfg.cacheEntries < Math.min(pinned, 4 * cfg.fetchMaxKeys)) {
    throw new ConfigError(
      'serving.cacheEntries',
      `must hold the states of the requests in flight: at least min(maxInFlight × (maxCandidates + 1), 4 × fetchMaxKeys) = ${Math.min(pinned, 4 * cfg.fetchMaxKeys)}, got ${cfg.cacheEntries}`,
    );
  }
  return cfg;
}
