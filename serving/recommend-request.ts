/**
 * Parse-and-validate of `POST /v1/recommend`:
 *   { "requestId"?: string, "model"?: string, "user": { "id", "features"?, "history"? },
 *     "k": integer, "n": integer, "excludeHistory"?: boolean, "context"?: object }
 * `user`, `k` and `excludeHistory` are /v1/retrieve's (serving/retrieve-request.ts); `model` and
 * `context` are /v1/score's; `n` (how many of the k ranked candidates to answer) is in [1, k].
 */
import { isObject, RequestError, typeName } from './request.js';
import { parseRetrieveRequest, type RetrieveLimits, type RetrieveRequest } from './retrieve-request.js';

/** A validated recommendation request. */
export interface RecommendRequest extends RetrieveRequest {
  n: number;
}

const FIELDS = new Set(['requestId', 'model', 'user', 'k', 'n', 'excludeHistory', 'context']);

/**
 * Validates a parsed body (its `model` field is read by `modelOfBody`); throws RequestError naming
 * the first bad field. `limits.maxK` is the smaller of the retrieval limit and the model's
 * `maxCandidates`: every retrieved candidate is ranked.
 */
export function parseRecommendRequest(body: unknown, limits: RetrieveLimits): RecommendRequest {
  if (!isObject(body)) throw new RequestError('body', `must be a JSON object, got ${typeName(body)}`);
  const retrieve: Record<string, unknown> = {};
  for (const key in body) {
    if (!FIELDS.has(key)) throw new RequestError(key, 'unknown field (expected requestId, model, user, k, n, excludeHistory, context)');
    if (key !== 'model' && key !== 'n' && key !== 'context') retrieve[key] = body[key];
  }
  if (body.context !== undefined && !isObject(body.context)) throw new RequestError('context', `must be an object, got ${typeName(body.context)}`);
  const req = parseRetrieveRequest(retrieve, limits);
  const n = body.n;
  if (n === undefined) throw new RequestError('n', 'is required');
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new RequestError('n', `must be an integer in [1, k], got ${JSON.stringify(n)}`);
  if (n > req.k) throw new RequestError('n', `must be at most k (${req.k}), got ${n}`);
  return { ...req, n };
}
