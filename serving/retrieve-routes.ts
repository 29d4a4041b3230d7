/**
 * `POST /v1/retrieve` → `{ requestId?, ids, scores, indexItems, growing }`: the k items of highest
 * score for the user (serving/retrieve.ts). Bad input is 400 naming the field, as on /v1/score.
 */
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { RequestError } from './request.js';
import { parseRetrieveRequest, type RetrieveLimits, DEFAULT_RETRIEVE_LIMITS } from './retrieve-request.js';
import type { RetrievalService } from './retrieve.js';
import { sendError } from './routes.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/** Per-request timing of the route (for /metrics-like reporting by the caller). */
export interface RetrieveTimings {
  /** Called with the time spent in the retrieval (ms): user tower, search, merge. */
  observe?: (ms: number) => void;
}

/** Registers `POST /v1/retrieve` over `service`. */
export function registerRetrievalRoutes(app: FastifyInstance, service: RetrievalService, logger: Logger, limits: RetrieveLimits = DEFAULT_RETRIEVE_LIMITS, timings: RetrieveTimings = {}): void {
  app.post('/v1/retrieve', async (request, reply) => {
    try {
      const req = parseRetrieveRequest(request.body, limits);
      const t0 = performance.now();
      const hits = service.retrieve({ features: req.features, history: req.history, k: req.k, excludeHistory: req.excludeHistory });
      timings.observe?.(performance.now() - t0);
      const stats = service.index.stats();
      const body = { ...(req.requestId === undefined ? {} : { requestId: req.requestId }), ids: hits.ids, scores: Array.from(hits.scores), indexItems: stats.items, growing: stats.growing };
      return reply.header('content-type', JSON_TYPE).send(JSON.stringify(body));
    } catch (err) {
      if (err instanceof RequestError) return sendError(reply, err.status, err.code, err.field, err.message);
      logger.error('retrieval failed', { error: errorMessage(err) });
      return sendError(reply, 500, 'INTERNAL', null, 'internal error');
    }
  });
}
