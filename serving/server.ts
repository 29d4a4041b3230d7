/**
 * The HTTP face of the scoring pipelines: `POST /v1/score`, `POST /v1/models/:name/score`,
 * `GET /v1/models`, `GET /healthz`, `GET /readyz`, `GET /metrics` (the routes: serving/routes.ts),
 * with a retrieval service `POST /v1/retrieve` (serving/retrieve-routes.ts), and `POST /v1/recommend`,
 * retrieval then ranking (serving/recommend-routes.ts; 503 RETRIEVAL_UNAVAILABLE without one).
 * A server serves one pipeline or several named models (serving/models.ts).
 *
 * Server: fastify. It is well kept, its JSON body parser refuses prototype poisoning, and its body
 * limit and error hooks give the 400/413 answers the API needs. Measured against the least a node:http
 * server must do for the same route (bench/serving/http-cost.ts, bench/README.md "HTTP layer"), it
 * costs little of an answer's CPU or of a refusal's: not enough to write our own.
 *
 * Errors are JSON: `{ "error": { "code", "field", "message" } }`. Bad input is 400 (413 for a body
 * over the limit) naming the field; an unknown model is 404 (`MODEL_NOT_FOUND`, `error.models`
 * lists the known ones); a request refused by admission control is 503 with Retry-After and
 * `error.reason`: `deadline` (its deadline cannot be met), `late` (it passed while queued),
 * `queue-full` (`maxInFlight` reached), `starting` or `stopping`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import type { LoadRecorder } from './load-recorder.js';
import { ModelRegistry, singleModel } from './models.js';
import { ScoringPipeline } from './pipeline.js';
import { registerScoringRoutes, sendError } from './routes.js';
import type { RetrievalService } from './retrieve.js';
import type { RetrieveLimits } from './retrieve-request.js';
import { registerRetrievalRoutes } from './retrieve-routes.js';
import { registerRetrievalMetrics } from './retrieve-metrics.js';
import { registerRecommendMetrics, type RecommendStage } from './recommend-metrics.js';
import { registerRecommendRoutes } from './recommend-routes.js';

export { RETRY_AFTER_SECONDS } from './routes.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** performance.now() when the request's headers arrived. */
    arrivedAt: number;
  }
}

/** A listening scoring server and its lifecycle. */
export interface ScoringServer {
  readonly app: FastifyInstance;
  /** The default model's pipeline (the only one of a one-model server). */
  readonly pipeline: ScoringPipeline;
  readonly models: ModelRegistry;
  /** `http://host:port` it listens on. */
  readonly address: string;
  /**
   * Graceful stop: the pipelines drain (new requests 503, those in flight answered, at most
   * `graceMs`), the HTTP server closes, then the pipelines close their release and state sources
   * and the registry what they share. Idempotent.
   */
  stop(graceMs?: number): Promise<void>;
}

export interface ScoringServerOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0: any free port. @default 0 */
  port?: number;
  /** How long to wait for the state store at start (ms). @default 10_000 */
  startTimeoutMs?: number;
  logger?: Logger;
  /** Record the default model's valid requests (`thaw serve --record-load`); closed by `stop()`. @default none */
  recorder?: LoadRecorder;
  /** Serve `POST /v1/retrieve` and `POST /v1/recommend` over this retrieval service (serving/retrieve.ts). @default none: /v1/retrieve is 404, /v1/recommend 503 */
  retrieval?: { service: RetrievalService; limits?: RetrieveLimits };
  /** Also told each /v1/recommend stage's time (ms), besides /metrics (the bench's raw figures). @default none */
  onRecommendStage?: (stage: RecommendStage, ms: number) => void;
}

function registryOf(target: ScoringPipeline | ModelRegistry): ModelRegistry {
  return target instanceof ScoringPipeline ? singleModel(target) : target;
}

/**
 * Starts the pipelines (their stores connected and answering), then listens. On a failed start
 * every pipeline is stopped (its sources closed) and the error thrown.
 */
export async function startScoringServer(target: ScoringPipeline | ModelRegistry, opts: ScoringServerOptions = {}): Promise<ScoringServer> {
  const models = registryOf(target);
  const app = createScoringApp(models, opts.logger, {
    ...(opts.recorder === undefined ? {} : { recorder: opts.recorder }),
    ...(opts.retrieval === undefined ? {} : { retrieval: opts.retrieval }),
    ...(opts.onRecommendStage === undefined ? {} : { onRecommendStage: opts.onRecommendStage }),
  });
  let address: string;
  try {
    await models.start(opts.startTimeoutMs);
    address = await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  } catch (err) {
    await app.close().catch(() => undefined);
    await opts.recorder?.close();
    await models.stop(0);
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    app,
    pipeline: models.default.pipeline,
    models,
    address,
    stop: (graceMs?: number) =>
      (stopping ??= (async () => {
        await models.drain(graceMs);
        await app.close();
        await opts.recorder?.close();
        await models.stop(0);
      })()),
  };
}

/**
 * Builds (does not listen) the fastify app over a pipeline or several models. The body limit is the
 * default model's; `extras.recorder` records the default model's valid requests, `extras.retrieval`
 * adds `POST /v1/retrieve` and the index `POST /v1/recommend` retrieves from.
 */
export function createScoringApp(
  target: ScoringPipeline | ModelRegistry,
  logger: Logger = silentLogger,
  extras: Pick<ScoringServerOptions, 'recorder' | 'retrieval' | 'onRecommendStage'> = {},
): FastifyInstance {
  const { recorder, retrieval, onRecommendStage } = extras;
  const models = registryOf(target);
  const bodyLimit = models.default.pipeline.config.bodyLimitBytes;
  const app = Fastify({ bodyLimit, logger: false, return503OnClosing: true });
  app.decorateRequest('arrivedAt', 0);

  app.setErrorHandler((err: { statusCode?: number; code?: string; message?: string }, _request, reply) => {
    const status = err.statusCode ?? 500;
    if (status === 413) return sendError(reply, 413, 'REQUEST_INVALID', 'body', `the body is larger than ${bodyLimit} bytes`);
    if (status >= 400 && status < 500) return sendError(reply, status, 'REQUEST_INVALID', 'body', err.message ?? 'bad request');
    logger.error('scoring request failed', { error: err.message ?? errorMessage(err) });
    return sendError(reply, 500, 'INTERNAL', null, 'internal error');
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'NOT_FOUND', null, `no route ${request.method} ${request.url}`));

  registerScoringRoutes(app, models, logger, recorder === undefined ? undefined : { recorder, pipeline: models.default.pipeline });
  const registry = models.default.pipeline.metrics.registry;
  if (retrieval !== undefined) registerRetrievalRoutes(app, retrieval.service, logger, retrieval.limits, { observe: registerRetrievalMetrics(registry, retrieval.service) });
  registerRecommendRoutes(app, models, retrieval, registerRecommendMetrics(registry, onRecommendStage), logger);
  app.get('/healthz', (_request, reply) => reply.header('content-type', 'application/json; charset=utf-8').send('{"status":"ok"}'));
  app.get('/metrics', async (_request, reply) => reply.header('content-type', registry.contentType).send(await registry.metrics()));
  return app;
}
