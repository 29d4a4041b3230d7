import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDistributedTableSql, localTableName, normaliseClusterOption, shardDdl, SHARDING_KEY } from '../../../analytics/cluster.js';
import { isTransientClickHouseError } from '../../../analytics/clickhouse-errors.js';
import { curveSql } from '../../../analytics/curves.js';
import { createPredictionsTableSql } from '../../../analytics/ddl.js';
import { clickhouseSinkOptions, openSqlTarget } from '../../../cli/connect.js';
import { clickhouseSchema } from '../../../config/connections.js';
import { silentLogger } from '../../../lib/log.js';
import { ConfigError } from '../../../lib/errors.js';

void test('shards get the single-node table under <table>_local and a Distributed table sharded by entity', () => {
  const [db, local, dist] = shardDdl('thaw', 'predictions', 'c1');
  assert.equal(db, 'CREATE DATABASE IF NOT EXISTS thaw');
  assert.equal(local, createPredictionsTableSql('thaw', 'predictions_local'));
  assert.equal(dist, createDistributedTableSql('thaw', 'predictions', 'c1'));
  assert.match(dist ?? '', /ENGINE = Distributed\(c1, thaw, predictions_local, cityHash64\(entity_id\)\)$/);
  assert.equal(SHARDING_KEY, 'cityHash64(entity_id)');
  assert.throws(() => localTableName('x'.repeat(60)), /table/);
  assert.throws(() => createDistributedTableSql('thaw', 'predictions', 'bad-name'), /cluster/);
});

void test('the curve query de-duplicates on the shards only on a cluster', () => {
  assert.doesNotMatch(curveSql({}), /distributed_group_by_no_merge/);
  assert.match(curveSql({ cluster: 'c1' }), /SETTINGS max_bytes_before_external_group_by = \d+, distributed_group_by_no_merge = 1$/);
});

void test('cluster options are validated without echoing URLs', () => {
  const key = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.doesNotMatch(err.message, /s3cret/);
      return err.key;
    }
    return 'none';
  };
  assert.equal(
    key(() => normaliseClusterOption({ name: 'c1', shardUrls: [] })),
    'clickhouse.shardUrls',
  );
  assert.equal(
    key(() => normaliseClusterOption({ name: 'c-1', shardUrls: ['http://h:1'] })),
    'clickhouse.cluster',
  );
  assert.equal(
    key(() => normaliseClusterOption({ name: 'c1', shardUrls: ['http://u:s3cret@h:1'] })),
    'clickhouse.shardUrls',
  );
  assert.equal(
    key(() => normaliseClusterOption({ name: 'c1', shardUrls: ['http://h:1', 'http://h:1/'] })),
    'clickhouse.shardUrls',
  );
  assert.deepEqual(normaliseClusterOption({ name: 'c1', shardUrls: ['http://h:1/', 'https://g:2'] }), { name: 'c1', shardUrls: ['http://h:1', 'https://g:2'] });
});

void test('config: a cluster needs the shard URLs and the other way round', () => {
  const issues = (v: unknown): string[] => {
    const r = clickhouseSchema.safeParse(v);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  assert.deepEqual(issues({ cluster: 'c1', shardUrls: ['http://a:1', 'http://b:2'] }), []);
  assert.match(issues({ cluster: 'c1' }).join('\n'), /^shardUrls: clickhouse.cluster needs/);
  assert.match(issues({ shardUrls: ['http://a:1'] }).join('\n'), /^cluster: clickhouse.shardUrls needs/);
  assert.match(issues({ cluster: 'c1', shardUrls: ['http://u:s3cret@a:1'] }).join('\n'), /^shardUrls.0: must not hold credentials/);
  assert.doesNotMatch(issues({ cluster: 'c1', shardUrls: ['http://u:s3cret@a:1'] }).join('\n'), /s3cret/);
  assert.match(issues({ cluster: 'c1', shardUrls: ['http://a:1'], table: 't'.repeat(60) }).join('\n'), /^table: .*58/);
  assert.match(issues({ cluster: 'bad name', shardUrls: ['http://a:1'] }).join('\n'), /^cluster: /);
});

void test('a shard that is down is an outage (spool and retry), not a refusal', () => {
  // As ClickHouse 18.16 answers a Distributed read or insert with a shard down.
  const msg = 'Code: 279, e.displayText() = DB::NetException: All connection tries failed. Log: \n\nCode: 210, e.displayText() = DB::NetException: Connection refused (127.0.0.1:29032)';
  assert.equal(isTransientClickHouseError(new Error(msg)), true);
  assert.equal(isTransientClickHouseError(new Error('Code: 210, e.displayText() = DB::NetException: Connection refused (127.0.0.1:29032): Insertion status:')), true);
});

void test('thaw run / replay / curves pass the cluster to the sink and the query target', async () => {
  const cfg = clickhouseSchema.parse({ url: 'http://a:1', cluster: 'c1', shardUrls: ['http://a:1', 'http://b:2'] });
  assert.deepEqual(clickhouseSinkOptions(cfg, '/tmp/spool', silentLogger).cluster, { name: 'c1', shardUrls: ['http://a:1', 'http://b:2'] });
  assert.equal(clickhouseSinkOptions(clickhouseSchema.parse({}), '/tmp/spool', silentLogger).cluster, undefined);
  const target = openSqlTarget(cfg);
  try {
    assert.equal(target.cluster, 'c1');
    assert.equal(target.table, 'predictions');
    assert.deepEqual(
      target.shards?.map((s) => s.table),
      ['predictions_local', 'predictions_local'],
    );
  } finally {
    await target.close();
  }
});
