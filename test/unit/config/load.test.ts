import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, validate } from '../../../config/load.js';
import { runSpec } from '../../../config/commands/run.js';
import { demoSpec } from '../../../config/commands/demo.js';
import { replaySpec } from '../../../config/commands/replay.js';
import { produceSpec } from '../../../config/commands/produce.js';
import { curvesSpec } from '../../../config/commands/curves.js';
import { ConfigError, ThawError } from '../../../lib/errors.js';

const noFile = (): string => {
  throw Object.assign(new Error('no'), { code: 'ENOENT' });
};

function configError(key: string, re?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.key, key);
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.ok(err.message.startsWith(`invalid config "${key}": `), err.message);
    if (re) assert.match(err.message, re);
    return true;
  };
}

describe('loadConfig: defaults, file, env, flags', () => {
  it('applies schema defaults when nothing is given', () => {
    const { config } = loadConfig(demoSpec, [], { env: {}, readFile: noFile });
    assert.equal(config.events, 100_000);
    assert.equal(config.seed, 7);
    assert.equal(config.json, false);
    assert.equal(config.out, '.thaw/demo');
  });

  it('merges in order defaults < file < env < flags', () => {
    const file = JSON.stringify({
      kafka: { brokers: ['file:1'], clientId: 'from-file' },
      redis: { url: 'redis://file:6379' },
      namespace: 'filens',
      metricsPort: 1111,
      adapter: 'none',
    });
    const env = { THAW_KAFKA: 'env1:2,env2:3', THAW_NAMESPACE: 'envns', THAW_METRICS_PORT: '2222' };
    const { config, configFile } = loadConfig(runSpec, ['item', '--config', 'c.json', '--metrics-port', '3333'], { env, readFile: () => file });
    assert.equal(configFile, 'c.json');
    assert.deepEqual(config.kafka.brokers, ['env1:2', 'env2:3']); // env beats file
    assert.equal(config.kafka.clientId, 'from-file'); // file beats default
    assert.equal(config.redis.url, 'redis://file:6379');
    assert.equal(config.namespace, 'envns');
    assert.equal(config.metricsPort, 3333); // flag beats env
    assert.equal(config.adapter, 'none');
    assert.equal(config.side, 'item');
    assert.equal(config.clickhouse.url, 'http://127.0.0.1:18123'); // default
  });

  it('reads the file named by THAW_CONFIG when --config is absent', () => {
    let read = '';
    const { config } = loadConfig(demoSpec, [], {
      env: { THAW_CONFIG: '/etc/thaw.json' },
      readFile: (p) => {
        read = p;
        return '{"events": 1234}';
      },
    });
    assert.equal(read, '/etc/thaw.json');
    assert.equal(config.events, 1234);
  });

  it('ignores keys of other commands in a shared file but rejects unknown keys', () => {
    const file = '{"events": 5000, "kafka": {"brokers": ["a:1"]}}';
    const { config } = loadConfig(demoSpec, ['--config', 'c.json'], { env: {}, readFile: () => file, sharedFileKeys: ['kafka'] });
    assert.equal(config.events, 5000);
    assert.throws(() => loadConfig(demoSpec, ['--config', 'c.json'], { env: {}, readFile: () => '{"evnets": 5}', sharedFileKeys: ['kafka'] }), configError('evnets', /unknown key/));
    assert.throws(() => loadConfig(runSpec, ['item', '--config', 'c.json'], { env: {}, readFile: () => '{"kafka": {"broker": ["a:1"]}}' }), configError('kafka.broker', /unknown key/));
  });

  it('ignores env vars of keys the command does not have', () => {
    const { config } = loadConfig(demoSpec, [], { env: { THAW_KAFKA: 'not valid at all' } });
    assert.equal(config.events, 100_000);
  });

  it('sets SASL from env and applies booleans', () => {
    const env = { THAW_KAFKA_SASL_MECHANISM: 'scram-sha-256', THAW_KAFKA_SASL_USERNAME: 'u', THAW_KAFKA_SASL_PASSWORD: 'p', THAW_KAFKA_TLS: 'true' };
    const { config } = loadConfig(produceSpec, ['--source', 'synthetic'], { env });
    assert.deepEqual(config.kafka.sasl, { mechanism: 'scram-sha-256', username: 'u', password: 'p' });
    assert.equal(config.kafka.tls, true);
    assert.deepEqual(config.source, { kind: 'synthetic' });
  });

  it('--help needs no valid config', () => {
    const r = loadConfig(runSpec, ['--help', '--kafka', 'nonsense'], { env: {} });
    assert.equal(r.help, true);
  });
});

