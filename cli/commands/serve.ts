/**
 * `thaw serve`: the scoring API (serving/). Follows the current release of --model like the
 * workers do, reads the --adapter workers' states from Redis through the staged pipeline (the FM's
 * fm-adagrad states, or a meta adapter's with its cross-side partner's views:
 * serving/adapter-release.ts), listens on --host:--port. SIGTERM/SIGINT: stops accepting, answers
 * the requests in flight, exits 0.
 */
import { resolve } from 'node:path';
import type { ServeConfig } from '../../config/commands/serve.js';
import { redactConfig } from '../../config/redact.js';
import { errorMessage } from '../../lib/errors.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { ScoringPipeline } from '../../serving/pipeline.js';
import { followReleases } from '../../serving/release.js';
import { followServedReleases, safeguardSideOf } from '../../serving/adapter-release.js';
import type { ServingOptions } from '../../serving/options.js';
import { startScoringServer } from '../../serving/server.js';
import { MapStateSource, RedisStateSource } from '../../serving/state-source.js';
import { loadDemoServing } from '../../serving/demo-state.js';
import type { Logger } from '../../lib/log.js';
import type { Side } from '../../schemas/types.js';
import { partitionCount } from '../../streams/admin.js';
import { labelledTopicFor, TOPICS } from '../../streams/topics.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { kafkaConnection, redisConnection } from '../connect.js';
import { aborted, closeAll } from '../lifecycle.js';
import { isServerProcess, serverProcessSignal, superviseServerProcesses } from '../serve-processes.js';

export const serveCommand: Command<ServeConfig> = { run: serve };

async function serve(cfg: ServeConfig, ctx: CommandContext): Promise<number> {
  if (cfg.processes > 1 && !isServerProcess()) {
    const log = ctx.logger.child({ command: 'serve' });
    log.info('starting server processes on one port', { processes: cfg.processes, config: redactConfig(cfg) });
    return superviseServerProcesses(cfg.processes, ctx, log);
  }
  // A process of several listens for the primary's stop from the start (it may come while starting).
  if (isServerProcess()) ctx = { ...ctx, signal: serverProcessSignal(ctx.signal) };
  if (cfg.demo) return serveDemo(cfg, ctx);
  const log = ctx.logger.child({ command: 'serve', namespace: cfg.namespace });
  log.info('starting the scoring API', { config: redactConfig(cfg) });
  const kafka = kafkaConnection(cfg.kafka);
  const safeguard = safeguardSideOf(cfg.adapter, cfg.safeguard);
  const partitions =
    safeguard === 'off' ? 1 : (cfg.safeguardPartitions ?? (await partitionCount(kafka, labelledTopicFor(safeguard), log)));
  const releases = await followServedReleases({
    store: new ReleaseStore({ root: resolve(cfg.releaseDir) }),
    model: cfg.model,
    adapter: cfg.adapter,
    adapterOptions: cfg.adapterOptions,
    ...crossPartnerOf(cfg),
    keyPrefix: cfg.redis.keyPrefix,
    namespace: cfg.namespace,
    safeguard,
    pollIntervalMs: cfg.releasePollMs,
    ...(cfg.releaseAnnouncements ? { kafka: { connection: kafka, topic: TOPICS.releases } } : {}),
    logger: log,
  });
  const source = new RedisStateSource(redisConnection(cfg.redis), log);
  let pipeline: ScoringPipeline;
  try {
    pipeline = new ScoringPipeline({ source, releases, serving: servingOptionsOf({ ...cfg, safeguard }, partitions), logger: log });
  } catch (err) {
    await closeAll([{ close: () => releases.stop() }, source], (e) => log.warn('close failed', { error: errorMessage(e) }));
    throw err;
  }
  // Connects Redis and waits for its PING before listening (a cold connection would time out the first reads).
  return listenUntilAborted(pipeline, cfg, ctx, log, { adapter: cfg.adapter, safeguard, partitions });
}

/** The cross-side partner of a meta adapter's server, as `thaw run` resolves its workers' (cli/commands/run.ts crossPartner). */
function crossPartnerOf(cfg: ServeConfig): { cross?: { adapter: string; model: string } | null } {
  if (cfg.adapter === 'fm-adagrad') return {};
  if (cfg.crossAdapter === 'off') return { cross: null };
  const adapter = cfg.crossAdapter === 'auto' ? 'fm-adagrad' : cfg.crossAdapter;
  return { cross: { adapter, model: cfg.crossModel ?? (adapter === cfg.adapter ? cfg.model : 'fm') } };
}

/** `thaw serve --demo`: the demo's last FM release and its states, in memory; no Redis, no Kafka. */
async function serveDemo(cfg: ServeConfig, ctx: CommandContext): Promise<number> {
  const out = resolve(cfg.out);
  const demo = await loadDemoServing(out, cfg.redis.keyPrefix);
  const log = ctx.logger.child({ command: 'serve', demo: out, namespace: demo.manifest.namespace });
  log.info('starting the scoring API on the demo\'s states', { states: demo.values.size, release: demo.manifest.release });
  const releases = await followReleases({
    store: demo.releases,
    model: demo.manifest.model,
    keyPrefix: cfg.redis.keyPrefix,
    namespace: demo.manifest.namespace,
    safeguard: safeguardSideOf('fm-adagrad', cfg.safeguard),
    pollIntervalMs: cfg.releasePollMs,
    logger: log,
  });
  let pipeline: ScoringPipeline;
  try {
    // The demo's workers ran one partition per side: one safeguard state (p0).
    pipeline = new ScoringPipeline({ source: new MapStateSource(demo.values), releases, serving: servingOptionsOf({ ...cfg, safeguard: safeguardSideOf('fm-adagrad', cfg.safeguard) }, 1), logger: log });
  } catch (err) {
    await releases.stop();
    throw err;
  }
  return listenUntilAborted(pipeline, cfg, ctx, log, { demo: out, states: demo.values.size });
}

/** Starts the pipeline, listens, and stops gracefully on SIGTERM/SIGINT. */
async function listenUntilAborted(pipeline: ScoringPipeline, cfg: ServeConfig, ctx: CommandContext, log: Logger, fields: Record<string, unknown>): Promise<number> {
  const server = await startScoringServer(pipeline, { host: cfg.host, port: cfg.port, logger: log });
  log.info('serving', { address: server.address, release: pipeline.currentRelease().id, pid: process.pid, ...fields });
  // One of several processes (--processes): the primary prints the one "listening" line.
  if (!isServerProcess()) ctx.stdout.write(`thaw serve: listening on ${server.address} (release ${pipeline.currentRelease().id})\n`);
  await aborted(ctx.signal);
  log.info('stopping: answering the requests in flight');
  await server.stop();
  return EXIT.ok;
}

/** The pipeline options of the command's flags (the safeguard side resolved: `safeguardSideOf`). */
export function servingOptionsOf(cfg: Omit<ServeConfig, 'safeguardPartitions' | 'safeguard'> & { safeguard: Side | 'off' }, partitions: number): ServingOptions {
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
