/**
 * The scoring pipeline's lifecycle: start waits for the store (the first read must not pay the
 * connection), drain answers what is in flight within a grace, stop closes what the pipeline owns.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FactorizationMachine } from '../../../models/fm.js';
import { ScoringPipeline } from '../../../serving/pipeline.js';
import { fixedRelease, servingRelease, type ReleaseSource } from '../../../serving/release.js';
import { parseScoreRequest } from '../../../serving/request.js';
import { startScoringServer } from '../../../serving/server.js';
import type { StateSource } from '../../../serving/state-source.js';
import { OverloadedError } from '../../../serving/admission.js';

const fm = FactorizationMachine.create({ buckets: 1024, k: 4, seed: 1, initStd: 0.1, release: 'fm/v1' });
const release = servingRelease(fm, 'v1', Date.now(), undefined, { keyPrefix: 'unit', namespace: 'live', safeguard: 'off' });

/** A store whose PING fails `failures` times, whose MGET waits for `gate`, and that records close(). */
class ProbeSource implements StateSource {
  pings = 0;
  closed = 0;
  mgets = 0;
  gate: Promise<void> = Promise.resolve();
  constructor(private failures = 0) {}
  async mget(keys: readonly string[]): Promise<(Buffer | null)[]> {
    this.mgets++;
    await this.gate;
    return keys.map(() => null);
  }
  ping(): Promise<void> {
    this.pings++;
    return this.failures-- > 0 ? Promise.reject(new Error('connecting')) : Promise.resolve();
  }
  close(): Promise<void> {
    this.closed++;
    return Promise.resolve();
  }
}

function owned(): { releases: ReleaseSource; stopped: () => number } {
  let stops = 0;
  const fixed = fixedRelease(release);
  return {
    releases: { ...fixed, stop: () => ((stops += 1), Promise.resolve()) },
    stopped: () => stops,
  };
}

const request = parseScoreRequest({ user: { id: 'u' }, candidates: [{ id: 'a' }] }, { maxCandidates: 10 });

describe('scoring pipeline lifecycle', () => {
  test('start waits for the store to answer; requests before it are refused as starting', async () => {
    const source = new ProbeSource(2);
    const { releases, stopped } = owned();
    const pipeline = new ScoringPipeline({ source, releases, serving: { safeguard: 'off', fetchTimeoutMs: 1000 }, defaultMetrics: false });
    assert.equal(pipeline.state, 'created');
    assert.throws(
      () => pipeline.score(request, performance.now(), 1000),
      (err: unknown) => err instanceof OverloadedError && err.reason === 'starting',
    );
    assert.equal(await pipeline.ready(), false);
    await pipeline.start(5000);
    assert.equal(source.pings, 3, 'retried the PING until it answered');
    assert.equal(pipeline.state, 'running');
    assert.equal(await pipeline.ready(), true);
    const body = JSON.parse(await pipeline.score(request, performance.now(), 1000)) as { scores: { source: string }[] };
    assert.equal(body.scores[0]?.source, 'cold');
    await pipeline.stop();
    assert.equal(pipeline.state, 'stopped');
    assert.equal(source.closed, 1, 'stop closed the state source');
    assert.equal(stopped(), 1, 'stop stopped the release source');
    await pipeline.stop();
    assert.equal(source.closed, 1, 'stop is idempotent');
  });

  test('a store that never answers fails start with REDIS_ERROR', async () => {
    const source = new ProbeSource(1_000_000);
    const pipeline = new ScoringPipeline({ source, releases: fixedRelease(release), serving: { safeguard: 'off' }, defaultMetrics: false });
    await assert.rejects(pipeline.start(300), (err: unknown) => (err as { code?: string }).code === 'REDIS_ERROR');
    await pipeline.stop();
    assert.equal(source.closed, 1);
  });

  test('drain answers the requests in flight and refuses new ones; past the grace, queued ones get 503', async () => {
    const source = new ProbeSource();
    let open: () => void = () => undefined;
    source.gate = new Promise((r) => (open = r));
    const pipeline = new ScoringPipeline({
      source,
      releases: fixedRelease(release),
      serving: { safeguard: 'off', fetchTimeoutMs: 10_000, fetchConcurrency: 1, freshnessMs: 0 },
      defaultMetrics: false,
    });
    await pipeline.start();
    const first = pipeline.score(request, performance.now(), 10_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(source.mgets, 1, 'the first request is in its read');
    // The second waits in the fetch queue behind the only read allowed in flight.
    const second = pipeline.score(request, performance.now(), 10_000);
    const drained = pipeline.drain(50);
    assert.throws(
      () => pipeline.score(request, performance.now(), 10_000),
      (err: unknown) => err instanceof OverloadedError && err.reason === 'stopping',
    );
    assert.equal(await drained, false, 'the read never finished within the grace');
    await assert.rejects(second, (err: unknown) => err instanceof OverloadedError && err.reason === 'stopping');
    open();
    assert.match(await first, /"scores"/, 'the request already in its read is answered');
    await pipeline.stop();
    assert.equal(pipeline.pending, 0);
  });

  test('the server: readyz after start, stop closes the sources', async () => {
    const source = new ProbeSource(1);
    const { releases, stopped } = owned();
    const pipeline = new ScoringPipeline({ source, releases, serving: { safeguard: 'off' }, defaultMetrics: false });
    const server = await startScoringServer(pipeline, { port: 0 });
    const ready = await fetch(`${server.address}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as { state: string }).state, 'running');
    await server.stop();
    assert.equal(source.closed, 1);
    assert.equal(stopped(), 1);
  });
});
