/**
 * The history options of every `thaw train` command that trains from a source: `thaw train fm`
 * (config schema + flags) and `thaw train <model> --source` (its own parser) resolve them through
 * the same code, so the same command line gives the same history and the same errors; a history too
 * thin to train on exits with the usage code and the message, and publishes nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fmHistoryOptions } from '../../../cli/commands/train-fm.js';
import { streamHistoryOptions } from '../../../cli/commands/train-stream.js';
import { EXIT } from '../../../cli/context.js';
import { main } from '../../../cli/main.js';
import { trainFmSpec } from '../../../config/commands/train-fm.js';
import { loadConfig } from '../../../config/load.js';
import { ConfigError } from '../../../lib/errors.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import type { ResolvedHistory } from '../../../trainers/history.js';

/** The fm command's history options for `argv`, and the warnings it logged. */
function fm(argv: string[]): { history: ResolvedHistory; warnings: string[] } {
  const warnings: string[] = [];
  const { config } = loadConfig(trainFmSpec, ['--source', 'synthetic', ...argv], { env: {} });
  return { history: fmHistoryOptions(config, { warn: (msg: string) => void warnings.push(msg) }), warnings };
}

const meta = (argv: string[]): ResolvedHistory => streamHistoryOptions(['--source', 'synthetic', ...argv]);

/** The ConfigError `fn` throws (fails if it throws none or another error). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  assert.fail('expected a ConfigError');
}

describe('thaw train history options', () => {
  it('parse identically for fm and a meta trainer; only the --min-events default differs', () => {
    const cases: [string[], ResolvedHistory['length'], number | undefined][] = [
      [[], { fraction: 0.5 }, undefined],
      [['--history-fraction', '0.25'], { fraction: 0.25 }, undefined],
      [['--history-events', '12_000'], { events: 12_000 }, undefined],
      [['--history-events', '800', '--min-events', '5'], { events: 800 }, 5],
    ];
    for (const [argv, length, minEvents] of cases) {
      const f = fm(argv).history;
      const m = meta(argv);
      assert.deepEqual(f.length, length, argv.join(' '));
      assert.deepEqual(m.length, length, argv.join(' '));
      assert.equal(f.minEvents, minEvents ?? 20);
      assert.equal(m.minEvents, minEvents ?? 40);
    }
  });

  it('the same command line fails with the same ConfigError in both', () => {
    const cases: [string[], string, RegExp][] = [
      [['--history-fraction', '0.5', '--history-events', '100'], 'history-events', /--history-events 100 and --history-fraction 0\.5 are mutually exclusive/],
      [['--history-fraction', '1'], 'history-fraction', /must be in \(0, 1\), got 1$/],
      [['--history-events', '2.5'], 'history-events', /must be an integer >= 1, got 2\.5$/],
      [['--min-events', '0'], 'min-events', /must be an integer >= \d, got 0$/],
    ];
    for (const [argv, key, message] of cases) {
      const f = configError(() => fm(argv));
      const m = configError(() => meta(argv));
      assert.equal(f.key, key, argv.join(' '));
      assert.match(f.message, message);
      if (key === 'min-events') continue; // the floor differs: 1 for the FM, 2 for a meta-learning task
      assert.equal(m.key, f.key, argv.join(' '));
      assert.equal(m.message, f.message, argv.join(' '));
    }
  });

  it('thaw train fm keeps --max-events and --min-count as deprecated aliases, with one warning each', () => {
    const a = fm(['--max-events', '2000', '--min-count', '5']);
    assert.deepEqual(a.history, { length: { events: 2000 }, minEvents: 5 });
    assert.deepEqual(a.warnings, ['--max-events is deprecated: use --history-events', '--min-count is deprecated: use --min-events']);
    const both = configError(() => fm(['--max-events', '10', '--history-events', '10']));
    assert.equal(both.key, 'max-events');
    assert.match(both.message, /deprecated alias of --history-events: give only --history-events/);
    const withFraction = configError(() => fm(['--max-events', '10', '--history-fraction', '0.2']));
    assert.match(withFraction.message, /--max-events 10 and --history-fraction 0\.2 are mutually exclusive/);
    assert.equal(configError(() => fm(['--min-count', '5', '--min-events', '5'])).key, 'min-count');
  });
});

describe('a history too thin to train on', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thaw-train-thin-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  function io(): { io: Parameters<typeof main>[1]; out: () => string; err: () => string } {
    let out = '';
    let err = '';
    return {
      io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, env: {} },
      out: () => out,
      err: () => err,
    };
  }

  it('thaw train fm exits with the usage code, prints the message and publishes nothing', async () => {
    // The first 1,000 of 2,000 events: 18 of the 50 users and fewer of the 500 items have 20 events.
    const c = io();
    const releaseDir = join(dir, 'fm');
    const code = await main(['train', 'fm', '--source', 'synthetic:events=2000,users=50,items=500,seed=1', '--release-dir', releaseDir, '--log-level', 'silent'], c.io);
    assert.equal(code, EXIT.usage);
    assert.match(
      c.err(),
      /^thaw train fm: history too thin: --min-events 20 leaves 18 hot users \([\d,]+ rows\) in a history of 1,000 events; at least 20 hot users and 1,000 rows are needed: lower --min-events/,
    );
    assert.equal(c.out(), '');
    assert.equal(await new ReleaseStore({ root: releaseDir }).current('fm'), undefined);
  });

  it('thaw train coldnas --source exits with the usage code, prints the message and publishes nothing', async () => {
    const c = io();
    const releaseDir = join(dir, 'coldnas');
    const argv = ['train', 'coldnas', '--source', 'synthetic:users=120,items=60', '--events', '6000', '--source-seed', '3', '--release-dir', releaseDir, '--backend', 'cpu'];
    assert.equal(await main(argv, c.io), EXIT.usage);
    assert.match(c.err(), /^thaw train coldnas: history too thin: --min-events 40 leaves 17 hot users \(1,843 rows\) in a history of 3,000 events/);
    assert.equal(await new ReleaseStore({ root: releaseDir }).current('coldnas'), undefined);
  });
});