describe('loadConfig: validation errors name the key', () => {
  it('bad broker', () => {
    assert.throws(() => loadConfig(runSpec, ['item', '--kafka', 'nonsense'], { env: {} }), configError('kafka.brokers', /expected host:port/));
    assert.throws(() => loadConfig(runSpec, ['item', '--kafka', 'a:1,b:99999'], { env: {} }), configError('kafka.brokers', /expected host:port/));
  });

  it('bad broker from env says where it came from only via the key', () => {
    assert.throws(() => loadConfig(runSpec, ['item'], { env: { THAW_KAFKA: 'x' } }), configError('kafka.brokers'));
  });

  it('missing and bad positional', () => {
    assert.throws(() => loadConfig(runSpec, [], { env: {} }), configError('side', /required/));
    assert.throws(() => loadConfig(runSpec, ['items'], { env: {} }), configError('side'));
  });

  it('numbers', () => {
    assert.throws(() => loadConfig(demoSpec, ['--events', 'many'], { env: {} }), configError('events', /integer/));
    assert.throws(() => loadConfig(demoSpec, ['--events', '1.5'], { env: {} }), configError('events', /integer/));
    assert.throws(() => loadConfig(demoSpec, ['--events', '0'], { env: {} }), configError('events', /positive/));
    assert.throws(() => loadConfig(runSpec, ['item', '--metrics-port', '70000'], { env: {} }), configError('metricsPort', /port/));
    assert.throws(() => loadConfig(runSpec, ['item'], { env: { THAW_METRICS_PORT: 'abc' } }), configError('metricsPort', /THAW_METRICS_PORT/));
  });

  it('urls, enums and sources', () => {
    assert.throws(() => loadConfig(runSpec, ['item', '--redis', 'http://x:1'], { env: {} }), configError('redis.url', /redis/));
    assert.throws(() => loadConfig(curvesSpec, ['--side', 'both'], { env: {} }), configError('side'));
    assert.throws(() => loadConfig(produceSpec, ['--source', 'kafka:x'], { env: {} }), configError('source', /unknown source/));
    assert.throws(() => loadConfig(produceSpec, [], { env: {} }), configError('source', /required/));
    assert.throws(() => loadConfig(produceSpec, ['--source', 'synthetic', '--mode', 'clicks'], { env: {} }), configError('mode'));
  });

  it('replay refuses live and needs a range unless promoting or dropping', () => {
    assert.throws(() => loadConfig(replaySpec, ['--namespace', 'live', '--from', '0', '--to', '9'], { env: {} }), configError('namespace', /live/));
    assert.throws(() => loadConfig(replaySpec, ['--namespace', 'bf1'], { env: {} }), configError('from'));
    assert.throws(() => loadConfig(replaySpec, ['--namespace', 'bf1', '--from', 'yesterday', '--to', '5'], { env: {} }), configError('from', /ISO/));
    assert.throws(() => loadConfig(replaySpec, ['--namespace', 'bf1', '--promote', '--drop'], { env: {} }), configError('drop'));
    const { config } = loadConfig(replaySpec, ['--namespace', 'bf1', '--from', '2024-01-01T00:00:00Z', '--to', '500'], { env: {} });
    assert.deepEqual(config.from, { timeMs: Date.UTC(2024, 0, 1) });
    assert.deepEqual(config.to, { offset: 500 });
    assert.equal(loadConfig(replaySpec, ['--namespace', 'bf1', '--promote'], { env: {} }).config.promote, true);
  });

  it('invalid JSON and unreadable config files are ConfigErrors on "config"', () => {
    assert.throws(() => loadConfig(demoSpec, ['--config', 'x.json'], { env: {}, readFile: () => '{nope' }), configError('config', /not valid JSON/));
    assert.throws(() => loadConfig(demoSpec, ['--config', 'x.json'], { env: {}, readFile: noFile }), configError('config', /cannot read/));
    assert.throws(() => loadConfig(demoSpec, ['--config', 'x.json'], { env: {}, readFile: () => '[1]' }), configError('config', /object/));
  });

  it('unknown flags and stray arguments are usage errors', () => {
    assert.throws(
      () => loadConfig(demoSpec, ['--bogus'], { env: {} }),
      (err: unknown) => err instanceof ThawError && err.code === 'USAGE' && /bogus/.test(err.message),
    );
    assert.throws(
      () => loadConfig(demoSpec, ['extra'], { env: {} }),
      (err: unknown) => err instanceof ThawError && err.code === 'USAGE' && /extra/.test(err.message),
    );
  });
});

describe('secrets never appear in error messages', () => {
  it('a password in a bad URL is not echoed', () => {
    try {
      loadConfig(runSpec, ['item', '--clickhouse', 'ftp://admin:hunter2@ch:8123'], { env: {} });
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.key, 'clickhouse.url');
      assert.doesNotMatch(err.message, /hunter2/);
    }
  });

  it('a bad SASL password type or enum does not echo the value', () => {
    const env = { THAW_KAFKA_SASL_MECHANISM: 'hunter2-mech', THAW_KAFKA_SASL_USERNAME: 'u', THAW_KAFKA_SASL_PASSWORD: 'hunter2' };
    try {
      loadConfig(produceSpec, ['--source', 'synthetic'], { env });
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.key, 'kafka.sasl.mechanism');
      assert.doesNotMatch(err.message, /hunter2\b(?!-mech)/);
    }
    // validate() redacts secret values wherever they would appear in a message.
    try {
      validate(runSpec.schema, { side: 'item', redis: { password: 'hunter2' }, kafka: { brokers: ['hunter2'] } });
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.doesNotMatch(err.message, /hunter2/);
    }
  });
});
