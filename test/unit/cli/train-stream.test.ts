/**
 * `thaw train <kind> --source ...` (cli/commands/train-stream.ts): trains on the first part of a
 * small synthetic stream and publishes + promotes a release whose manifest records the event layout.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { trainStreamCommand } from '../../../cli/commands/train-stream.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { silentLogger } from '../../../lib/log.js';
import type { CtrArchitecture } from '../../../models/onnx/bundle.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { HISTORY_MINIMUM } from '../../../trainers/history.js';

async function run(kind: string, argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await trainStreamCommand(kind, argv, { stdout: { write: (s: string) => (out += s) }, logger: silentLogger });
  return { code, out };
}

describe('thaw train <kind> --source', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thaw-train-stream-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  // The history (the first 3,000 events) has 25 items and 23 users with 30+ events, 17 of each with 40+.
  const common = (releaseDir: string): string[] => [
    '--source',
    'synthetic:users=120,items=60',
    '--events',
    '6000',
    '--source-seed',
    '3',
    '--history-fraction',
    '0.5',
    '--release-dir',
    releaseDir,
    '--backend',
    'cpu',
    '--seed',
    '5',
    '--epochs',
    '1',
    '--dim',
    '4',
    '--vocab',
    '2048',
  ];
  const base = (releaseDir: string): string[] => [...common(releaseDir), '--min-events', '30'];

  it('publishes and promotes a release trained on the history; a second run is its child', async () => {
    const first = await run('deepfm', ['deepfm', ...base(dir)]);
    assert.equal(first.code, 0);
    const version = first.out.trim();
    assert.match(version, /^\S+$/);
    const store = new ReleaseStore({ root: dir });
    assert.equal(await store.current('deepfm'), version);
    const rel = await store.load('deepfm', version);
    const a = rel.manifest.architecture as CtrArchitecture;
    assert.equal(a.type, 'deepfm');
    assert.equal(a.eventLayout?.side, 'item');
    assert.deepEqual(
      a.layout.fieldNames,
      a.eventLayout?.fields.map((f) => f.name),
    );
    assert.equal(a.vocab, 2048);
    const m = rel.manifest.metrics;
    assert.equal(m.streamEvents, 6000);
    assert.equal(m.historyEvents, 3000);
    assert.equal(m.historyFraction, 0.5);
    // Synthetic events are 100 ms apart from the default start: the history ends at event 2999.
    assert.equal(m.historyEndMs, Date.UTC(2024, 0, 1) + 2999 * 100);
    assert.equal(m.minEvents, 30);
    assert.ok(m.hotEntities! >= HISTORY_MINIMUM.entities && m.trainRows! >= 30 * m.hotEntities!);
    assert.ok(Number.isFinite(m.finalLoss));
    assert.ok(rel.files['weights.bin'] !== undefined && rel.files['model.onnx'] !== undefined);

    const second = await run('deepfm', [...base(dir), '--json', '--no-promote']);
    assert.equal(second.code, 0);
    const manifest = JSON.parse(second.out) as { version: string; parent: string | null };
    assert.equal(manifest.parent, version);
    assert.equal(await store.current('deepfm'), version, '--no-promote keeps the current release');
  });

  it('a user-side kind records the user layout under --model', async () => {
    const { code, out } = await run('coldnas', [...base(dir), '--model', 'cn-test', '--search-epochs', '1']);
    assert.equal(code, 0);
    const rel = await new ReleaseStore({ root: dir }).load('cn-test', out.trim());
    const a = rel.manifest.architecture as { type: string; eventLayout?: { side: string } };
    assert.equal(a.type, 'coldnas');
    assert.equal(a.eventLayout?.side, 'user');
    assert.ok(rel.manifest.metrics.validationEntities! > 0);
  });

  it('the default --min-events 40 leaves 17 hot users: refuses with HISTORY_TOO_THIN and publishes nothing', async () => {
    // Before trainers/history.ts this trained ColdNAS on 17 users and published the release without a word.
    const releaseDir = join(dir, 'thin');
    await assert.rejects(run('coldnas', [...common(releaseDir), '--search-epochs', '1']), (err: unknown) => {
      assert.ok(err instanceof ThawError && err.code === 'HISTORY_TOO_THIN', String(err));
      assert.match(
        err.message,
        /^history too thin: --min-events 40 leaves 17 hot users \(1,843 rows\) in a history of 3,000 events; at least 20 hot users and 1,000 rows are needed: lower --min-events/,
      );
      return true;
    });
    assert.equal(await new ReleaseStore({ root: releaseDir }).current('coldnas'), undefined);
  });

  it('--history-events N takes the first N events; with --history-fraction it is a ConfigError naming both', async () => {
    const { code, out } = await run('deepfm', [
      ...base(dir).filter((a, i, all) => a !== '--history-fraction' && all[i - 1] !== '--history-fraction'),
      '--history-events',
      '3_000',
      '--model',
      'by-count',
      '--json',
    ]);
    assert.equal(code, 0);
    const m = (JSON.parse(out) as { metrics: Record<string, number> }).metrics;
    assert.deepEqual([m.streamEvents, m.historyEvents, m.historyFraction], [6000, 3000, 0.5]);
    await assert.rejects(
      run('deepfm', [...base(dir), '--history-events', '3000']),
      (err: unknown) => err instanceof ConfigError && err.key === 'history-events' && /--history-events 3000 and --history-fraction 0\.5 are mutually exclusive/.test(err.message),
    );
  });

  it('bad arguments are ConfigErrors naming the option', async () => {
    const cases: [string, string[], string][] = [
      ['deepfm', ['--release-dir', dir], 'source'],
      ['deepfm', ['--source', 'movielens-100k', '--release-dir', dir], 'data'],
      ['deepfm', ['--source', 'file', '--data', '/tmp/x.parquet', '--release-dir', dir], 'data'],
      ['deepfm', ['--source', 'synthetic', '--history-fraction', '1', '--release-dir', dir], 'history-fraction'],
      ['deepfm', ['--source', 'synthetic', '--epochs=-1', '--release-dir', dir], 'epochs'],
      ['deepfm', ['--source', 'synthetic:nope=1', '--release-dir', dir], 'source.synthetic.nope'],
      ['deepfm', ['--source', 'movielens-100k', '--data', dir, '--drift', '0.5', '--release-dir', dir], 'drift'],
      ['fm', ['--source', 'synthetic', '--release-dir', dir], 'model'],
    ];
    for (const [kind, argv, key] of cases) {
      await assert.rejects(run(kind, argv), (err: unknown) => err instanceof ConfigError && err.key === key, `${kind} ${argv.join(' ')} → ${key}`);
    }
  });
});
