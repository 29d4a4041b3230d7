/**
 * The naive baseline of the serving bench: what a straightforward server does. Per request, one
 * MGET of its 1 + n keys and one model call, no coalescing across requests, no cache, no
 * admission control; the same request parser, the same FM kernel and safeguard mixture and the
 * same response (serving/json-out.ts) as `thaw serve`, so the difference is the pipeline.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { Safeguard } from '../../consumers/safeguard.js';
import { entityKey } from '../../model-store/keys.js';
import { readStateView } from '../../model-store/state-codec.js';
import type { ServingRelease } from '../../serving/release.js';
import { jsonScore, jsonString } from '../../serving/json-out.js';
import { parseScoreRequest, RequestError } from '../../serving/request.js';

export function createNaiveApp(redis: Redis, release: ServingRelease, maxCandidates: number): FastifyInstance {
  const app = Fastify({ bodyLimit: 1_048_576, logger: false });
  const kernel = release.kernel;
  const width = kernel.width;
  const safeguard = new Safeguard();
  const sgState = safeguard.initialState();
  const out = new Float64Array(2);
  app.post('/v1/score', async (request, reply) => {
    let req;
    try {
      req = parseScoreRequest(request.body, { maxCandidates });
    } catch (err) {
      if (err instanceof RequestError) return reply.code(err.status).send({ error: { code: err.code, field: err.field, message: err.message } });
      throw err;
    }
    const keys = [entityKey(release.userPrefix, req.user.id), ...req.candidates.map((c) => entityKey(release.itemPrefix, c.id))];
    const values = await redis.mgetBuffer(...keys);
    const views = new Float32Array(keys.length * width);
    const counts = new Int32Array(keys.length);
    for (let k = 0; k < keys.length; k++) {
      const v = values[k];
      counts[k] = v === null || v === undefined ? -1 : readStateView(v, views, k * width, width);
    }
    const userWarm = (counts[0] ?? -1) >= 0;
    kernel.beginUser(req.user.features);
    let body = '{"requestId":' + (req.requestId === undefined ? 'null' : JSON.stringify(req.requestId));
    body += ',"release":' + JSON.stringify(release.id) + ',"releaseAgeMs":' + Math.max(0, Date.now() - release.createdAtMs);
    body += ',"user":{"source":"' + (userWarm ? 'fresh' : 'cold') + '","ageMs":0,"events":' + Math.max(0, counts[0] ?? 0) + '},"scores":[';
    for (let i = 0; i < req.candidates.length; i++) {
      const c = req.candidates[i] as { id: string; features: Record<string, string[]> };
      const count = counts[i + 1] ?? -1;
      const warm = count >= 0;
      kernel.score(c.features, userWarm ? views : kernel.coldUser, 0, warm ? views : kernel.coldItem, warm ? (i + 1) * width : 0, out);
      const score = safeguard.mix(sgState, Math.max(0, count), out[0] ?? 0, out[1] ?? 0);
      body += (i === 0 ? '{"id":' : ',{"id":') + jsonString(c.id) + ',"score":' + jsonScore(score) + ',"source":"' + (warm ? 'fresh' : 'cold') + '","ageMs":0,"events":' + Math.max(0, count) + '}';
    }
    return reply.header('content-type', 'application/json; charset=utf-8').send(body + ']}');
  });
  return app;
}
