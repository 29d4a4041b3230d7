/**
 * The connection settings of secured services (issue 11, "Secured transports"): CA files checked at
 * start with a ConfigError naming the key, the Redis ACL user, TLS implied by a CA file, and the
 * mapping onto the clients' options (cli/connect.ts) that every connecting command shares.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, loadFromEnv } from '../../../config/load.js';
import { runSpec } from '../../../config/commands/run.js';
import { curvesSpec } from '../../../config/commands/curves.js';
import { serveSpec } from '../../../config/commands/serve.js';
import { kafkaRedisSchema } from '../../../config/connections.js';
import { clickhouseSinkOptions, kafkaConnection, redisConnection } from '../../../cli/connect.js';
import { redisOptionsOf } from '../../../model-store/redis.js';
import { ConfigError } from '../../../lib/errors.js';
import { silentLogger } from '../../../lib/log.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
let dir: string;
let ca: string;
let notPem: string;

function configError(key: string, re: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.key, key);
    assert.match(err.message, re);
    return true;
  };
}

const load = (argv: string[], env: Record<string, string> = {}): ReturnType<typeof loadConfig<typeof runSpec.schema>>['config'] => loadConfig(runSpec, ['item', ...argv], { env }).config;

describe('secured connection settings', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'thaw-secure-unit-'));
    ca = join(dir, 'ca.crt');
    writeFileSync(ca, PEM);
    notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a missing CA file is a ConfigError naming the key (flag or env)', () => {
    assert.throws(() => load(['--kafka-tls-ca-file', join(dir, 'nope.crt')]), configError('kafka.tlsCaFile', /cannot read the CA file .*nope\.crt \(ENOENT\)/));
    assert.throws(() => load([], { THAW_REDIS_TLS_CA_FILE: join(dir, 'nope.crt') }), configError('redis.tlsCaFile', /ENOENT/));
    assert.throws(() => load(['--redis-tls-ca-file', dir]), configError('redis.tlsCaFile', /EISDIR/));
  });

  it('a CA file without a PEM certificate is refused', () => {
    assert.throws(() => load(['--kafka-tls-ca-file', notPem]), configError('kafka.tlsCaFile', /holds no PEM certificate/));
  });

  it('a ClickHouse CA file needs an https URL', () => {
    assert.throws(() => loadConfig(curvesSpec, ['--clickhouse-tls-ca-file', ca], { env: {} }), configError('clickhouse.tlsCaFile', /needs an https:\/\//));
    const ok = loadConfig(curvesSpec, ['--clickhouse-tls-ca-file', ca, '--clickhouse', 'https://ch.example:8443'], { env: {} }).config;
    assert.equal(ok.clickhouse.tlsCaFile, ca);
  });

  it('a CA file implies TLS, and reaches the Kafka and Redis clients', () => {
    const cfg = load(['--kafka-tls-ca-file', ca, '--redis-tls-ca-file', ca]);
    assert.equal(cfg.kafka.tls, true);
    assert.equal(cfg.redis.tls, true);
    const k = kafkaConnection(cfg.kafka);
    assert.ok(typeof k.ssl === 'object' && Array.isArray(k.ssl.ca));
    assert.equal(String((k.ssl.ca as Buffer[])[0]), PEM);
    const r = redisConnection(cfg.redis);
    assert.ok(typeof r.tls === 'object');
    assert.equal(String((r.tls.ca as Buffer[])[0]), PEM);
    assert.equal(redisOptionsOf(r).options.tls, r.tls);
  });

  it('without a CA file: kafka.tls means the system CAs, rediss:// means TLS', () => {
    const cfg = load(['--kafka-tls', '--redis', 'rediss://127.0.0.1:6380']);
    assert.equal(kafkaConnection(cfg.kafka).ssl, true);
    assert.equal(cfg.redis.tls, true);
    assert.equal(redisConnection(cfg.redis).tls, true);
    assert.equal(kafkaConnection(load([]).kafka).ssl, undefined);
  });

  it('SASL from flags and env: the password only from env or file', () => {
    const cfg = load(['--kafka-sasl-mechanism', 'scram-sha-512', '--kafka-sasl-username', 'thaw'], { THAW_KAFKA_SASL_PASSWORD: 'Secret-77' });
    assert.deepEqual(kafkaConnection(cfg.kafka).sasl, { mechanism: 'scram-sha-512', username: 'thaw', password: 'Secret-77' });
    assert.throws(
      () => load(['--kafka-sasl-mechanism', 'scram-sha-1', '--kafka-sasl-username', 'thaw'], { THAW_KAFKA_SASL_PASSWORD: 'Secret-77' }),
      (err) => err instanceof ConfigError && err.key === 'kafka.sasl.mechanism' && !err.message.includes('Secret-77'),
    );
  });

  it('the Redis ACL user: from the URL, overridden by --redis-username / THAW_REDIS_USERNAME', () => {
    const fromUrl = redisOptionsOf(redisConnection(load(['--redis', 'rediss://thaw@127.0.0.1:6380'], { THAW_REDIS_PASSWORD: 'pw-1' }).redis)).options;
    assert.equal(fromUrl.username, 'thaw');
    assert.equal(fromUrl.password, 'pw-1');
    const flag = redisOptionsOf(redisConnection(load(['--redis', 'rediss://thaw@127.0.0.1:6380', '--redis-username', 'worker']).redis)).options;
    assert.equal(flag.username, 'worker');
    const env = load([], { THAW_REDIS_USERNAME: 'svc' });
    assert.equal(env.redis.username, 'svc');
    assert.throws(() => load(['--redis-username', 'two words']), configError('redis.username', /no spaces/));
  });

  it('serve takes the same Kafka and Redis settings', () => {
    const cfg = loadConfig(serveSpec, ['--redis-tls-ca-file', ca, '--redis-username', 'reader'], { env: {} }).config;
    assert.equal(redisConnection(cfg.redis).username, 'reader');
  });

  it('the ClickHouse CA reaches the sink', () => {
    const cfg = loadConfig(curvesSpec, ['--clickhouse-tls-ca-file', ca, '--clickhouse', 'https://ch.example:8443', '--clickhouse-user', 'thaw'], { env: {} }).config;
    const opts = clickhouseSinkOptions(cfg.clickhouse, dir, silentLogger);
    assert.equal(String(opts.caCert), PEM);
    assert.equal(opts.username, 'thaw');
  });

  it('loadFromEnv: the commands with their own flags get TLS, SASL and the ACL user from the environment', () => {
    const env = {
      THAW_KAFKA_TLS_CA_FILE: ca,
      THAW_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      THAW_KAFKA_SASL_USERNAME: 'thaw',
      THAW_KAFKA_SASL_PASSWORD: 'pw-2',
      THAW_REDIS_USERNAME: 'thaw',
      THAW_REDIS_TLS_CA_FILE: ca,
    };
    const conn = loadFromEnv(kafkaRedisSchema, env, { kafka: { brokers: ['b1:9093'] }, redis: { url: 'redis://r:6380' } });
    assert.deepEqual(conn.kafka.brokers, ['b1:9093']);
    assert.equal(conn.kafka.tls, true);
    assert.equal(conn.kafka.sasl?.username, 'thaw');
    assert.equal(conn.redis.url, 'redis://r:6380');
    assert.equal(conn.redis.tls, true);
    assert.throws(() => loadFromEnv(kafkaRedisSchema, { THAW_KAFKA_TLS_CA_FILE: notPem }), configError('kafka.tlsCaFile', /no PEM/));
  });
});
