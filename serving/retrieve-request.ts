/**
 * Parse-and-validate of `POST /v1/retrieve`:
 *   { "requestId"?: string, "user": { "id": string, "features"?: {field: [token]}, "history"?: [itemId] },
 *     "k": integer, "excludeHistory"?: boolean }
 * Unknown fields are refused and every error names its field (serving/request.ts's style).
 */
import { isObject, parseEntityId, parseFeatures, RequestError, typeName } from './request.js';
import type { Features } from '../schemas/types.js';

/** A validated retrieval request. */
export interface RetrieveRequest {
  requestId: string | undefined;
  userId: string;
  features: Features;
  history: string[];
  k: number;
  excludeHistory: boolean;
}

/** Limits of a retrieval request. */
export interface RetrieveLimits {
  /** Largest k. */
  maxK: number;
  /** Longest history (item ids). */
  maxHistory: number;
}

export const DEFAULT_RETRIEVE_LIMITS: RetrieveLimits = { maxK: 1000, maxHistory: 1000 };

/** Validates a parsed body; throws RequestError naming the first bad field. */
export function parseRetrieveRequest(body: unknown, limits: RetrieveLimits = DEFAULT_RETRIEVE_LIMITS): RetrieveRequest {
  if (!isObject(body)) throw new RequestError('body', `must be a JSON object, got ${typeName(body)}`);
  for (const key in body) {
    if (key !== 'requestId' && key !== 'user' && key !== 'k' && key !== 'excludeHistory') throw new RequestError(key, 'unknown field (expected requestId, user, k, excludeHistory)');
  }
  const requestId = body.requestId === undefined ? undefined : parseEntityId(body.requestId, 'requestId');
  const user = body.user;
  if (user === undefined) throw new RequestError('user', 'is required');
  if (!isObject(user)) throw new RequestError('user', `must be an object { id, features?, history? }, got ${typeName(user)}`);
  for (const key in user) {
    if (key !== 'id' && key !== 'features' && key !== 'history') throw new RequestError(`user.${key}`, 'unknown field (expected id, features, history)');
  }
  const userId = parseEntityId(user.id, 'user.id');
  const features = parseFeatures(user.features, 'user.features');
  const history: string[] = [];
  if (user.history !== undefined) {
    if (!Array.isArray(user.history)) throw new RequestError('user.history', `must be an array of item ids, got ${typeName(user.history)}`);
    if (user.history.length > limits.maxHistory) throw new RequestError('user.history', `has ${user.history.length} items, at most ${limits.maxHistory}`);
    for (let i = 0; i < user.history.length; i++) history.push(parseEntityId(user.history[i], `user.history[${i}]`));
  }
  const k = body.k;
  if (k === undefined) throw new RequestError('k', 'is required');
  if (typeof k !== 'number' || !Number.isInteger(k) || k < 1 || k > limits.maxK) throw new RequestError('k', `must be an integer in [1, ${limits.maxK}], got ${JSON.stringify(k)}`);
  const excludeHistory = body.excludeHistory === undefined ? true : body.excludeHistory;
  if (typeof excludeHistory !== 'boolean') throw new RequestError('excludeHistory', `must be a boolean, got ${typeName(excludeHistory)}`);
  return { requestId, userId, features, history, k, excludeHistory };
}
