/**
 * The resource manager against real Redis (serving/shed-controller.ts, serving/resource-manager.ts).
 *
 * Online: the AIMD shed controller wired into a real pipeline under an offered overload (its effect
 * on late answers depends on the machine's load: a benchmark figure, not asserted here).
 *
 * Offline: the coordinate-descent search replays a recorded load against real pipelines and returns
 * feasible settings that `thaw serve --settings` accepts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { servedModels } from '../../../config/commands/serve-models.js';
import { serveSchema } from '../../../config/commands/serve.js';
import { entityKey } from '../../../model-store/keys.js';
import { createRedis } from '../../../model-store/redis.js';
import { encodeState } from '../../../model-store/state-codec.js';
import { fmStateSize } from '../../../models/fm-entity.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { formatLoad, parseLoad, type LoadRecording } from '../../../serving/load-recording.js';
import { replayLoad } from '../../../serving/load-replay.js';
import { ScoringPipeline } from '../../../serving/pipeline.js';
import { fixedRelease, servingRelease, type ServingRelease } from '../../../serving/release.js';
import { readSettings, searchSettings, SETTINGS_FORMAT, type StageSettings } from '../../../serving/resource-manager.js';
import type { ServingOptions } from '../../../serving/options.js';
import { RedisStateSource } from '../../../serving/state-source.js';

const REDIS = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';
const USERS = 300;
const ITEMS = 5000;
const CANDIDATES = 50;

/** A recording of `seconds` at `rate`/s (evenly spaced), deadline `deadlineMs`. */
function recording(rate: number, seconds: number, deadlineMs: number, seed: number): LoadRecording {
  const n = Math.round(rate * seconds);
  const arrivals = Array.from({ length: n }, (_, r) => ({
    t: (r * 1000) / rate,
    body: {
      user: { id: `u${(r * 31 + seed) % USERS}` },
      candidates: Array.from({ length: CANDIDATES }, (_, c) => ({ id: `i${(r * 7919 + c * c * 31 + seed) % ITEMS}`, features: { g: [`${c % 5}`] } })),
    },
  }));
  return parseLoad(formatLoad(deadlineMs, arrivals));
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name + ' '));
  return line === undefined ? 0 : Number(line.slice(name.length + 1));
}

describe('resource manager (Redis)', { timeout: 240_000 }, () => {
  const prefix = `t${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  let release: ServingRelease;
  before(async () => {
    const fm = FactorizationMachine.create({ buckets: 4096, k: 8, seed: 2, initStd: 0.1, release: 'fm/rm' });
    release = servingRelease(fm, 'rm', Date.now(), undefined, { keyPrefix: prefix, namespace: 'live', safeguard: 'off' });
    const redis = createRedis({ url: REDIS });
    try {
      const value = encodeState({ count: 3, lastOffset: 2, lastEventMs: 1, params: new Float32Array(fmStateSize(fm.k)).map((_, i) => Math.sin(i) / 10) });
      const batch = redis.pipeline();
      for (let u = 0; u < USERS; u++) batch.set(entityKey(release.userPrefix, `u${u}`), value);
      for (let i = 0; i < ITEMS; i++) if (i % 10 !== 0) batch.set(entityKey(release.itemPrefix, `i${i}`), value);
      await batch.exec();
    } finally {
      redis.disconnect();
    }
  });
  after(async () => {
    const redis = createRedis({ url: REDIS });
    const keys = await redis.keys(`${prefix}:*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
    redis.disconnect();
  });

  const pipelineWith = (serving: ServingOptions, clockScale = 1): ScoringPipeline =>
    new ScoringPipeline({
      source: new RedisStateSource({ url: REDIS }),
      releases: fixedRelease(release),
      serving: { safeguard: 'off', maxCandidates: CANDIDATES, cacheEntries: 131_072, fetchTimeoutMs: 5000, ...serving },
      defaultMetrics: false,
      admissionClock: { now: () => performance.now(), activeMs: () => clockScale * performance.eventLoopUtilization().active },
    });

  // Whether the controller keeps admitted requests within their deadline depends on how loaded the
  // machine is, so it is a benchmark figure, not a test; its logic is unit-tested on a fake clock
  // (test/unit/serving/shed-controller.test.ts). Here: the wiring, over real Redis.
  it('under an offered overload the AIMD controller runs in the pipeline: every request answered or shed, its threshold exported within its bounds', async () => {
    const deadlineMs = 20;
    const load = recording(20_000, 1, deadlineMs, 1);
    const pipeline = pipelineWith({ shedControl: 'aimd', freshnessMs: 60_000 }, 0.1);
    await pipeline.start();
    try {
      const r = await replayLoad(pipeline, load);
      const text = await pipeline.metrics.registry.metrics();
      assert.equal(r.errors, 0);
      assert.equal(r.ok + r.shed, r.sent, 'every request answered or shed, none lost');
      assert.ok(r.shed > 0, 'an offered overload is shed');
      const threshold = metric(text, 'thaw_serve_shed_threshold');
      assert.ok(threshold >= 0.05 && threshold <= 1.5, `threshold ${threshold} within [0.05, 1.5]`);
      assert.match(text, /^thaw_serve_shed_window_p99_ratio /m);
      assert.match(text, /^thaw_serve_past_deadline_total /m);
    } finally {
      await pipeline.stop();
    }
  });

  it('the search replays a recorded load against real pipelines and returns feasible settings thaw serve --settings accepts', async () => {
    const load = recording(400, 0.5, 50, 3);
    let replays = 0;
    const evaluate = async (s: StageSettings) => {
      replays++;
      const pipeline = pipelineWith(s);
      await pipeline.start();
      try {
        return await replayLoad(pipeline, load);
      } finally {
        await pipeline.stop();
      }
    };
    const space = { fetchConcurrency: [1, 4], modelMaxBatch: [64], modelMaxWaitMs: [0, 1], maxInFlight: [2048] };
    const start = { fetchConcurrency: 4, modelMaxBatch: 64, modelMaxWaitMs: 0, maxInFlight: 2048 };
    const result = await searchSettings(start, evaluate, { deadlineMs: 50, space });
    assert.ok(replays >= 3 && replays === result.trials.length, `each distinct setting replayed once: ${replays}`);
    for (const t of result.trials) assert.equal(t.result.sent, load.arrivals.length);
    assert.ok(result.best.feasible, `a light load is within its deadline: p99 ${result.best.result.p99}`);
    assert.ok(result.best.result.ok > 0);
    const file = JSON.stringify({ format: SETTINGS_FORMAT, settings: result.best.settings });
    assert.deepEqual(
      readSettings('tuned.json', () => file),
      result.best.settings,
    );
    const cfg = serveSchema.parse({ settings: 'tuned.json', fetchConcurrency: 99 });
    const [model] = servedModels(cfg, () => file);
    assert.equal(model?.fetchConcurrency, result.best.settings.fetchConcurrency, "--settings replaces the flags' stage settings");
    assert.equal(model.modelMaxWaitMs, result.best.settings.modelMaxWaitMs);
  });
});
