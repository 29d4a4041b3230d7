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

const key = (k: string) => (e: unknown) => e instanceof ConfigError && e.key === k && e.message.includes(k);

test('thaw train rejects an unknown model and a missing --out', async () => {
  await assert.rejects(trainRun(['nope', '--data', '/x', '--out', '/y']), key('model'));
  // --out is required by every model's training (checkpoints), and only --validate goes without it.
  for (const kind of ['emerg', 'deepfm', 'metaemb', 'coldnas', 'fixed-adaptive']) await assert.rejects(trainRun([kind, '--data', '/x']), key('out'), kind);
  await assert.rejects(trainRun(['emerg', '--data', '/x', '--release-dir', '/r']), key('out'));
});

test('thaw train --validate: no checkpoint or release; lists only with it and for item models', async () => {
  await assert.rejects(trainRun(['coldnas', '--data', '/x', '--validate', '--inner-lr', '0.1,0.3']), key('inner-lr'));
  await assert.rejects(trainRun(['emerg', '--data', '/x', '--validate', '--out', '/y']), key('out'));
  await assert.rejects(trainRun(['emerg', '--data', '/x', '--validate', '--release-dir', '/y']), key('release-dir'));
  await assert.rejects(trainRun(['emerg', '--data', '/x', '--out', '/y', '--inner-lr', '0.1,0.3']), key('inner-lr'));
  await assert.rejects(trainRun(['emerg', '--data', '/x', '--validate', '--inner-steps', '1,0']), key('inner-steps'));
  await assert.rejects(trainRun(['deepfm', '--data', '/x', '--validate', '--validation-fraction', '1']), key('validation-fraction'));
  await assert.rejects(trainRun(['deepfm', '--data', '/x', '--out', '/y', '--validation-fraction', '0.2']), key('validation-fraction'));
});
