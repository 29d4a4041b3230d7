/**
 * `thaw serve`: the scoring API (serving/). Follows the current release of --model like the
 * workers do, reads the --adapter workers' states from Redis through the staged pipeline (the FM's
 * fm-adagrad states, or a meta adapter's with its cross-side partner's views:
 * serving/adapter-release.ts), listens on --host:--port. With --models, several such models side by
 * side, each its own pipeline (cli/commands/serve-models.ts). SIGTERM/SIGINT: stops accepting, answers
 * the requests in flight, exits 0.
 */
import { resolve } from 'node:path';
import type { ServeConfig } from '../../config/commands/serve.js';
import { redactConfig } from '../../config/redact.js';
import { servedModels } from '../../config/commands/serve-models.js';
import { safeguardSideOf } from '../../serving/adapter-release.js';
import type { ModelRegistry } from '../../serving/models.js';
import { ScoringPipeline } from '../../serving/pipeline.js';
import { followReleases } from '../../serving/release.js';
import { startScoringServer } from '../../serving/server.js';
import { MapStateSource } from '../../serving/state-source.js';
import { loadDemoServing } from '../../serving/demo-state.js';
import { LoadRecorder } from '../../serving/load-recorder.js';
import type { Logger } from '../../lib/log.js';
import { EXIT, type Command, type CommandContext } from '../context.js';
import { aborted } from '../lifecycle.js';
import { buildModels, servingOptionsOf } from './serve-models.js';
import { RetrievalService } from '../../serving/retrieve.js';
import { RetrievalIndexer } from '../../serving/retrieve-indexer.js';
import { RetrievalReloader } from '../../serving/retrieve-reload.js';
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
  const log = ctx.logger.child({ command: 'serve' });
  // Every model validated (the --models file read) before anything connects.
  const specs = servedModels(cfg);
  log.info('starting the scoring API', { config: redactConfig(cfg), models: specs.map((m) => ({ name: m.name, adapter: m.adapter, model: m.model, namespace: m.namespace })) });
  const models = await buildModels(cfg, specs, log);
  // Connects Redis and waits for its PING before listening (a cold connection would time out the first reads).
  return listenUntilAborted(models, cfg, ctx, log, { models: models.names });
}

/** `thaw serve --demo`: the demo's last FM release and its states, in memory; no Redis, no Kafka. */
async function serveDemo(cfg: ServeConfig, ctx: CommandContext): Promise<number> {
  const out = resolve(cfg.out);
  const demo = await loadDemoServing(out, cfg.redis.keyPrefix);
  const log = ctx.logger.child({ command: 'serve', demo: out, namespace: demo.manifest.namespace });
  log.info("starting the scoring API on the demo's states", { states: demo.values.size, release: demo.manifest.release });
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
    pipeline = new ScoringPipeline({
      source: new MapStateSource(demo.values),
      releases,
      serving: servingOptionsOf({ ...cfg, safeguard: safeguardSideOf('fm-adagrad', cfg.safeguard) }, cfg.bodyLimitBytes, 1),
      logger: log,
    });
  } catch (err) {
    await releases.stop();
    throw err;
  }
  return listenUntilAborted(pipeline, cfg, ctx, log, { demo: out, states: demo.values.size });
}

/** Starts the pipeline (and retrieval, with --retrieval), listens, and stops gracefully on SIGTERM/SIGINT. */
async function listenUntilAborted(target: ScoringPipeline | ModelRegistry, cfg: ServeConfig, ctx: CommandContext, log: Logger, fields: Record<string, unknown>): Promise<number> {
  const recorder =
    cfg.recordLoad === undefined
      ? undefined
      : await LoadRecorder.open({
          file: cfg.recordLoad,
          deadlineMs: cfg.deadlineMs,
          maxArrivals: cfg.recordMaxArrivals,
          model: target instanceof ScoringPipeline ? 'default' : target.default.name,
          logger: log,
        });
  let retrieval;
  try {
    retrieval = cfg.retrieval === undefined ? undefined : await startRetrieval(cfg, cfg.retrieval, log);
  } catch (err) {
    await recorder?.close();
    throw err;
  }
  let server;
  try {
    server = await startScoringServer(target, {
      host: cfg.host,
      port: cfg.port,
      logger: log,
      ...(recorder === undefined ? {} : { recorder }),
      ...(retrieval === undefined ? {} : { retrieval: { service: retrieval.service, limits: { maxK: cfg.retrievalMaxK, maxHistory: 1000 } } }),
    });
  } catch (err) {
    await retrieval?.stop();
    throw err;
  }
  const releases = server.models.all().map((m) => `${server.models.several ? `${m.name}: ` : ''}${m.pipeline.currentRelease().id}`);
  log.info('serving', { address: server.address, releases, pid: process.pid, ...fields });
  // One of several processes (--processes): the primary prints the one "listening" line.
  if (!isServerProcess()) ctx.stdout.write(`thaw serve: listening on ${server.address} (release${releases.length > 1 ? 's' : ''} ${releases.join(', ')})\n`);
  await aborted(ctx.signal);
  log.info('stopping: answering the requests in flight');
  await server.stop();
  await retrieval?.stop();
  return EXIT.ok;
}

/** Loads the retrieval snapshot, starts its sealer, its Kafka indexer and the follower of DIR (a new item tower rebuilds the index). */
async function startRetrieval(cfg: ServeConfig, dir: string, log: Logger): Promise<{ service: RetrievalService; stop: () => Promise<void> }> {
  const indexOverrides = { efSearch: cfg.retrievalEf };
  const service = await RetrievalService.load(resolve(dir), indexOverrides);
  service.start();
  const indexer = new RetrievalIndexer({
    kafka: cfg.kafka,
    service,
    profileTopic: cfg.retrievalProfileTopic,
    eventTopic: cfg.retrievalEventTopic,
    fromBeginning: cfg.retrievalFromBeginning,
    maxGrowing: cfg.retrievalMaxGrowing,
    logger: log,
  });
  const reloader = new RetrievalReloader({ dir: resolve(dir), service, pollMs: cfg.retrievalReloadMs, indexOverrides, logger: log });
  try {
    await indexer.start();
    await reloader.start();
  } catch (err) {
    await indexer.stop();
    service.stop();
    throw err;
  }
  log.info('retrieval: serving POST /v1/retrieve and POST /v1/recommend', { snapshot: dir, ...service.index.stats() });
  return {
    service,
    stop: async () => {
      await reloader.stop();
      await indexer.stop();
      service.stop();
    },
  };
}
