import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../../lib/errors.js';
import { checkNamespace, entityKey, escapeEntityId, scopeKeyPrefix } from '../../../model-store/keys.js';
import { redisError, redisOptionsOf } from '../../../model-store/redis.js';

void test('entity keys carry a valid hash tag whatever the id', () => {
  const p = scopeKeyPrefix('thaw', { namespace: 'live', side: 'item', adapter: 'fm-adagrad' });
  assert.equal(entityKey(p, 'i42'), 'thaw:live:item:fm-adagrad:{i42}');
  const k = entityKey(p, 'a{b}c%7B');
  assert.equal(k, 'thaw:live:item:fm-adagrad:{a%7Bb%7Dc%257B}');
  // The tag Redis hashes is the text between the first { and the next }: the whole escaped id.
  const tag = k.slice(k.indexOf('{') + 1, k.indexOf('}', k.indexOf('{')));
  assert.equal(tag, escapeEntityId('a{b}c%7B'));
  assert.notEqual(escapeEntityId('%7B'), escapeEntityId('{'), 'escaping is one-to-one');
});

void test('namespaces, scopes and prefixes are validated', () => {
  for (const ok of ['live', 'replay-2026_01', '0', 'a'.repeat(63)]) assert.equal(checkNamespace(ok), ok);
  for (const bad of ['', 'Live', '-x', 'a:b', 'a*', 'a'.repeat(64)]) assert.throws(() => checkNamespace(bad), ConfigError);
  assert.throws(
    () => scopeKeyPrefix('thaw', { namespace: 'live', side: 'item', adapter: 'a{b}' }),
    (e: unknown) => e instanceof ConfigError && e.key === 'scope.adapter',
  );
  assert.throws(
    () => scopeKeyPrefix('thaw', { namespace: 'live', side: 'both' as 'item', adapter: 'x' }),
    (e: unknown) => e instanceof ConfigError && e.key === 'scope.side',
  );
});

void test('redis options: bounded outage behaviour, auth and tls from config, no password in errors', () => {
  const { options } = redisOptionsOf({ url: 'redis://127.0.0.1:6379', username: 'u', password: 'pw', tls: true });
  assert.equal(options.maxRetriesPerRequest, 2);
  assert.equal(options.commandTimeout, 5_000);
  assert.equal(options.username, 'u');
  assert.equal(options.password, 'pw');
  assert.deepEqual(options.tls, {});
  assert.throws(
    () => redisOptionsOf({ url: 'http://u:hunter2@host' }),
    (e: unknown) => e instanceof ConfigError && e.key === 'redis.url' && !e.message.includes('hunter2'),
  );
  assert.throws(
    () => redisOptionsOf({ url: 'redis://h', commandTimeoutMs: 0 }),
    (e: unknown) => e instanceof ConfigError && e.key === 'redis.commandTimeoutMs',
  );
  const wrapped = redisError('GET', new Error('connect to redis://admin:hunter2@host failed'));
  assert.equal(wrapped.code, 'REDIS_ERROR');
  assert.ok(!wrapped.message.includes('hunter2'));
});
