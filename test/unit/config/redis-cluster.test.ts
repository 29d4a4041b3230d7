/**
 * Issue 11 "Redis Cluster, real": `--redis-cluster` / THAW_REDIS_CLUSTER / redis.cluster reach the
 * Redis connection, and the `maxEntities` cap (whose index would live on one node) is refused with it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redisConnection } from '../../../cli/connect.js';
import { runSpec } from '../../../config/commands/run.js';
import { serveSpec } from '../../../config/commands/serve.js';
import { loadConfig } from '../../../config/load.js';
import { ConfigError } from '../../../lib/errors.js';
import { clusterOptionsOf, redisOptionsOf } from '../../../model-store/redis.js';

const run = (argv: string[], env: Record<string, string> = {}) => loadConfig(runSpec, ['item', ...argv], { env }).config;

describe('redis.cluster', () => {
  it('is off by default and switched on by the flag or the env', () => {
    assert.equal(run([]).redis.cluster, false);
    assert.equal(redisConnection(run([]).redis).cluster, undefined);
    const flagged = run(['--redis', 'redis://10.0.0.1:7000', '--redis-cluster']);
    assert.deepEqual(redisConnection(flagged.redis), { url: 'redis://10.0.0.1:7000', cluster: true });
    assert.equal(run([], { THAW_REDIS_CLUSTER: 'true' }).redis.cluster, true);
    assert.equal(loadConfig(serveSpec, ['--redis-cluster'], { env: {} }).config.redis.cluster, true);
  });

  it('refuses stateMaxEntities > 0 with it, naming the key', () => {
    assert.throws(
      () => run(['--redis-cluster', '--state-max-entities', '1000']),
      (e: unknown) => e instanceof ConfigError && e.key === 'stateMaxEntities',
    );
    assert.equal(run(['--redis-cluster', '--state-max-entities', '0']).stateMaxEntities, 0);
  });

  it('cluster clients get the standalone outage policy per node, credentials included, reads on masters', () => {
    const { options } = redisOptionsOf({ url: 'redis://app:s3cret@10.0.0.1:7000', cluster: true });
    const cluster = clusterOptionsOf(options);
    assert.equal(cluster.redisOptions?.password, 's3cret');
    assert.equal(cluster.redisOptions?.username, 'app');
    assert.equal(cluster.redisOptions?.commandTimeout, 5_000);
    assert.equal(cluster.scaleReads, 'master');
    assert.equal(cluster.enableOfflineQueue, true);
    assert.equal(typeof cluster.clusterRetryStrategy, 'function');
  });
});
