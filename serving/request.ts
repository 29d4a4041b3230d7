/**
 * Parse-and-validate stage of `POST /v1/score`: the body (already JSON-parsed by the HTTP layer) is
 * checked field by field and unknown fields are refused, so a typo never silently scores with
 * missing features. Errors name the field (`candidates[3].features.genre[0]`).
 */
import { ThawError } from '../lib/errors.js';
import type { Features } from '../schemas/types.js';

/** One entity of a request: its id and the features the model hashes (`field → tokens`). */
export interface ScoreEntity {
  id: string;
  features: Features;
}

/** A validated scoring request. */
export interface ScoreRequest {
  requestId: string | undefined;
  user: ScoreEntity;
  candidates: ScoreEntity[];
}

/** Limits of a request. */
export interface RequestLimits {
  maxCandidates: number;
}

/** Longest entity id or request id (characters). */
export const MAX_ID_LENGTH = 256;
/** Most feature fields of one entity, and tokens of one field (count). */
export const MAX_FEATURE_FIELDS = 64;
export const MAX_FIELD_TOKENS = 64;
/** Longest field name or token (characters). */
export const MAX_TOKEN_LENGTH = 256;

const NO_FEATURES: Features = Object.freeze({});

/** A request that is not valid: HTTP 400, `field` names where. */
export class RequestError extends ThawError {
  override readonly name = 'RequestError';
  readonly field: string;
  readonly status: number;
  constructor(field: string, message: string, status = 400) {
    super('REQUEST_INVALID', `${field}: ${message}`);
    this.field = field;
    this.status = status;
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function id(x: unknown, field: string): string {
  if (typeof x !== 'string') throw new RequestError(field, `must be a string, got ${typeName(x)}`);
  if (x.length === 0 || x.length > MAX_ID_LENGTH) throw new RequestError(field, `must have 1 to ${MAX_ID_LENGTH} characters, got ${x.length}`);
  return x;
}

function typeName(x: unknown): string {
  return x === null ? 'null' : Array.isArray(x) ? 'array' : typeof x;
}

function features(x: unknown, field: string): Features {
  if (x === undefined) return NO_FEATURES;
  if (!isObject(x)) throw new RequestError(field, `must be an object of field → array of strings, got ${typeName(x)}`);
  let fields = 0;
  for (const name in x) {
    if (++fields > MAX_FEATURE_FIELDS) throw new RequestError(field, `has more than ${MAX_FEATURE_FIELDS} fields`);
    if (name.length === 0 || name.length > MAX_TOKEN_LENGTH) throw new RequestError(`${field}.${name}`, `field names must have 1 to ${MAX_TOKEN_LENGTH} characters`);
    const tokens = x[name];
    if (!Array.isArray(tokens)) throw new RequestError(`${field}.${name}`, `must be an array of strings, got ${typeName(tokens)}`);
    if (tokens.length > MAX_FIELD_TOKENS) throw new RequestError(`${field}.${name}`, `has ${tokens.length} tokens, at most ${MAX_FIELD_TOKENS}`);
    for (let t = 0; t < tokens.length; t++) {
      const tok: unknown = tokens[t];
      if (typeof tok !== 'string') throw new RequestError(`${field}.${name}[${t}]`, `must be a string, got ${typeName(tok)}`);
      if (tok.length > MAX_TOKEN_LENGTH) throw new RequestError(`${field}.${name}[${t}]`, `must have at most ${MAX_TOKEN_LENGTH} characters`);
    }
  }
  // The shape is checked: the object is used as it is (no copy on the hot path).
  return x as Features;
}

function entity(x: unknown, field: string): ScoreEntity {
  if (!isObject(x)) throw new RequestError(field, `must be an object { id, features? }, got ${typeName(x)}`);
  for (const key in x) {
    if (key !== 'id' && key !== 'features') throw new RequestError(`${field}.${key}`, 'unknown field (expected id, features)');
  }
  return { id: id(x.id, `${field}.id`), features: features(x.features, `${field}.features`) };
}

/**
 * The body's `model` field (which of the server's models scores it, serving/models.ts), undefined
 * when absent; a RequestError when it is not a model name. Read before the rest of the body, whose
 * limits are that model's.
 */
export function modelOfBody(body: unknown): string | undefined {
  if (!isObject(body) || body.model === undefined) return undefined;
  if (typeof body.model !== 'string' || !MODEL_NAME.test(body.model)) throw new RequestError('model', `must be a model name (letters, digits, - and _, at most 64), got ${JSON.stringify(body.model)}`);
  return body.model;
}

/** A model's name: letters, digits, `-` and `_` (1 to 64). */
export const MODEL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Validates a parsed body (its `model` field is read by `modelOfBody`); throws RequestError naming the first bad field. */
export function parseScoreRequest(body: unknown, limits: RequestLimits): ScoreRequest {
  if (!isObject(body)) throw new RequestError('body', `must be a JSON object, got ${typeName(body)}`);
  for (const key in body) {
    if (key !== 'requestId' && key !== 'user' && key !== 'candidates' && key !== 'context' && key !== 'model') {
      throw new RequestError(key, 'unknown field (expected requestId, model, user, candidates, context)');
    }
  }
  const requestId = body.requestId === undefined ? undefined : id(body.requestId, 'requestId');
  if (body.context !== undefined && !isObject(body.context)) throw new RequestError('context', `must be an object, got ${typeName(body.context)}`);
  if (body.user === undefined) throw new RequestError('user', 'is required');
  const user = entity(body.user, 'user');
  const list = body.candidates;
  if (!Array.isArray(list)) throw new RequestError('candidates', `must be an array, got ${typeName(list)}`);
  if (list.length === 0) throw new RequestError('candidates', 'must hold at least one candidate');
  if (list.length > limits.maxCandidates) throw new RequestError('candidates', `has ${list.length} candidates, at most ${limits.maxCandidates}`);
  const candidates = new Array<ScoreEntity>(list.length);
  for (let i = 0; i < list.length; i++) candidates[i] = entity(list[i], `candidates[${i}]`);
  return { requestId, user, candidates };
}

/** The field checks above, for the other request parsers of serving/ (serving/retrieve-request.ts). */
export { id as parseEntityId, features as parseFeatures, typeName, isObject };
