import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../lib/errors.js';
import { run as evalRun } from '../../../cli/commands/eval.js';
import { run as trainRun } from '../../../cli/commands/train-meta.js';

test('thaw eval rejects bad options naming the key', async () => {
  await assert.rejects(evalRun(['--protocol', 'stream', '--data', '/x']), (e: unknown) => e instanceof ConfigError && e.key === 'protocol');
  await assert.rejects(evalRun(['--protocol', 'warmup']), (e: unknown) => e instanceof ConfigError && e.key === 'data');
  await assert.rejects(evalRun(['--protocol', 'warmup', '--data', '/x', '--models', 'deepfm,nope']), (e: unknown) => e instanceof ConfigError && e.key === 'models');
  await assert.rejects(evalRun(['--protocol', 'warmup', '--data', '/x', '--seeds', '0']), (e: unknown) => e instanceof ConfigError && e.key === 'seeds');
});

test('thaw train rejects an unknown model and a missing --out', async () => {
  await assert.rejects(trainRun(['coldnas', '--data', '/x', '--out', '/y']), (e: unknown) => e instanceof ConfigError && e.key === 'model');
  await assert.rejects(trainRun(['emerg', '--data', '/x']), (e: unknown) => e instanceof ConfigError && e.key === 'out');
});
