/**
 * The routes of the scoring API over a server's models (serving/models.ts):
 * - `POST /v1/score`: the body's `model` field picks the model (absent: the default one);
 * - `POST /v1/models/:name/score`: the path picks it (a body `model` must then agree);
 * - `GET /v1/models`: every model with its configuration, release and staleness;
 * - `GET /readyz`: ready when every model runs, has a release and its store answers.
 * An unknown model is a 404 naming it and listing the known ones.
 *
 * Admission runs before the body is read when the model is known from the request line: always on
 * the path route, and on `/v1/score` when the server has one model. With several models a
 * `/v1/score` request is admitted after its body is parsed (its model is in the body): under
 * overload the path route refuses more cheaply.
 */
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { LoadRecorder } from './load-recorder.js';
import { OverloadedError } from './admission.js';
import { UnknownModelError, type ModelRegistry } from './models.js';
import type { ScoringPipeline } from './pipeline.js';
import { modelOfBody, parseScoreRequest, RequestError } from './request.js';

/** Seconds a refused client should wait before retrying (Retry-After). */
export const RETRY_AFTER_SECONDS = 1;

/** The path of the per-model scoring route. */
export const MODEL_SCORE_ROUTE = '/v1/models/:name/score';

/** The two-stage route (serving/recommend-routes.ts): admitted before its body is read, as /v1/score. */
export const RECOMMEND_ROUTE = '/v1/recommend';

const JSON_TYPE = 'application/json; charset=utf-8';

export function errorBody(code: string, field: string | null, message: string, extra?: Record<string, unknown>): string {
  return JSON.stringify({ error: { code, field, ...extra, message } });
}

/** A JSON error `{ error: { code, field, [reason | models], message } }`. */
export function sendError(reply: FastifyReply, status: number, code: string, field: string | null, message: string, extra?: Record<string, unknown>): FastifyReply {
  return reply
    .code(status)
    .header('content-type', JSON_TYPE)
    .send(errorBody(code, field, message, extra));
}

/** The deadline of a request: header `x-deadline-ms` (clamped to the maximum), else the default. */
export function deadlineOf(header: string | string[] | undefined, dflt: number, max: number): number {
  if (header === undefined) return dflt;
  const v = Number(Array.isArray(header) ? header[0] : header);
  if (!(Number.isFinite(v) && v > 0)) throw new RequestError('x-deadline-ms', `must be a positive number of milliseconds, got ${JSON.stringify(header)}`);
  return Math.min(v, max);
}

/**
 * Answers a failed scoring or recommendation request: 404 for an unknown model, 400 for bad input,
 * 503 with Retry-After when admission refused it, else 500 (logged as `what`). `count` gets the status.
 */
export function sendFailure(reply: FastifyReply, err: unknown, count: (status: string) => void, logger: Logger, what: string): FastifyReply {
  if (err instanceof UnknownModelError) {
    count('404');
    return sendError(reply, 404, err.code, 'model', err.message, { models: err.known });
  }
  if (err instanceof RequestError) {
    count(String(err.status));
    return sendError(reply, err.status, err.code, err.field, err.message);
  }
  if (err instanceof OverloadedError) {
    count('503');
    reply.header('retry-after', String(RETRY_AFTER_SECONDS));
    return sendError(reply, 503, err.code, null, err.message, { reason: err.reason });
  }
  count('500');
  logger.error(what, { error: errorMessage(err) });
  return sendError(reply, 500, 'INTERNAL', null, 'internal error');
}

/** The pipeline a request's line names before its body is read, or undefined (named in the body, or unknown). */
function pipelineOfLine(request: FastifyRequest, models: ModelRegistry): ScoringPipeline | undefined {
  if (request.method !== 'POST') return undefined;
  if (request.url === '/v1/score' || request.url === RECOMMEND_ROUTE) return models.several ? undefined : models.default.pipeline;
  if (request.routeOptions.url !== MODEL_SCORE_ROUTE) return undefined;
  return models.find((request.params as { name: string }).name)?.pipeline;
}

/** A live load recording: `recorder` records the valid requests `pipeline` scores (serving/load-recorder.ts). */
export interface Recording {
  recorder: LoadRecorder;
  pipeline: ScoringPipeline;
}

