/**
 * The models of `thaw serve` (config/commands/serve-models.ts resolves them: the entries of
 * --models, or the flags' one model): for each, its release follower (its own release directory,
 * model, adapter, namespace and partner, hot-swapped on its own), its safeguard partitions and its
 * scoring pipeline with its own settings, stages, queues and cache. They share one Redis client
 * (closed after every pipeline stopped) and one metrics registry (every series labelled `model`).
 * Each model follows its own release pointer, so a corrupt release of one is refused by its own
 * watcher and the others never see it.
 */
import { resolve } from 'node:path';
import type { ServeConfig } from '../../config/commands/serve.js';
import type { PIPELINE_KEYS, ServedModelConfig } from '../../config/commands/serve-models.js';
import { ConfigError, errorMessage } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { createRedis } from '../../model-store/redis.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { followServedReleases, safeguardSideOf } from '../../serving/adapter-release.js';
import { ModelRegistry, sharedMetrics, type ServedModel } from '../../serving/models.js';
import type { ServingOptions } from '../../serving/options.js';
import { ScoringPipeline } from '../../serving/pipeline.js';
import type { ReleaseSource } from '../../serving/release.js';
import { RedisStateSource } from '../../serving/state-source.js';
import type { Side } from '../../schemas/types.js';
import { partitionCount } from '../../streams/admin.js';
import type { KafkaConnection } from '../../streams/kafka.js';
import { labelledTopicFor, TOPICS } from '../../streams/topics.js';
import { kafkaConnection, redisConnection } from '../connect.js';
import { closeAll } from '../lifecycle.js';

/** The cross-side partner of a meta adapter's model, as `thaw run` resolves its workers' (cli/commands/run.ts crossPartner). */
function crossPartnerOf(m: ServedModelConfig): { cross?: { adapter: string; model: string } | null } {
  if (m.adapter === 'fm-adagrad') return {};
  if (m.crossAdapter === 'off') return { cross: null };
  const adapter = m.crossAdapter === 'auto' ? 'fm-adagrad' : m.crossAdapter;
  return { cross: { adapter, model: m.crossModel ?? (adapter === m.adapter ? m.model : 'fm') } };
}

/** The pipeline options of one model (the body limit is the server's). */
export function servingOptionsOf(m: Pick<ServedModelConfig, (typeof PIPELINE_KEYS)[number]> & { safeguard: Side | 'off' }, bodyLimitBytes: number, partitions: number): ServingOptions {
  return {
    maxCandidates: m.maxCandidates,
    bodyLimitBytes,
    freshnessMs: m.freshnessMs,
    cacheEntries: m.cacheEntries,
    fetchConcurrency: m.fetchConcurrency,
    fetchTimeoutMs: m.fetchTimeoutMs,
    modelMaxBatch: m.modelMaxBatch,
    modelMaxWaitMs: m.modelMaxWaitMs,
    maxInFlight: m.maxInFlight,
    defaultDeadlineMs: m.deadlineMs,
    shedControl: m.shedControl,
    shedTargetRatio: m.shedTarget,
    safeguard: m.safeguard,
    safeguardPartitions: partitions,
  };
}

/**
 * Builds every model's release follower and pipeline over one shared Redis client. On a failure
 * what was built is closed and the error thrown (RELEASE_NOT_FOUND, RELEASE_INCOMPATIBLE, a
 * ConfigError naming the model). Not started: `startScoringServer` starts them.
 */
export async function buildModels(cfg: ServeConfig, models: readonly ServedModelConfig[], log: Logger): Promise<ModelRegistry> {
  const kafka = kafkaConnection(cfg.kafka);
  const redis = createRedis(redisConnection(cfg.redis), log);
  const closeRedis = async (): Promise<void> => {
    try {
      await redis.quit();
    } catch {
      redis.disconnect();
    }
  };
  const metrics = sharedMetrics();
  const built: ServedModel[] = [];
  const releases: ReleaseSource[] = [];
  try {
    for (const [i, m] of models.entries()) {
      const mlog = log.child({ model: m.name, namespace: m.namespace });
      const pipeline = await buildOne(cfg, m, kafka, redis, metrics, releases, mlog).catch((err: unknown) => {
        // A pipeline setting refused by the pipeline itself (serving/options.ts `serving.<key>`): name the entry.
        if (cfg.models !== undefined && err instanceof ConfigError)
          throw new ConfigError(`models[${i}].${err.key.replace(/^serving\./, '')}`, err.message.replace(/^invalid config "[^"]*": /, ''), { cause: err });
        throw err;
      });
      built.push({ name: m.name, pipeline, info: { adapter: m.adapter, model: m.model, namespace: m.namespace, releaseDir: resolve(m.releaseDir) } });
    }
  } catch (err) {
    const onError = (e: unknown): void => log.warn('close failed', { error: errorMessage(e) });
    await closeAll([...built.map((b) => ({ close: () => b.pipeline.stop(0) })), ...releases.slice(built.length).map((r) => ({ close: () => r.stop() }))], onError);
    await closeRedis();
    throw err;
  }
  return new ModelRegistry(built, closeRedis);
}

async function buildOne(
  cfg: ServeConfig,
  m: ServedModelConfig,
  kafka: KafkaConnection,
  redis: ReturnType<typeof createRedis>,
  metrics: ReturnType<typeof sharedMetrics>,
  releases: ReleaseSource[],
  log: Logger,
): Promise<ScoringPipeline> {
  const safeguard = safeguardSideOf(m.adapter, m.safeguard);
  const partitions = safeguard === 'off' ? 1 : (m.safeguardPartitions ?? (await partitionCount(kafka, labelledTopicFor(safeguard), log)));
  const follower = await followServedReleases({
    store: new ReleaseStore({ root: resolve(m.releaseDir) }),
    model: m.model,
    adapter: m.adapter,
    adapterOptions: m.adapterOptions,
    ...crossPartnerOf(m),
    keyPrefix: cfg.redis.keyPrefix,
    namespace: m.namespace,
    safeguard,
    pollIntervalMs: cfg.releasePollMs,
    ...(cfg.releaseAnnouncements ? { kafka: { connection: kafka, topic: TOPICS.releases } } : {}),
    logger: log,
  });
  releases.push(follower);
  // The shared client: the source does not own it (the registry closes it after every pipeline).
  const source = new RedisStateSource(redis, log);
  return new ScoringPipeline({ source, releases: follower, serving: servingOptionsOf({ ...m, safeguard }, cfg.bodyLimitBytes, partitions), model: m.name, metricFamilies: metrics, logger: log });
}
