/**
 * The HTTP face of the scoring pipeline: `POST /v1/score`, `GET /healthz`, `GET /readyz`,
 * `GET /metrics`.
 *
 * Server: fastify. It is well kept, its JSON body parser refuses prototype poisoning, and its body
 * limit and error hooks give the 400/413 answers the API needs. node:http was not measured against
 * it here: in this pipeline the per-request work of the stages dominates (bench/serving prints the
 * model stage and MGET alone beside the server), and the router's share is small.
 *
 * Errors are JSON: `{ "error": { "code", "field", "message" } }`. Bad input is 400 (413 for a body
 * over the limit) naming the field; a request refused by admission control is 503 with Retry-After
 * and `error.reason`: `deadline` (its deadline cannot be met), `late` (it passed while queued),
 * `queue-full` (`maxInFlight` reached), `starting` or `stopping`.
 */
import { performance } from 'node:perf_hooks';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { errorMessage } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { OverloadedError } from './admission.js';
import type { ScoringPipeline } from './pipeline.js';
import { parseScoreRequest, RequestError } from './request.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** performance.now() when the request's headers arrived. */
    arrivedAt: number;
  }
}

/** Seconds a refused client should wait before retrying (Retry-After). */
export const RETRY_AFTER_SECONDS = 1;

function errorBody(code: string, field: string | null, message: string, reason?: string): string {
  return JSON.stringify({ error: reason === undefined ? { code, field, message } : { code, field, reason, message } });
}

function sendError(reply: FastifyReply, status: number, code: string, field: string | null, message: string, reason?: string): FastifyReply {
  return reply.code(status).header('content-type', 'application/json; charset=utf-8').send(errorBody(code, field, message, reason));
}

/** The deadline of a request: header `x-deadline-ms` (clamped to the maximum), else the default. */
function deadlineOf(header: string | string[] | undefined, dflt: number, max: number): number {
  if (header === undefined) return dflt;
  const v = Number(Array.isArray(header) ? header[0] : header);
  if (!(Number.isFinite(v) && v > 0)) throw new RequestError('x-deadline-ms', `must be a positive number of milliseconds, got ${JSON.stringify(header)}`);
  return Math.min(v, max);
}

/** A listening scoring server and its lifecycle. */
export interface ScoringServer {
  readonly app: FastifyInstance;
  readonly pipeline: ScoringPipeline;
  /** `http://host:port` it listens on. */
  readonly address: string;
  /**
   * Graceful stop: the pipeline drains (new requests 503, those in flight answered, at most
   * `graceMs`), the HTTP server closes, then the pipeline closes its release and state sources.
   * Idempotent.
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
}

/**
 * Starts the pipeline (the store connected and answering), then listens. On a failed start the
 * pipeline is stopped (its sources closed) and the error thrown.
 */
export async function startScoringServer(pipeline: ScoringPipeline, opts: ScoringServerOptions = {}): Promise<ScoringServer> {
  const app = createScoringApp(pipeline, opts.logger);
  let address: string;
  try {
    await pipeline.start(opts.startTimeoutMs);
    address = await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  } catch (err) {
    await app.close().catch(() => undefined);
    await pipeline.stop(0);
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    app,
    pipeline,
    address,
    stop: (graceMs?: number) =>
      (stopping ??= (async () => {
        await pipeline.drain(graceMs);
        await app.close();
        await pipeline.stop(0);
      })()),
  };
}

/** Builds (does not listen) the fastify app over a pipeline. */
export function createScoringApp(pipeline: ScoringPipeline, logger: Logger = silentLogger): FastifyInstance {
  const cfg = pipeline.config;
  const app = Fastify({ bodyLimit: cfg.bodyLimitBytes, logger: false, return503OnClosing: true });
  app.decorateRequest('arrivedAt', 0);
  const m = pipeline.metrics;
  app.addHook('onRequest', (request, reply, done) => {
    request.arrivedAt = performance.now();
    // Admission before the body is read and parsed: under overload a refusal must be cheap, or
    // refusing alone saturates the server and requests queue in its sockets, where no deadline sees them.
    if (request.method === 'POST' && request.url === '/v1/score') {
      let deadline: number | undefined;
      try {
        deadline = deadlineOf(request.headers['x-deadline-ms'], cfg.defaultDeadlineMs, cfg.maxDeadlineMs);
      } catch {
        deadline = undefined; // the handler answers 400
      }
      const refused = deadline === undefined ? undefined : pipeline.refusal(request.arrivedAt, deadline);
      if (refused !== undefined) {
        m.requests.inc({ status: '503' });
        reply.header('retry-after', String(RETRY_AFTER_SECONDS));
        sendError(reply, 503, refused.code, null, refused.message, refused.reason);
        return;
      }
    }
    done();
  });

  app.setErrorHandler((err: { statusCode?: number; code?: string; message?: string }, _request, reply) => {
    const status = err.statusCode ?? 500;
    if (status === 413) return sendError(reply, 413, 'REQUEST_INVALID', 'body', `the body is larger than ${cfg.bodyLimitBytes} bytes`);
    if (status >= 400 && status < 500) return sendError(reply, status, 'REQUEST_INVALID', 'body', err.message ?? 'bad request');
    logger.error('scoring request failed', { error: err.message ?? errorMessage(err) });
    return sendError(reply, 500, 'INTERNAL', null, 'internal error');
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'NOT_FOUND', null, `no route ${request.method} ${request.url}`));

  app.post('/v1/score', async (request, reply) => {
    const t0 = performance.now();
    let body: string;
    try {
      const deadline = deadlineOf(request.headers['x-deadline-ms'], cfg.defaultDeadlineMs, cfg.maxDeadlineMs);
      const req = parseScoreRequest(request.body, cfg);
      m.service.observe({ stage: 'parse' }, (performance.now() - t0) / 1000);
      body = await pipeline.score(req, request.arrivedAt, deadline);
    } catch (err) {
      if (err instanceof RequestError) {
        m.requests.inc({ status: String(err.status) });
        return sendError(reply, err.status, err.code, err.field, err.message);
      }
      if (err instanceof OverloadedError) {
        m.requests.inc({ status: '503' });
        reply.header('retry-after', String(RETRY_AFTER_SECONDS));
        return sendError(reply, 503, err.code, null, err.message, err.reason);
      }
      m.requests.inc({ status: '500' });
      logger.error('scoring failed', { error: errorMessage(err) });
      return sendError(reply, 500, 'INTERNAL', null, 'internal error');
    }
    const t1 = performance.now();
    m.requests.inc({ status: '200' });
    reply.header('content-type', 'application/json; charset=utf-8').send(body);
    m.service.observe({ stage: 'respond' }, (performance.now() - t1) / 1000);
    return reply;
  });

  app.get('/healthz', (_request, reply) => reply.header('content-type', 'application/json; charset=utf-8').send('{"status":"ok"}'));

  // Ready: started (the store connected and answered a PING), not draining, and the store answers now.
  app.get('/readyz', async (_request, reply) => {
    const release = pipeline.currentRelease();
    const store = await pipeline.storeAnswers();
    const ready = store && pipeline.state === 'running';
    return reply
      .code(ready ? 200 : 503)
      .header('content-type', 'application/json; charset=utf-8')
      .send(JSON.stringify({ ready, state: pipeline.state, release: release.id, releaseAgeMs: Math.max(0, Date.now() - release.createdAtMs), store: store ? 'ok' : 'unreachable' }));
  });

  app.get('/metrics', async (_request, reply) => reply.header('content-type', m.registry.contentType).send(await m.registry.metrics()));
  return app;
}
