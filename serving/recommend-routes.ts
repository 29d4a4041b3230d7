/**
 * `POST /v1/recommend` → the two-stage path: retrieve the k candidates of highest retrieval score
 * for the user (serving/retrieve.ts), rank them with the scoring pipeline (ScoringPipeline.rank: the
 * same admission, state reads, model, deadline and shedding as /v1/score), answer the top n:
 *   { requestId, release, releaseAgeMs, retrieved, user: { source },
 *     items: [{ id, score, retrievalScore, source }] }   best ranking score first
 * Candidates of equal ranking score keep their retrieval order. A candidate is ranked with the
 * features its profile or first event had on Kafka (RetrievalService.featuresOf), none when the
 * server has not seen them.
 *
 * Errors as on /v1/score (serving/routes.ts `sendFailure`); a server without a retrieval index
 * answers 503 `RETRIEVAL_UNAVAILABLE`.
 */
import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import type { ErrorCode } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { jsonScore, jsonString } from './json-out.js';
import type { ModelRegistry } from './models.js';
import type { ScoringPipeline } from './pipeline.js';
import type { RecommendMetrics } from './recommend-metrics.js';
import { parseRecommendRequest } from './recommend-request.js';
import { modelOfBody, type ScoreRequest } from './request.js';
import { DEFAULT_RETRIEVE_LIMITS, type RetrieveLimits } from './retrieve-request.js';
import type { RetrievalService } from './retrieve.js';
import { deadlineOf, RECOMMEND_ROUTE, sendError, sendFailure } from './routes.js';
import type { RankedJobResult } from './score-job.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/** Error code of a recommendation asked of a server without a retrieval index. */
export const RETRIEVAL_UNAVAILABLE: ErrorCode = 'RETRIEVAL_UNAVAILABLE';

/** The retrieval a server recommends from; undefined: none (503). */
export interface RecommendRetrieval {
  service: RetrievalService;
  limits?: RetrieveLimits;
}

/**
 * The candidates' positions, best ranking score first; equal scores (and NaN, last) in retrieval
 * order. Exported for the tests.
 */
export function rankOrder(scores: Float64Array): number[] {
  const order = Array.from(scores, (_s, i) => i);
  const key = (i: number): number => {
    const s = scores[i] ?? NaN;
    return Number.isNaN(s) ? Number.NEGATIVE_INFINITY : s;
  };
  return order.sort((a, b) => key(b) - key(a) || a - b);
}

/** Registers `POST /v1/recommend` over `models` and `retrieval`. */
export function registerRecommendRoutes(app: FastifyInstance, models: ModelRegistry, retrieval: RecommendRetrieval | undefined, metrics: RecommendMetrics, logger: Logger): void {
  const limits = retrieval?.limits ?? DEFAULT_RETRIEVE_LIMITS;
  app.post(RECOMMEND_ROUTE, async (request, reply) => {
    if (retrieval === undefined) {
      metrics.answered('503');
      return sendError(reply, 503, RETRIEVAL_UNAVAILABLE, null, 'this server has no retrieval index: start it with --retrieval DIR (thaw retrieval build)');
    }
    const service = retrieval.service;
    let pipeline: ScoringPipeline;
    let ranked: RankedJobResult;
    let ids: readonly string[];
    let retrievalScores: Float32Array;
    let n: number;
    let requestId: string | undefined;
    try {
      pipeline = models.get(modelOfBody(request.body)).pipeline;
      const cfg = pipeline.config;
      const deadline = deadlineOf(request.headers['x-deadline-ms'], cfg.defaultDeadlineMs, cfg.maxDeadlineMs);
      const req = parseRecommendRequest(request.body, { maxK: Math.min(limits.maxK, cfg.maxCandidates), maxHistory: limits.maxHistory });
      ({ n, requestId } = req);
      // Refused before the retrieval is paid for; rank() asks again.
      const refusal = pipeline.refusal(request.arrivedAt, deadline);
      if (refusal !== undefined) throw refusal;
      const t0 = performance.now();
      const hits = service.retrieve({ features: req.features, history: req.history, k: req.k, excludeHistory: req.excludeHistory });
      metrics.stage('retrieve', performance.now() - t0);
      ids = hits.ids;
      retrievalScores = hits.scores;
      const score: ScoreRequest = { requestId, user: { id: req.userId, features: req.features }, candidates: ids.map((id) => ({ id, features: service.featuresOf(id) ?? {} })) };
      ranked = await pipeline.rank(score, request.arrivedAt, deadline);
      metrics.stage('state', ranked.stateMs);
      metrics.stage('rank', ranked.rankMs);
    } catch (err) {
      return sendFailure(reply, err, (status) => metrics.answered(status), logger, 'recommendation failed');
    }
    const t1 = performance.now();
    const order = rankOrder(ranked.scores);
    let body = '{"requestId":' + (requestId === undefined ? 'null' : jsonString(requestId)) + ',"release":' + jsonString(ranked.release) + ',"releaseAgeMs":' + ranked.releaseAgeMs;
    body += ',"retrieved":' + ids.length + ',"user":{"source":"' + ranked.userSource + '"},"items":[';
    for (let r = 0; r < Math.min(n, order.length); r++) {
      const i = order[r] ?? 0;
      body += (r === 0 ? '{"id":' : ',{"id":') + jsonString(ids[i] ?? '') + ',"score":' + jsonScore(ranked.scores[i] ?? NaN) + ',"retrievalScore":' + jsonScore(retrievalScores[i] ?? NaN);
      body += ',"source":"' + (ranked.sources[i] ?? 'shared-only') + '"}';
    }
    body += ']}';
    metrics.answered('200');
    reply.header('content-type', JSON_TYPE).send(body);
    metrics.stage('respond', performance.now() - t1);
    return reply;
  });
}
