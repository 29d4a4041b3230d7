/**
 * The figures the serving bench prints beside the servers, from the same run and data: the model
 * stage alone (the FM kernel and the safeguard mixture over micro-batches of parsed requests, with
 * and without building the JSON body) and Redis MGET alone (one request's keys per call, and the
 * keys of a coalesced tick per call).
 */
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { Safeguard } from '../../consumers/safeguard.js';
import { entityKey } from '../../model-store/keys.js';
import type { ServingRelease } from '../../serving/release.js';
import { jsonScore, jsonString } from '../../serving/json-out.js';
import { parseScoreRequest, type ScoreRequest } from '../../serving/request.js';

export interface ModelAlone {
  batch: number;
  /** Per request (101 entities, 100 scores), µs. */
  kernelUsPerRequest: number;
  /** The same plus the response body, µs. */
  withBodyUsPerRequest: number;
  scoresPerSec: number;
}

export interface MgetAlone {
  keysPerCall: number;
  calls: number;
  p50Ms: number;
  p99Ms: number;
  keysPerSec: number;
}

function parse(bodies: readonly Buffer[]): ScoreRequest[] {
  return bodies.map((b) => parseScoreRequest(JSON.parse(b.toString('utf8')), { maxCandidates: 100_000 }));
}

/** The model stage over batches of `batch` requests for about `seconds`, views from random warm states. */
export function modelAlone(release: ServingRelease, bodies: readonly Buffer[], batch: number, seconds: number): ModelAlone {
  const reqs = parse(bodies);
  const kernel = release.kernel;
  const width = kernel.width;
  const perReq = (reqs[0]?.candidates.length ?? 0) + 1;
  const views = new Float32Array(batch * perReq * width).map((_, i) => Math.sin(i) / 10);
  const sg = new Safeguard();
  const sgState = sg.initialState();
  const out = new Float64Array(2);
  let sink = 0;
  const runBatch = (first: number, body: boolean): void => {
    for (let r = 0; r < batch; r++) {
      const req = reqs[(first + r) % reqs.length] as ScoreRequest;
      const base = r * perReq * width;
      kernel.beginUser(req.user.features);
      let text = body ? '{"release":' + JSON.stringify(release.id) + ',"scores":[' : '';
      for (let i = 0; i < req.candidates.length; i++) {
        const c = req.candidates[i] as ScoreRequest['candidates'][number];
        kernel.score(c.features, views, base, views, base + (i + 1) * width, out);
        const score = sg.mix(sgState, 3, out[0] ?? 0, out[1] ?? 0);
        if (body) text += (i === 0 ? '{"id":' : ',{"id":') + jsonString(c.id) + ',"score":' + jsonScore(score) + ',"source":"fresh","ageMs":1,"events":3}';
        else sink += score;
      }
      if (body) sink += text.length;
    }
  };
  const time = (body: boolean): number => {
    for (let w = 0; w < 20; w++) runBatch(w * batch, body);
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) runBatch((n++ % 64) * batch, body);
    return ((performance.now() - t0) * 1000) / (n * batch);
  };
  const kernelUs = time(false);
  const bodyUs = time(true);
  if (sink === Number.MIN_VALUE) process.stderr.write('');
  return { batch, kernelUsPerRequest: kernelUs, withBodyUsPerRequest: bodyUs, scoresPerSec: ((perReq - 1) * 1e6) / kernelUs };
}

/** Sequential MGETs of `requestsPerCall` requests' keys each, for about `seconds`. */
export async function mgetAlone(redis: Redis, release: ServingRelease, bodies: readonly Buffer[], requestsPerCall: number, seconds: number): Promise<MgetAlone> {
  const reqs = parse(bodies);
  const keysOf = (r: ScoreRequest): string[] => [entityKey(release.userPrefix, r.user.id), ...r.candidates.map((c) => entityKey(release.itemPrefix, c.id))];
  const calls: string[][] = [];
  for (let i = 0; i + requestsPerCall <= reqs.length && calls.length < 256; i += requestsPerCall) calls.push(reqs.slice(i, i + requestsPerCall).flatMap(keysOf));
  for (let w = 0; w < 20; w++) await redis.mgetBuffer(...(calls[w % calls.length] as string[]));
  const lat: number[] = [];
  let keys = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const call = calls[lat.length % calls.length] as string[];
    const t = performance.now();
    await redis.mgetBuffer(...call);
    lat.push(performance.now() - t);
    keys += call.length;
  }
  const wall = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const at = (p: number): number => lat[Math.min(lat.length - 1, Math.max(0, Math.ceil(p * lat.length) - 1))] ?? Number.NaN;
  return { keysPerCall: Math.round(keys / lat.length), calls: lat.length, p50Ms: at(0.5), p99Ms: at(0.99), keysPerSec: keys / wall };
}
