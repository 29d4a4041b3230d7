/**
 * `thaw serve`: the scoring API (serving/). Follows the current FM release like the workers do,
 * reads the fm-adagrad workers' states from Redis through the staged pipeline, listens on
 * --host:--port. SIGTERM/SIGINT: stops accepting, answers the requests in flight, exits 0.
 */
import { resolve } from 'node:path';
import type { ServeConfig } from '../../config/commands/serve.js';
import { redactConfig } from '../../config/redact.js';
import { errorMessage } from '../../lib/errors.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { ScoringPipeline } from '../../serving/pipeline.js';
import { followReleases } from '../../serving/release.js';
import type { ServingOptions } from '../../serving/options.js';
import { startScoringServer } from '../../serving/server.js';
import { RedisStateSource } from '../../serving/state-source.js';
import { partitionCount } from '../../streams/admin.js';
import { labelledTopicFor, TOPICS } from '../../streams/topics.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { kafkaConnection, redisConnection } from '../connect.js';
import { aborted, closeAll } from '../lifecycle.js';

export const serveCommand: Command<ServeConfig> = { run: serve };

async function serve(cfg: ServeConfig, ctx: CommandContext): Promise<number> {
  const log = ctx.logger.child({ command: 'serve', namespace: cfg.namespace });
  log.info('starting the scoring API', { config: redactConfig(cfg) });
  const kafka = kafkaConnection(cfg.kafka);
  const partitions =
    cfg.safeguard === 'off' ? 1 : (cfg.safeguardPartitions ?? (await partitionCount(kafka, labelledTopicFor(cfg.safeguard), log)));
  const releases = await followReleases({
    store: new ReleaseStore({ root: resolve(cfg.releaseDir) }),
    model: cfg.model,
    keyPrefix: cfg.redis.keyPrefix,
    namespace: cfg.namespace,
    safeguard: cfg.safeguard,
    pollIntervalMs: cfg.releasePollMs,
    ...(cfg.releaseAnnouncements ? { kafka: { connection: kafka, topic: TOPICS.releases } } : {}),
    logger: log,
  });
  const source = new RedisStateSource(redisConnection(cfg.redis), log);
  let pipeline: ScoringPipeline;
  try {
    pipeline = new ScoringPipeline({ source, releases, serving: servingOptionsOf(cfg, partitions), logger: log });
  } catch (err) {
    await closeAll([{ close: () => releases.stop() }, source], (e) => log.warn('close failed', { error: errorMessage(e) }));
    throw err;
  }
  // Connects Redis and waits for its PING before listening (a cold connection would time out the first reads).
  const server = await startScoringServer(pipeline, { host: cfg.host, port: cfg.port, logger: log });
  log.info('serving', { address: server.address, release: pipeline.currentRelease().id, safeguard: cfg.safeguard, partitions });
  ctx.stdout.write(`thaw serve: listening on ${server.address} (release ${pipeline.currentRelease().id})\n`);
  await aborted(ctx.signal);
  log.info('stopping: answering the requests in flight');
  await server.stop();
  return EXIT.ok;
}

/** The pipeline options of the command's flags. */
export function servingOptionsOf(cfg: Omit<ServeConfig, 'safeguardPartitions'>, partitions: number): ServingOptions {
  return {
    maxCandidates: cfg.maxCandidates,
    bodyLimitBytes: cfg.bodyLimitBytes,
    freshnessMs: cfg.freshnessMs,
    cacheEntries: cfg.cacheEntries,
    fetchConcurrency: cfg.fetchConcurrency,
    fetchTimeoutMs: cfg.fetchTimeoutMs,
    modelMaxBatch: cfg.modelMaxBatch,
    modelMaxWaitMs: cfg.modelMaxWaitMs,
    maxInFlight: cfg.maxInFlight,
    defaultDeadlineMs: cfg.deadlineMs,
    safeguard: cfg.safeguard,
    safeguardPartitions: partitions,
  };
}
