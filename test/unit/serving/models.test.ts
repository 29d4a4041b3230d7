/**
 * Several models in one scoring server (serving/models.ts, serving/routes.ts), in memory: each
 * model's pipeline has its own queues, so a model whose store does not answer holds only its own
 * requests while another model answers; a lone pipeline keeps its unlabelled metrics; a registry
 * refuses duplicate names and pipelines that do not share labelled metrics.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FactorizationMachine } from '../../../models/fm.js';
import { ModelRegistry, sharedMetrics } from '../../../serving/models.js';
import { ScoringPipeline } from '../../../serving/pipeline.js';
import { fixedRelease, servingRelease } from '../../../serving/release.js';
import { createScoringApp } from '../../../serving/server.js';
import { MapStateSource, type StateSource } from '../../../serving/state-source.js';

function pipelineOf(name: string | undefined, source: StateSource, metricFamilies = sharedMetrics(false)): ScoringPipeline {
  const fm = FactorizationMachine.create({ buckets: 1024, k: 4, seed: name === 'slow' ? 1 : 2, initStd: 0.2, release: `fm/${name ?? 'x'}` });
  const release = servingRelease(fm, 'v1', Date.now(), undefined, { keyPrefix: 'unit', namespace: name ?? 'live', safeguard: 'off' });
  return new ScoringPipeline({
    source,
    releases: fixedRelease(release),
    serving: { safeguard: 'off', defaultDeadlineMs: 10_000, fetchTimeoutMs: 10_000 },
    defaultMetrics: false,
    ...(name === undefined ? {} : { model: name, metricFamilies }),
  });
}

/** A store whose reads wait until `open()`. */
function gatedSource(): StateSource & { open(): void; waiting(): number } {
  const pending: (() => void)[] = [];
  let opened = false;
  return {
    mget: (keys) => new Promise((resolve) => (opened ? resolve(keys.map(() => null)) : pending.push(() => resolve(keys.map(() => null))))),
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
    open() {
      opened = true;
      for (const p of pending.splice(0)) p();
    },
    waiting: () => pending.length,
  };
}

const body = { user: { id: 'u1' }, candidates: [{ id: 'i1' }] };

describe('several models in one server', () => {
  test('a model whose store hangs holds only its own requests', async () => {
    const families = sharedMetrics(false);
    const gate = gatedSource();
    const slow = pipelineOf('slow', gate, families);
    const fast = pipelineOf('fast', new MapStateSource(new Map()), families);
    const models = new ModelRegistry([
      { name: 'slow', pipeline: slow, info: {} },
      { name: 'fast', pipeline: fast, info: {} },
    ]);
    const app = createScoringApp(models);
    await models.start();
    await app.ready();
    try {
      const held = Array.from({ length: 5 }, () => app.inject({ method: 'POST', url: '/v1/models/slow/score', payload: body }));
      while (gate.waiting() === 0) await new Promise((r) => setImmediate(r));
      assert.equal(slow.pending, 5);
      for (let i = 0; i < 5; i++) {
        const res = await app.inject({ method: 'POST', url: '/v1/score', payload: { ...body, model: 'fast' } });
        assert.equal(res.statusCode, 200, res.body);
        assert.equal((JSON.parse(res.body) as { release: string }).release, 'fm/fast');
      }
      assert.equal(fast.pending, 0);
      assert.equal(slow.pending, 5, 'the slow model still holds its own requests');
      gate.open();
      for (const res of await Promise.all(held)) {
        assert.equal(res.statusCode, 200, res.body);
        assert.equal((JSON.parse(res.body) as { release: string }).release, 'fm/slow');
      }
      const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      assert.match(metrics, /thaw_serve_requests_total\{model="slow",status="200"\} 5/);
      assert.match(metrics, /thaw_serve_requests_total\{model="fast",status="200"\} 5/);
    } finally {
      await app.close();
      await models.stop(0);
    }
  });

  test('a lone pipeline keeps its metrics without a model label; its model is "default"', async () => {
    const pipeline = pipelineOf(undefined, new MapStateSource(new Map()));
    const app = createScoringApp(pipeline);
    await pipeline.start();
    try {
      assert.equal((await app.inject({ method: 'POST', url: '/v1/models/default/score', payload: body })).statusCode, 200);
      assert.equal((await app.inject({ method: 'POST', url: '/v1/score', payload: body })).statusCode, 200);
      const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      assert.match(metrics, /thaw_serve_requests_total\{status="200"\} 2/);
      const listed = JSON.parse((await app.inject({ method: 'GET', url: '/v1/models' })).body) as { default: string; models: { name: string }[] };
      assert.deepEqual([listed.default, listed.models.map((m) => m.name)], ['default', ['default']]);
    } finally {
      await app.close();
      await pipeline.stop(0);
    }
  });

  test('refuses duplicate names and pipelines without shared labelled metrics', () => {
    const src = new MapStateSource(new Map());
    const families = sharedMetrics(false);
    assert.throws(
      () =>
        new ModelRegistry([
          { name: 'a', pipeline: pipelineOf('a', src, families), info: {} },
          { name: 'a', pipeline: pipelineOf('b', src, families), info: {} },
        ]),
      /used twice/,
    );
    assert.throws(
      () =>
        new ModelRegistry([
          { name: 'a', pipeline: pipelineOf('a', src), info: {} },
          { name: 'b', pipeline: pipelineOf('b', src), info: {} },
        ]),
      /share labelled metric families/,
    );
    assert.throws(() => new ModelRegistry([{ name: 'a/b', pipeline: pipelineOf('a', src), info: {} }]), /letters, digits/);
  });
});
