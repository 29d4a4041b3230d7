import { fmStateSize } from '../../../models/fm-entity.js';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { unpackWeights } from '../../../models/weights.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { fmFromRelease } from '../../../models/onnx/bundle.js';
import { loadCurrentFm } from '../../../cli/fm-release.js';
import { cli, fmFile, publishedVersion, tempDir } from './helpers.js';

describe('thaw release (CLI function)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(async () => cleanup());

  it('publish writes weights.bin, model.onnx and a checksummed manifest, and promotes', async () => {
    const { fm, path } = await fmFile(dir, 1);
    const root = join(dir, 'releases');
    const r = await cli(['publish', '--release-dir', root, '--model', 'fm-item', '--from', path, '--metrics', 'auc=0.71,logloss=0.5']);
    assert.equal(r.code, 0, r.err);
    const v = publishedVersion(r.out);
    assert.match(r.out, /promoted fm-item\//);
    const files = (await readdir(join(root, 'fm-item', v))).sort();
    assert.deepEqual(files, ['fm.bin', 'manifest.json', 'model.onnx', 'weights.bin']);
    const manifest = JSON.parse(await readFile(join(root, 'fm-item', v, 'manifest.json'), 'utf8')) as {
      model: string;
      parent: string | null;
      metrics: Record<string, number>;
      architecture: { type: string; stateLayout: unknown; entityStatePolicy: string };
      files: Record<string, { sha256: string } | undefined>;
    };
    assert.equal(manifest.model, 'fm-item');
    assert.equal(manifest.parent, null);
    assert.deepEqual(manifest.metrics, { auc: 0.71, logloss: 0.5 });
    assert.equal(manifest.architecture.type, 'fm');
    assert.deepEqual(manifest.architecture.stateLayout, { adapter: 'fm-adagrad', stateSize: fmStateSize(fm.k) });
    assert.equal(manifest.architecture.entityStatePolicy, 'keep');
    assert.match(manifest.files['model.onnx']?.sha256 ?? '', /^[0-9a-f]{64}$/);
    const store = new ReleaseStore({ root });
    assert.equal(await store.current('fm-item'), v);
    const rel = await store.load('fm-item', v);
    assert.deepEqual(Object.keys(unpackWeights(rel.files['weights.bin']!)).sort(), ['prior.item.bias', 'prior.item.vector', 'prior.user.bias', 'prior.user.vector', 'v', 'w', 'w0']);
    const back = fmFromRelease(rel);
    assert.deepEqual(back.v, fm.v);
    assert.deepEqual(back.w, fm.w);
    assert.equal(back.w0, Math.fround(fm.w0));
    // The existing loader of `thaw run` still reads the release.
    const legacy = await loadCurrentFm(root, 'fm-item');
    assert.deepEqual(legacy.fm.v, fm.v);
  });

  it('list, promote and rollback move CURRENT; parents record lineage', async () => {
    const root = join(dir, 'r');
    const a = publishedVersion((await cli(['publish', '--release-dir', root, '--model', 'm', '--from', (await fmFile(dir, 1)).path])).out);
    const b = publishedVersion((await cli(['publish', '--release-dir', root, '--model', 'm', '--from', (await fmFile(dir, 2)).path])).out);
    const c = publishedVersion((await cli(['publish', '--release-dir', root, '--model', 'm', '--from', (await fmFile(dir, 3)).path, '--no-promote'])).out);
    const listJson = async (): Promise<{ version: string; current: boolean; parent: string | null }[]> =>
      (JSON.parse((await cli(['list', '--release-dir', root, '--model', 'm', '--json'])).out) as { releases: { version: string; current: boolean; parent: string | null }[] }).releases;
    let rows = await listJson();
    assert.deepEqual(
      rows.map((x) => x.version),
      [a, b, c],
    );
    assert.deepEqual(
      rows.map((x) => x.current),
      [false, true, false],
    );
    assert.deepEqual(
      rows.map((x) => x.parent),
      [null, a, b],
    );
    const text = await cli(['list', '--release-dir', root]);
    assert.equal(text.code, 0);
    assert.match(text.out, new RegExp(`^\\* m\\t${b}\\tfm\\t`, 'm'));

    assert.equal((await cli(['promote', c, '--release-dir', root, '--model', 'm'])).code, 0);
    rows = await listJson();
    assert.deepEqual(
      rows.map((x) => x.current),
      [false, false, true],
    );
    const rb = await cli(['rollback', '--release-dir', root, '--model', 'm']);
    assert.equal(rb.code, 0);
    assert.equal(rb.out.trim(), `rolled back m to ${b}`);
    const rb2 = await cli(['rollback', '--release-dir', root, '--model', 'm']);
    assert.equal(rb2.out.trim(), `rolled back m to ${a}`);
    const rb3 = await cli(['rollback', '--release-dir', root, '--model', 'm']);
    assert.equal(rb3.code, 1);
    assert.match(rb3.err, /RELEASE_NOT_FOUND/);
  });

  it('republishes from a release directory (re-exported, same weights)', async () => {
    const root = join(dir, 'r');
    const a = publishedVersion((await cli(['publish', '--release-dir', root, '--model', 'm', '--from', (await fmFile(dir, 4)).path])).out);
    const r = await cli(['publish', '--release-dir', root, '--model', 'm2', '--from', join(root, 'm', a), '--entity-state-policy', 'reinit']);
    assert.equal(r.code, 0, r.err);
    const store = new ReleaseStore({ root });
    const v2 = publishedVersion(r.out);
    const [x, y] = [await store.load('m', a), await store.load('m2', v2)];
    assert.deepEqual(x.files['weights.bin'], y.files['weights.bin']);
    assert.equal((y.manifest.architecture as { entityStatePolicy: string }).entityStatePolicy, 'reinit');
  });

  it('usage errors exit 2, failures exit 1', async () => {
    assert.equal((await cli(['publish', '--release-dir', dir])).code, 2);
    assert.equal((await cli(['frobnicate'])).code, 2);
    assert.equal((await cli(['list', '--bogus'])).code, 2);
    assert.equal((await cli(['publish', '--release-dir', dir, '--model', 'm', '--from', join(dir, 'nope')])).code, 1);
    assert.equal((await cli(['promote', 'v9', '--release-dir', dir, '--model', 'm'])).code, 1);
    const h = await cli(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.out, /thaw release publish/);
  });
});