/** Registers the scoring, model-listing and readiness routes of `models` on `app`. */
export function registerScoringRoutes(app: FastifyInstance, models: ModelRegistry, logger: Logger, recording?: Recording): void {
  app.addHook('onRequest', (request, reply, done) => {
    request.arrivedAt = performance.now();
    // Admission before the body is read and parsed: under overload a refusal must be cheap, or
    // refusing alone saturates the server and requests queue in its sockets, where no deadline sees them.
    const pipeline = pipelineOfLine(request, models);
    if (pipeline !== undefined) {
      const cfg = pipeline.config;
      let deadline: number | undefined;
      try {
        deadline = deadlineOf(request.headers['x-deadline-ms'], cfg.defaultDeadlineMs, cfg.maxDeadlineMs);
      } catch {
        deadline = undefined; // the handler answers 400
      }
      const refused = deadline === undefined ? undefined : pipeline.refusal(request.arrivedAt, deadline);
      if (refused !== undefined) {
        if (pipeline === recording?.pipeline && request.url !== RECOMMEND_ROUTE) recording.recorder.refusedUnread();
        pipeline.metrics.requests.inc({ status: '503' });
        reply.header('retry-after', String(RETRY_AFTER_SECONDS));
        sendError(reply, 503, refused.code, null, refused.message, { reason: refused.reason });
        return;
      }
    }
    done();
  });

  const score = async (request: FastifyRequest, reply: FastifyReply, named: string | undefined): Promise<FastifyReply> => {
    const t0 = performance.now();
    let pipeline: ScoringPipeline | undefined;
    let body: string;
    try {
      const inBody = modelOfBody(request.body);
      if (named !== undefined && inBody !== undefined && inBody !== named) throw new RequestError('model', `names ${JSON.stringify(inBody)}, the path ${JSON.stringify(named)}`);
      pipeline = models.get(named ?? inBody).pipeline;
      const cfg = pipeline.config;
      const deadline = deadlineOf(request.headers['x-deadline-ms'], cfg.defaultDeadlineMs, cfg.maxDeadlineMs);
      const req = parseScoreRequest(request.body, cfg);
      if (pipeline === recording?.pipeline) recording.recorder.record(request.arrivedAt, request.body, request.headers['x-deadline-ms'] === undefined ? undefined : deadline);
      pipeline.metrics.service.observe({ stage: 'parse' }, (performance.now() - t0) / 1000);
      body = await pipeline.score(req, request.arrivedAt, deadline);
    } catch (err) {
      // Counted under the model that refused it; a bad or unknown model name under the default.
      const m = (pipeline ?? models.default.pipeline).metrics;
      return sendFailure(reply, err, (status) => m.requests.inc({ status }), logger, 'scoring failed');
    }
    const t1 = performance.now();
    pipeline.metrics.requests.inc({ status: '200' });
    reply.header('content-type', JSON_TYPE).send(body);
    pipeline.metrics.service.observe({ stage: 'respond' }, (performance.now() - t1) / 1000);
    return reply;
  };
  app.post('/v1/score', (request, reply) => score(request, reply, undefined));
  app.post<{ Params: { name: string } }>(MODEL_SCORE_ROUTE, (request, reply) => score(request, reply, request.params.name));

  app.get('/v1/models', async (_request, reply) => {
    const status = await models.status();
    return reply.header('content-type', JSON_TYPE).send(JSON.stringify({ default: models.default.name, models: status }));
  });

  // Ready: every model started (its store connected and answered a PING), not draining, and its store answers now.
  // The top-level release fields are the default model's (what a one-model server has always said).
  app.get('/readyz', async (_request, reply) => {
    const status = await models.status();
    const ready = status.every((s) => s.ready);
    const first = status[0];
    const body =
      first === undefined
        ? { ready }
        : {
            ready,
            state: first.state,
            release: first.release,
            releaseAgeMs: first.releaseAgeMs,
            store: status.every((s) => s.store === 'ok') ? 'ok' : 'unreachable',
            models: status.map((s) => ({ name: s.name, ready: s.ready, state: s.state, release: s.release, releaseAgeMs: s.releaseAgeMs, store: s.store })),
          };
    return reply
      .code(ready ? 200 : 503)
      .header('content-type', JSON_TYPE)
      .send(JSON.stringify(body));
  });
}
