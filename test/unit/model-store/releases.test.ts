import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { ReleaseStore } from '../../../model-store/releases.js';

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'thaw-releases-'));
  try {
    await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const isCode = (code: string) => (e: unknown) => e instanceof ThawError && e.code === code;

void test('publish, list and load with verified checksums', () =>
  withRoot(async (root) => {
    const store = new ReleaseStore({ root, now: () => Date.UTC(2026, 0, 2, 3, 4, 5, 678) });
    const m1 = await store.publish({ model: 'fm', architecture: { dim: 8 }, metrics: { auc: 0.7 }, files: { 'weights.bin': Buffer.from([1, 2, 3]), 'vocab.json': Buffer.from('{}') } });
    assert.equal(m1.version, '20260102T030405678Z');
    assert.equal(m1.parent, null);
    assert.deepEqual(m1.files['weights.bin'], { sha256: '039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81', bytes: 3 });
    // Same clock: the next default version is still strictly later.
    const m2 = await store.publish({ model: 'fm', parent: m1.version, architecture: { dim: 8 }, files: { 'weights.bin': Buffer.from([4]) } });
    assert.equal(m2.version, '20260102T030405679Z');
    await store.publish({ model: 'emerg', version: 'v1', architecture: null, files: {} });
    assert.deepEqual(
      (await store.list('fm')).map((m) => m.version),
      [m1.version, m2.version],
    );
    assert.deepEqual(
      (await store.list()).map((m) => `${m.model}/${m.version}`),
      ['emerg/v1', `fm/${m1.version}`, `fm/${m2.version}`],
    );
    const loaded = await store.load('fm', m2.version);
    assert.deepEqual(loaded.manifest, m2);
    assert.deepEqual(loaded.files, { 'weights.bin': Buffer.from([4]) });
    await assert.rejects(store.publish({ model: 'emerg', version: 'v1', architecture: null, files: {} }), isCode('USAGE'));
    await assert.rejects(store.load('fm', 'nope'), isCode('RELEASE_NOT_FOUND'));
  }));

void test('a flipped byte makes load fail with RELEASE_CORRUPT naming the file', () =>
  withRoot(async (root) => {
    const store = new ReleaseStore({ root });
    const m = await store.publish({ model: 'fm', version: 'v1', architecture: {}, files: { 'a.bin': Buffer.alloc(64, 7), 'b.bin': Buffer.alloc(64, 9) } });
    const path = join(root, 'fm', m.version, 'b.bin');
    const bytes = await readFile(path);
    bytes[10] = bytes[10]! ^ 0x01;
    await writeFile(path, bytes);
    await assert.rejects(store.load('fm', 'v1'), (e: unknown) => isCode('RELEASE_CORRUPT')(e) && /file b\.bin/.test((e as Error).message));
    await assert.rejects(store.promote('fm', 'v1'), isCode('RELEASE_CORRUPT'));
    assert.equal(await store.current('fm'), undefined);
  }));

void test('a leftover temp dir from a crashed publish is ignored by list', () =>
  withRoot(async (root) => {
    const store = new ReleaseStore({ root });
    await store.publish({ model: 'fm', version: 'v1', architecture: {}, files: { w: Buffer.from('x') } });
    await mkdir(join(root, 'fm', '.tmp-v2-deadbeef'));
    await writeFile(join(root, 'fm', '.tmp-v2-deadbeef', 'w'), 'half');
    await mkdir(join(root, 'fm', 'not-a-release'));
    assert.deepEqual(
      (await store.list('fm')).map((m) => m.version),
      ['v1'],
    );
    assert.deepEqual(
      (await readdir(join(root, 'fm'))).filter((n) => n.startsWith('.tmp')),
      ['.tmp-v2-deadbeef'],
    );
  }));

void test('promote and rollback through CURRENT and its history', () =>
  withRoot(async (root) => {
    const store = new ReleaseStore({ root });
    for (const v of ['v1', 'v2', 'v3']) await store.publish({ model: 'fm', version: v, architecture: {}, files: { w: Buffer.from(v) } });
    await assert.rejects(store.rollback('fm'), isCode('RELEASE_NOT_FOUND'));
    await store.promote('fm', 'v1');
    await store.promote('fm', 'v2');
    await store.promote('fm', 'v2'); // idempotent
    await store.promote('fm', 'v3');
    assert.equal(await store.current('fm'), 'v3');
    assert.equal((await readFile(join(root, 'fm', 'CURRENT'), 'utf8')).trim(), 'v3');
    assert.deepEqual(await store.history('fm'), ['v1', 'v2']);
    assert.equal(await store.rollback('fm'), 'v2');
    assert.equal(await store.current('fm'), 'v2');
    assert.equal(await store.rollback('fm'), 'v1');
    await assert.rejects(store.rollback('fm'), isCode('RELEASE_NOT_FOUND'));
    await assert.rejects(store.promote('fm', 'v9'), isCode('RELEASE_NOT_FOUND'));
    assert.equal(await store.current('fm'), 'v1');
  }));

void test('rollback after a crash between the HISTORY and CURRENT writes skips the duplicate', () =>
  withRoot(async (root) => {
    const store = new ReleaseStore({ root });
    for (const v of ['v1', 'v2']) await store.publish({ model: 'fm', version: v, architecture: {}, files: {} });
    await store.promote('fm', 'v1');
    await store.promote('fm', 'v2');
    // Simulate: promote(v3) pushed v2 onto HISTORY, then crashed before CURRENT moved.
    await writeFile(join(root, 'fm', 'HISTORY'), JSON.stringify({ previous: ['v1', 'v2'] }));
    assert.equal(await store.rollback('fm'), 'v1');
  }));

void test('names that are not safe path segments are refused', () =>
  withRoot(async (root) => {
    const store = new ReleaseStore({ root });
    await assert.rejects(store.publish({ model: '../x', architecture: {}, files: {} }), (e: unknown) => e instanceof ConfigError && e.key === 'model');
    await assert.rejects(store.publish({ model: 'fm', version: '.hidden', architecture: {}, files: {} }), (e: unknown) => e instanceof ConfigError && e.key === 'version');
    await assert.rejects(store.publish({ model: 'fm', architecture: {}, files: { 'a/b': Buffer.alloc(1) } }), ConfigError);
    await assert.rejects(store.publish({ model: 'fm', architecture: {}, files: { 'manifest.json': Buffer.alloc(1) } }), ConfigError);
  }));
