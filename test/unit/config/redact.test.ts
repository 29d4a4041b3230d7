import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isSecretKey, redactConfig, redactMessage } from '../../../config/redact.js';
import { loadConfig } from '../../../config/load.js';
import { runSpec } from '../../../config/commands/run.js';

describe('redactConfig', () => {
  it('masks nested secrets and URL credentials, leaves the rest', () => {
    const env = {
      THAW_KAFKA_SASL_MECHANISM: 'plain',
      THAW_KAFKA_SASL_USERNAME: 'svc',
      THAW_KAFKA_SASL_PASSWORD: 's3cr3t-kafka',
      THAW_REDIS_URL: 'redis://user:s3cr3t-url@redis:6379',
      THAW_REDIS_PASSWORD: 's3cr3t-redis',
      THAW_CLICKHOUSE_PASSWORD: 's3cr3t-ch',
    };
    const { config } = loadConfig(runSpec, ['item'], { env });
    const red = redactConfig(config);
    const text = JSON.stringify(red);
    assert.doesNotMatch(text, /s3cr3t/);
    assert.equal(red.kafka.sasl?.password, '***');
    assert.equal(red.kafka.sasl?.username, 'svc');
    assert.equal(red.redis.password, '***');
    assert.equal(red.clickhouse.password, '***');
    assert.equal(red.redis.url, 'redis://***@redis:6379');
    assert.deepEqual(red.kafka.brokers, config.kafka.brokers);
    // The original is untouched.
    assert.equal(config.kafka.sasl?.password, 's3cr3t-kafka');
  });

  it('leaves an empty password visible as empty (nothing to hide)', () => {
    assert.deepEqual(redactConfig({ clickhouse: { password: '' } }), { clickhouse: { password: '' } });
  });

  it('isSecretKey looks at the last segment', () => {
    assert.equal(isSecretKey('kafka.sasl.password'), true);
    assert.equal(isSecretKey('redis.password'), true);
    assert.equal(isSecretKey('kafka.sasl.username'), false);
    assert.equal(isSecretKey('namespace'), false);
  });

  it('redactMessage removes given secrets and URL userinfo', () => {
    assert.equal(redactMessage('x hunter2 y http://a:b@h/', ['hunter2']), 'x *** y http://***@h/');
  });
});
