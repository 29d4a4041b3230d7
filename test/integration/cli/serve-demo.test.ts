/**
 * `thaw demo` then `thaw serve --demo`, with no services: the demo leaves its FM release and its
 * fm-adagrad states under --out, and the scoring API serves them: an entity the demo's workers
 * learned is scored `fresh` with the state they left, under the demo's last release.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MemoryEntityStore } from '../../../model-store/memory-store.js';
import { DEMO_SERVING_FILE, type DemoServingManifest } from '../../../serving/demo-state.js';
import { cliHarness } from './cli-harness.js';

const h = cliHarness('serve-demo');

describe('thaw serve --demo (no services)', { timeout: 300_000 }, () => {
  after(() => rmSync(h.dir, { recursive: true, force: true }));

  it('serves the states and release thaw demo left behind', async () => {
    const out = join(h.dir, 'demo');
    const demo = await h.thaw('demo', '--quick', '--events', '20000', '--out', out);
    assert.equal(demo.code, 0, demo.stderr);
    assert.match(demo.stdout, /Serve its scores: thaw serve --demo --out /);
    const manifest = JSON.parse(readFileSync(join(out, DEMO_SERVING_FILE), 'utf8')) as DemoServingManifest;
    assert.equal(manifest.namespace, 'eval-fm');
    assert.match(manifest.release, /^fm\//);

    // Known entities: the user and item with the most events in the snapshot.
    const snapshot = await MemoryEntityStore.loadSnapshot(join(out, manifest.states));
    const best = { user: { id: '', count: -1 }, item: { id: '', count: -1 } };
    const scopes = new Set<string>();
    for (const { scope, entityId, state } of snapshot.entries()) {
      scopes.add(`${scope.namespace}:${scope.side}:${scope.adapter}`);
      if (scope.adapter === 'fm-adagrad' && state.count > best[scope.side].count) best[scope.side] = { id: entityId, count: state.count };
    }
    assert.deepEqual([...scopes].sort(), ['eval-fm:item:fm-adagrad', 'eval-fm:item:fm-adagrad.sg', 'eval-fm:user:fm-adagrad', 'eval-fm:user:fm-adagrad.sg']);

    const { child, done } = h.start(['serve', '--demo', '--out', out, '--port', '0']);
    try {
      const address = await new Promise<string>((resolve, reject) => {
        let text = '';
        child.stdout?.on('data', (d: Buffer) => {
          text += d.toString();
          const m = /listening on (http:\/\/\S+)/.exec(text);
          if (m?.[1] !== undefined) resolve(m[1]);
        });
        void done.then((r) => reject(new Error(`thaw serve --demo exited ${r.code}: ${r.stderr}`)));
      });
      assert.equal((await fetch(`${address}/readyz`)).status, 200);
      const res = await fetch(`${address}/v1/score`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: { id: best.user.id }, candidates: [{ id: best.item.id }, { id: 'never-seen-item' }] }),
      });
      const text = await res.text();
      assert.equal(res.status, 200, text);
      const body = JSON.parse(text) as { release: string; user: { source: string; events: number }; scores: { id: string; score: number; source: string; events: number | null }[] };
      assert.equal(body.release, manifest.release);
      assert.equal(body.user.source, 'fresh');
      assert.equal(body.user.events, best.user.count);
      assert.deepEqual(
        body.scores.map((s) => [s.id, s.source]),
        [
          [best.item.id, 'fresh'],
          ['never-seen-item', 'cold'],
        ],
      );
      assert.equal(body.scores[0]?.events, best.item.count);
      assert.ok(body.scores.every((s) => s.score > 0 && s.score < 1));
    } finally {
      child.kill('SIGTERM');
    }
    const exit = await done;
    assert.equal(exit.code, 0, exit.stderr);
  });
});
