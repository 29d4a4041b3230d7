/**
 * Issue 13: `thaw run --threads` is typed, validated at start-up (naming the key), documented with
 * unit and default; each thread has a spool directory of its own, and a run with fewer threads than
 * a spool left behind refuses to start rather than leave those rows unsent.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkNoStrandedSpool, threadSpoolDir } from '../../../cli/run-assembly.js';
import { MAX_RUN_THREADS, runSpec } from '../../../config/commands/run.js';
import { describeField } from '../../../config/describe.js';
import { loadConfig } from '../../../config/load.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';

const load = (...argv: string[]) => loadConfig(runSpec, ['item', ...argv], { env: {} }).config;

describe('thaw run --threads', () => {
  it('defaults to 1 and takes 1..64', () => {
    assert.equal(load().threads, 1);
    assert.equal(load('--threads', '2').threads, 2);
    assert.equal(load('--threads', String(MAX_RUN_THREADS)).threads, 64);
  });

  it('refuses bad values naming the key', () => {
    for (const bad of ['0', '65', '1.5', 'two']) {
      assert.throws(
        () => load('--threads', bad),
        (e: unknown) => e instanceof ConfigError && e.key === 'threads',
        bad,
      );
    }
  });

  it('documents unit and default', () => {
    const doc = describeField(runSpec.schema, 'threads');
    assert.match(doc.description, /\(count, 1\.\.64\)/);
    assert.equal(doc.defaultText, '1');
  });
});

describe('thread spools', () => {
  it('thread 0 keeps --spool-dir, the others a directory each under it', () => {
    assert.equal(threadSpoolDir('/s', 0), '/s');
    assert.equal(threadSpoolDir('/s', 3), join('/s', 'thread-3'));
  });

  it('refuses fewer threads than a spool that still holds rows, says how many to run', () => {
    const dir = mkdtempSync(join(tmpdir(), 'thaw-spool-'));
    try {
      checkNoStrandedSpool(join(dir, 'missing'), 1);
      mkdirSync(join(dir, 'thread-1'));
      checkNoStrandedSpool(dir, 1); // an empty one holds nothing
      mkdirSync(join(dir, 'thread-2'));
      writeFileSync(join(dir, 'thread-2', 'seg-000000000001.jsonl'), '{}\n');
      assert.throws(
        () => checkNoStrandedSpool(dir, 2),
        (e: unknown) => e instanceof ThawError && e.code === 'USAGE' && /thread-2 holds prediction rows.*--threads 3 or more/.test(e.message),
      );
      checkNoStrandedSpool(dir, 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
