/**
 * `thaw serve --adapter` (issue 12, serving every adapter): the adapter, its options, its cross-side
 * partner and the safeguard side are typed and validated at start-up (exit 2 naming the key).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serveSpec } from '../../../config/commands/serve.js';
import { loadConfig } from '../../../config/load.js';
import { ConfigError } from '../../../lib/errors.js';

const load = (...argv: string[]) => loadConfig(serveSpec, argv, { env: {} }).config;
const refused = (key: string, ...argv: string[]): void =>
  assert.throws(
    () => load(...argv),
    (e: unknown) => e instanceof ConfigError && e.key === key,
    argv.join(' '),
  );

describe('thaw serve --adapter', () => {
  it('defaults: fm-adagrad, the safeguard side and the partner automatic', () => {
    const c = load();
    assert.deepEqual([c.adapter, c.safeguard, c.crossAdapter, c.crossModel], ['fm-adagrad', 'auto', 'auto', undefined]);
  });

  it('takes a meta adapter with its options and partner', () => {
    const c = load('--adapter', 'emerg', '--model', 'emerg', '--emerg-learning-rate', '0.3', '--cross-adapter', 'off', '--safeguard', 'item');
    assert.deepEqual([c.adapter, c.model, c.adapterOptions.emerg?.learningRate, c.crossAdapter, c.safeguard], ['emerg', 'emerg', 0.3, 'off', 'item']);
  });

  it('refuses what no worker logs or the server would not read, naming the key', () => {
    refused('adapter', '--adapter', 'none');
    refused('adapter', '--adapter', 'deepfm');
    refused('safeguard', '--adapter', 'coldnas', '--safeguard', 'item');
    refused('safeguard', '--adapter', 'emerg', '--safeguard', 'user');
    refused('crossAdapter', '--cross-adapter', 'off');
    refused('crossModel', '--cross-model', 'fm2');
    refused('adapterOptions.emerg', '--adapter', 'coldnas', '--emerg-learning-rate', '0.3');
    refused('adapterOptions.fm-adagrad', '--fm-learning-rate', '0.3');
    refused('adapter', '--demo', '--adapter', 'coldnas');
  });
});
