/**
 * `thaw serve --models FILE` (issue 12, model as a service): the file's entries are validated at
 * start-up, every error naming the entry and the key (`models[1].namespace`); values an entry does
 * not give are the flags'; without --models the server has the flags' one model, `default`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { servedModels } from '../../../config/commands/serve-models.js';
import { serveSpec } from '../../../config/commands/serve.js';
import { loadConfig } from '../../../config/load.js';
import { ConfigError } from '../../../lib/errors.js';

const load = (...argv: string[]) => loadConfig(serveSpec, argv, { env: {} }).config;
/** The models of a --models file holding `json`, with the extra flags. */
const modelsOf = (json: unknown, ...argv: string[]) => servedModels(load('--models', 'models.json', ...argv), () => (typeof json === 'string' ? json : JSON.stringify(json)));
const refused = (key: string, json: unknown, pattern?: RegExp, ...argv: string[]): void =>
  assert.throws(
    () => modelsOf(json, ...argv),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.key, key, e.message);
      if (pattern !== undefined) assert.match(e.message, pattern);
      return true;
    },
  );

const fm = { name: 'home', adapter: 'fm-adagrad', model: 'fm', namespace: 'home' };
const emerg = { name: 'search_v2', adapter: 'emerg', model: 'emerg', namespace: 'search', releaseDir: '/srv/releases-search' };

describe('thaw serve --models', () => {
  it('without --models: one model named default, of the flags', () => {
    const [only, ...rest] = servedModels(load('--adapter', 'coldnas', '--model', 'cn', '--namespace', 'ns1', '--freshness-ms', '5', '--safeguard', 'off'));
    assert.equal(rest.length, 0);
    assert.deepEqual([only?.name, only?.adapter, only?.model, only?.namespace, only?.freshnessMs, only?.safeguard], ['default', 'coldnas', 'cn', 'ns1', 5, 'off']);
  });

  it('reads each entry, the values it does not give from the flags', () => {
    const models = modelsOf(
      [fm, { ...emerg, freshnessMs: 0, maxCandidates: 10, adapterOptions: { emerg: { learningRate: 0.2 } } }],
      '--freshness-ms',
      '250',
      '--release-dir',
      '/srv/releases',
      '--deadline-ms',
      '30',
    );
    assert.deepEqual(
      models.map((m) => [m.name, m.adapter, m.namespace, m.releaseDir, m.freshnessMs, m.maxCandidates, m.deadlineMs]),
      [
        ['home', 'fm-adagrad', 'home', '/srv/releases', 250, 1000, 30],
        ['search_v2', 'emerg', 'search', '/srv/releases-search', 0, 10, 30],
      ],
    );
    assert.equal(models[1]?.adapterOptions.emerg?.learningRate, 0.2);
  });

  it("an entry of another adapter than the flags' does not inherit the flags' partner, options or safeguard side", () => {
    const models = modelsOf([fm, emerg], '--adapter', 'coldnas', '--model', 'coldnas', '--safeguard', 'user', '--cross-adapter', 'off', '--coldnas-history-window', '5');
    assert.deepEqual(
      models.map((m) => [m.safeguard, m.crossAdapter, Object.keys(m.adapterOptions).length]),
      [
        ['auto', 'auto', 0],
        ['auto', 'auto', 0],
      ],
    );
    const same = modelsOf([{ name: 'cn', adapter: 'coldnas', model: 'coldnas', namespace: 'x' }], '--adapter', 'coldnas', '--model', 'coldnas', '--safeguard', 'user', '--cross-adapter', 'off');
    assert.deepEqual([same[0]?.safeguard, same[0]?.crossAdapter], ['user', 'off']);
  });

  it('refuses a bad file with an error naming the entry and the key', () => {
    refused('models[1].namespace', [fm, { ...emerg, namespace: 'Bad NS' }], /expected 1-63 characters/);
    refused('models[1].namespace', [fm, { name: 'x', adapter: 'emerg', model: 'emerg' }], /required/);
    refused('models[0].adapter', [{ ...fm, adapter: 'deepfm' }]);
    refused('models[0].name', [{ ...fm, name: 'a b' }], /letters, digits/);
    refused('models[1].name', [fm, { ...emerg, name: 'home' }], /already the name of models\[0\]/);
    refused('models[0].freshnesMs', [{ ...fm, freshnesMs: 3 }], /unknown key/);
    refused('models[0].fetchConcurrency', [{ ...fm, fetchConcurrency: 0 }]);
    refused('models[1].safeguard', [fm, { ...emerg, safeguard: 'user' }], /adapts items/);
    refused('models[0].crossAdapter', [{ ...fm, crossAdapter: 'off' }]);
    refused('models[1].adapterOptions.coldnas', [fm, { ...emerg, adapterOptions: { coldnas: { historyWindow: 5 } } }], /not read/);
    refused('models[0]', ['fm']);
    refused('models', { models: [fm] }, /JSON array/);
    refused('models', [], /no model/);
    refused('models', '[{"name": ', /not JSON/);
  });

  it('refuses an unreadable file and --models with --demo', () => {
    assert.throws(
      () => servedModels(load('--models', '/nonexistent/models.json')),
      (e: unknown) => e instanceof ConfigError && e.key === 'models' && /cannot read \/nonexistent\/models.json/.test(e.message),
    );
    assert.throws(
      () => load('--demo', '--models', 'm.json'),
      (e: unknown) => e instanceof ConfigError && e.key === 'models',
    );
  });
});
