import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FactorizationMachine } from '../../../models/fm.js';
import { LoadRecorder } from '../../../serving/load-recorder.js';
import { readLoad } from '../../../serving/load-recording.js';
import { replayLoad } from '../../../serving/load-replay.js';
import { ScoringPipeline } from '../../../serving/pipeline.js';
import { fixedRelease, servingRelease } from '../../../serving/release.js';
import { startScoringServer } from '../../../serving/server.js';
import { MapStateSource } from '../../../serving/state-source.js';

const fm = FactorizationMachine.create({ buckets: 1024, k: 4, seed: 7, initStd: 0.1, release: 'fm/rec' });
const release = servingRelease(fm, 'v1', Date.now(), undefined, { keyPrefix: 'unit-record', namespace: 'live', safeguard: 'item' });
const pipelineOf = (): ScoringPipeline =>
  new ScoringPipeline({ source: new MapStateSource(new Map()), releases: fixedRelease(release), serving: { defaultDeadlineMs: 10_000 }, defaultMetrics: false });

describe('thaw serve --record-load: a live server records what serve tune replays', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thaw-record-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('records the valid requests with their arrival times and deadlines; the file replays', async () => {
    const file = join(dir, 'load.jsonl');
    const recorder = await LoadRecorder.open({ file, deadlineMs: 40, maxArrivals: 100, model: 'default' });
    const server = await startScoringServer(pipelineOf(), { recorder });
    const post = (body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
      fetch(`${server.address}/v1/score`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const a = { user: { id: 'u1' }, candidates: [{ id: 'i1' }, { id: 'i2', features: { genre: ['x'] } }] };
    const b = { requestId: 'r2', user: { id: 'u2' }, candidates: [{ id: 'i3' }] };
    assert.equal((await post(a)).status, 200);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((await post(b, { 'x-deadline-ms': '25' })).status, 200);
    assert.equal((await post({ user: { id: 'u3' }, candidates: [] })).status, 400, 'not valid: not recorded');
    await server.stop();
    assert.deepEqual(recorder.stats(), { recorded: 2, overMax: 0, writerBehind: 0, refusedUnread: 0 });

    const load = readLoad(file);
    assert.equal(load.deadlineMs, 40);
    assert.deepEqual(
      load.arrivals.map((x) => JSON.parse(x.body) as unknown),
      [a, b],
    );
    assert.deepEqual(
      load.arrivals.map((x) => x.deadlineMs),
      [undefined, 25],
    );
    assert.equal(load.arrivals[0]?.t, 0);
    assert.ok((load.arrivals[1]?.t ?? 0) >= 20, `the second arrived at least 20 ms later: ${load.arrivals[1]?.t}`);
    assert.match((await readFile(file, 'utf8')).split('\n')[0] ?? '', /"note":"recorded by thaw serve \(model default\)/);

    const pipeline = pipelineOf();
    await pipeline.start();
    try {
      const replay = await replayLoad(pipeline, load);
      assert.deepEqual([replay.sent, replay.ok, replay.errors], [2, 2, 0], JSON.stringify(replay));
    } finally {
      await pipeline.stop();
    }
  });

  test('bounded: past maxArrivals and for refusals before the body, it counts instead of recording', async () => {
    const file = join(dir, 'bounded.jsonl');
    const recorder = await LoadRecorder.open({ file, deadlineMs: 50, maxArrivals: 2, model: 'default' });
    for (let i = 0; i < 5; i++) recorder.record(i, { user: { id: `u${i}` }, candidates: [{ id: 'i' }] }, undefined);
    recorder.refusedUnread();
    recorder.record(2.5, { user: { id: 'late' }, candidates: [{ id: 'i' }] }, undefined);
    await recorder.close();
    assert.deepEqual(recorder.stats(), { recorded: 2, overMax: 4, writerBehind: 0, refusedUnread: 1 });
    assert.deepEqual(
      readLoad(file).arrivals.map((x) => x.t),
      [0, 1],
    );
  });

  test('an arrival recorded after a later one keeps t from going back', async () => {
    const file = join(dir, 'order.jsonl');
    const recorder = await LoadRecorder.open({ file, deadlineMs: 50, maxArrivals: 10, model: 'default' });
    recorder.record(100, { n: 1 }, undefined);
    recorder.record(105, { n: 2 }, undefined);
    recorder.record(103, { n: 3 }, undefined); // its body finished after the second's
    await recorder.close();
    assert.deepEqual(
      readLoad(file).arrivals.map((x) => x.t),
      [0, 5, 5],
    );
  });

  test('a file that cannot be written fails at start, naming the flag', async () => {
    await assert.rejects(
      LoadRecorder.open({ file: join(dir, 'missing', 'x.jsonl'), deadlineMs: 50, maxArrivals: 1, model: 'default' }),
      /invalid config "recordLoad": cannot write the load recording/,
    );
  });
});

test('--record-load is refused with several processes (one file, one writer)', async () => {
  const { serveSchema } = await import('../../../config/commands/serve.js');
  assert.throws(() => serveSchema.parse({ recordLoad: 'load.jsonl', processes: 2 }), /--record-load needs --processes 1/);
  assert.equal(serveSchema.parse({ recordLoad: 'load.jsonl' }).recordMaxArrivals, 100_000);
});
