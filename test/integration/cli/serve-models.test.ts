/**
 * `thaw serve --models FILE --processes 2` (issue 12, model as a service): the real command serves
 * two models (two FM releases in two release directories, two namespaces) from two processes on
 * one port; each process reads the models file itself, every connection is answered by the model it
 * names with that model's release, `GET /v1/models` lists both, SIGTERM stops everything with exit 0.
 * Real Redis (the states are cold: this checks the wiring, the scores are checked in
 * test/integration/serving/multi-model.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReleaseStore } from '../../../model-store/releases.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { bundleFm } from '../../../models/onnx/bundle.js';
import { cliHarness, REDIS } from './cli-harness.js';

const h = cliHarness('serve-models');

/** POST on a new connection (so that the primary hands it to either process): status and body. */
function post(url: string, payload: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify(payload);
    const req = request(url, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function publish(root: string, model: string, seed: number): Promise<string> {
  const store = new ReleaseStore({ root });
  const fm = FactorizationMachine.create({ buckets: 1024, k: 4, seed, initStd: 0.2 });
  const b = bundleFm(fm);
  const m = await store.publish({ model, parent: null, architecture: b.architecture, files: b.files });
  await store.promote(model, m.version);
  return `${model}/${m.version}`;
}

describe('thaw serve --models --processes 2', { timeout: 120_000 }, () => {
  after(() => rmSync(h.dir, { recursive: true, force: true }));

  it('serves each model from either process, lists them, and stops on SIGTERM', async () => {
    mkdirSync(h.dir, { recursive: true });
    const relA = await publish(join(h.dir, 'rel-a'), 'fm', 3);
    const relB = await publish(join(h.dir, 'rel-b'), 'ranker', 4);
    const models = join(h.dir, 'models.json');
    writeFileSync(
      models,
      JSON.stringify([
        { name: 'feed', adapter: 'fm-adagrad', model: 'fm', namespace: 'feed', releaseDir: join(h.dir, 'rel-a') },
        { name: 'ads-top', adapter: 'fm-adagrad', model: 'ranker', namespace: 'ads', releaseDir: join(h.dir, 'rel-b'), deadlineMs: 5000 },
      ]),
    );
    // Release announcements off (poll only): no Kafka needed.
    const config = join(h.dir, 'serve.json');
    writeFileSync(config, JSON.stringify({ releaseAnnouncements: false }));
    const { child, done } = h.start(['serve', '--models', models, '--config', config, '--safeguard', 'off', '--port', '0', '--processes', '2', '--deadline-ms', '5000', '--log-level', 'info'], {
      THAW_REDIS_URL: REDIS,
      THAW_REDIS_PREFIX: h.prefix,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const deadline = Date.now() + 60_000;
      while (!/listening on (http:\/\/\S+) \(2 processes\)/.test(stdout) && child.exitCode === null && Date.now() < deadline) await sleep(100);
      const address = /listening on (http:\/\/\S+) \(2 processes\)/.exec(stdout)?.[1];
      assert.ok(address !== undefined, `no listening line:\n${stdout}\n${stderr.slice(-2000)}`);
      const request = { user: { id: 'u1' }, candidates: [{ id: 'i1', features: { genre: ['x'] } }] };
      const pids = new Set<number>();
      for (let i = 0; i < 8; i++) {
        for (const [url, body, release] of [
          [`${address}/v1/score`, request, relA],
          [`${address}/v1/models/ads-top/score`, request, relB],
          [`${address}/v1/score`, { ...request, model: 'ads-top' }, relB],
        ] as const) {
          const r = await post(url, body);
          assert.equal(r.status, 200, r.body);
          assert.equal((JSON.parse(r.body) as { release: string }).release, release, url);
        }
        const listed = (await (await fetch(`${address}/v1/models`, { headers: { connection: 'close' } })).json()) as { models: { name: string; release: string }[] };
        assert.deepEqual(
          listed.models.map((m) => [m.name, m.release]),
          [
            ['feed', relA],
            ['ads-top', relB],
          ],
        );
      }
      for (const line of stderr.split('\n')) if (line.includes('"msg":"serving"') && line.includes('"pid":')) pids.add((JSON.parse(line) as { pid: number }).pid);
      assert.equal(pids.size, 2, 'two server processes listen, each with both models');
      const unknown = await post(`${address}/v1/models/feed2/score`, request);
      assert.equal(unknown.status, 404);
      assert.deepEqual((JSON.parse(unknown.body) as { error: { models: string[] } }).error.models, ['feed', 'ads-top']);
      child.kill('SIGTERM');
      const exit = await done;
      assert.equal(exit.code, 0, stderr.slice(-3000));
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
