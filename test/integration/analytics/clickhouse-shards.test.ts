/**
 * Issue 11: ClickHouse as 2 shards behind a Distributed table. A private 2-shard instance
 * (scripts/services.sh up clickhouse-shards) and the shared single node receive the same predictions,
 * redeliveries and re-scored copies included, through ClickHouseSink; both shards must hold rows,
 * every copy of an event (and every entity) must sit on one shard, and what Thaw reads (curves, by
 * day too, counts, a replay namespace and its drop through `thaw replay --drop`'s wiring) must equal
 * the single node's and a TypeScript reference.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import { localTableName } from '../../../analytics/cluster.js';
import { queryCurves, type CurveSource } from '../../../analytics/curves.js';
import { createPredictionsTableSql, createDatabaseSql } from '../../../analytics/ddl.js';
import { HttpSqlTarget } from '../../../analytics/http-target.js';
import { countRows, dropNamespaceRows } from '../../../analytics/namespaces.js';
import type { CurveRow, PredictionRow } from '../../../analytics/types.js';
import { openSqlTarget } from '../../../cli/connect.js';
import { clickhouseSchema } from '../../../config/connections.js';
import { ConfigError } from '../../../lib/errors.js';
import { curveKey, referenceCurves, syntheticRows } from './fixtures.js';
import { PrivateShards } from './private-shards.js';

const SINGLE_URL = process.env.THAW_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123';
const TABLE = 'predictions';
const cleanups: (() => Promise<unknown>)[] = [];
let shards: PrivateShards;

before(async () => {
  shards = await PrivateShards.up();
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await (shards as PrivateShards | undefined)?.down(); // undefined when `before` failed
});

const newDb = (): string => `thaw_test_${randomUUID().replace(/-/g, '')}`;

async function spoolDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'thaw-spool-'));
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}

/** A sink on the 2 shards (through shard 1's Distributed table). */
async function shardedSink(database: string, shardUrls = shards.shardUrls, cluster = shards.cluster): Promise<ClickHouseSink> {
  const sink = new ClickHouseSink({ url: shards.shardUrls[0] ?? '', database, table: TABLE, spoolDir: await spoolDir(), cluster: { name: cluster, shardUrls } });
  cleanups.push(() => sink.close());
  return sink;
}

async function singleSink(database: string): Promise<ClickHouseSink> {
  const sink = new ClickHouseSink({ url: SINGLE_URL, database, table: TABLE, spoolDir: await spoolDir() });
  cleanups.push(async () => {
    await sink.command(`DROP DATABASE IF EXISTS ${database}`);
    await sink.close();
  });
  return sink;
}

function assertSameCurves(actual: readonly CurveRow[], expected: readonly CurveRow[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: rows`);
  actual.forEach((a, i) => {
    const e = expected[i];
    assert.ok(e !== undefined);
    const key = `${what}: ${a.namespace} ${curveKey(a)} ${(a as { day?: string }).day ?? ''}`;
    assert.deepEqual({ ...a, ctr: 0, auc: 0, logLoss: 0 }, { ...e, ctr: 0, auc: 0, logLoss: 0 }, key);
    assert.ok(Math.abs(a.ctr - e.ctr) < 1e-12, `${key} ctr`);
    assert.ok(Math.abs(a.logLoss - e.logLoss) < 1e-9, `${key} log loss`);
    if (Number.isNaN(e.auc)) assert.ok(Number.isNaN(a.auc), `${key} auc NaN`);
    else assert.ok(Math.abs(a.auc - e.auc) < 1e-12, `${key} auc ${a.auc} vs ${e.auc}`);
  });
}

/** (namespace|adapter|side|event_id) and entity ids held by a shard's local table. */
async function shardContents(shard: CurveSource): Promise<{ rows: number; keys: Set<string>; entities: Set<string> }> {
  const rows = await shard.query(`SELECT namespace, adapter, side, event_id, entity_id FROM ${shard.database}.${shard.table}`);
  return {
    rows: rows.length,
    keys: new Set(rows.map((r) => `${String(r.namespace)}|${String(r.adapter)}|${String(r.side)}|${String(r.event_id)}`)),
    entities: new Set(rows.map((r) => `${String(r.side)}|${String(r.entity_id)}`)),
  };
}

void describe('prediction log on 2 ClickHouse shards behind a Distributed table', () => {
  void test('the same writes give the same curves, counts and namespaces as one node', async () => {
    const database = newDb();
    const single = await singleSink(database);
    const sharded = await shardedSink(database);
    await single.ensureSchema();
    await sharded.ensureSchema();
    await sharded.ensureSchema(); // idempotent

    const live = syntheticRows(4000, 'live', 31);
    const replay = syntheticRows(1500, 'replay-a', 32);
    // Redeliveries (exact copies) and, a second later, re-scored copies: the latest inserted wins.
    const redelivered = live.slice(0, 600);
    const rescored: PredictionRow[] = live.slice(600, 900).map((r) => ({ ...r, score: Math.fround(1 - r.score) }));
    const writeBoth = async (rows: readonly PredictionRow[]): Promise<void> => {
      for (const sink of [single, sharded]) {
        await sink.write(rows);
        await sink.flush();
      }
    };
    for (let i = 0; i < 4; i++) await writeBoth(live.slice(i * 1000, (i + 1) * 1000));
    await writeBoth(replay);
    await writeBoth(redelivered);
    await new Promise((r) => setTimeout(r, 1100)); // inserted_at has whole seconds
    await writeBoth(rescored);
    const physical = live.length + replay.length + redelivered.length + rescored.length;

    // Both shards got rows; every copy of an event and every entity is on one shard.
    const [a, b] = await Promise.all((sharded.shards ?? []).map(shardContents));
    assert.ok(a !== undefined && b !== undefined, 'two shard targets');
    assert.ok(a.rows > 0 && b.rows > 0, `both shards hold rows: ${a.rows}, ${b.rows}`);
    // (Background merges may already have collapsed some copies: physical counts lie in a range.)
    const distinct = live.length + replay.length;
    assert.ok(a.rows + b.rows >= distinct && a.rows + b.rows <= physical, `rows on the shards: ${a.rows + b.rows}`);
    assert.deepEqual(
      [...a.keys].filter((k) => b.keys.has(k)),
      [],
      'no event on both shards',
    );
    assert.deepEqual(
      [...a.entities].filter((k) => b.entities.has(k)),
      [],
      'no entity on both shards',
    );
    assert.equal(a.keys.size + b.keys.size, distinct);

    // Counts, physical and de-duplicated, per namespace and in all.
    for (const sink of [sharded, single]) {
      const n = await countRows(sink);
      assert.ok(n >= distinct && n <= physical, `physical rows ${n}`);
    }
    for (const namespace of ['live', 'replay-a']) {
      assert.equal(await countRows(sharded, { namespace, distinct: true }), await countRows(single, { namespace, distinct: true }), namespace);
    }
    assert.equal(await countRows(sharded, { distinct: true }), distinct);

    // Curves: every namespace, by day, early buckets, pooled releases; equal to one node.
    for (const filter of [{}, { namespace: 'live', byDay: true }, { namespace: 'live', buckets: 'early' as const }, { byRelease: false, side: 'item' as const }]) {
      assertSameCurves(await queryCurves(sharded, filter), await queryCurves(single, filter), JSON.stringify(filter));
    }
    // ... and to the reference over the latest copy of each event.
    const latest = [...live.slice(0, 600), ...rescored, ...live.slice(900)];
    const ref = referenceCurves(latest);
    const curves = await queryCurves(sharded, { namespace: 'live' });
    assert.equal(curves.length, ref.size);
    for (const c of curves) {
      const r = ref.get(curveKey(c));
      assert.ok(r !== undefined, curveKey(c));
      assert.equal(c.n, r.n, curveKey(c));
      if (!Number.isNaN(r.auc)) assert.ok(Math.abs(c.auc - r.auc) < 1e-9, `${curveKey(c)} auc ${c.auc} vs ${r.auc}`);
    }

    // `thaw curves` / `thaw replay --drop` wiring: the config opens the Distributed table and the shards.
    const cfg = clickhouseSchema.parse({ url: shards.shardUrls[1], database, cluster: shards.cluster, shardUrls: shards.shardUrls });
    const target = openSqlTarget(cfg);
    const singleTarget = openSqlTarget(clickhouseSchema.parse({ url: SINGLE_URL, database }));
    cleanups.push(
      () => target.close(),
      () => singleTarget.close(),
    );
    assertSameCurves(await queryCurves(target, {}), await queryCurves(singleTarget, {}), 'through shard 2');
    const liveBefore = await queryCurves(target, { namespace: 'live' });
    await dropNamespaceRows(target, 'replay-a');
    await dropNamespaceRows(singleTarget, 'replay-a');
    assert.equal(await countRows(target, { namespace: 'replay-a' }), 0, 'replay rows dropped on every shard');
    assert.equal(await countRows(target, { namespace: 'live', distinct: true }), live.length, 'live untouched');
    assert.deepEqual(await queryCurves(target, { namespace: 'replay-a' }), []);
    assertSameCurves(await queryCurves(target, {}), await queryCurves(singleTarget, {}), 'after the drop');
    assertSameCurves(await queryCurves(target, {}), liveBefore, 'live after the drop');
  });

  void test('the shards de-duplicate on their own: copies of an event must share a shard', async () => {
    // Copies of the same rows written straight into both local tables (what a sharding key that
    // splits an event's copies would do): the sharded queries count them once per shard, a merge
    // on the initiator once. So the per-shard de-duplication is in effect, and it is the sharding
    // key (checked above: no event on two shards) that makes it exact.
    const database = newDb();
    const sharded = await shardedSink(database);
    await sharded.ensureSchema();
    const rows = syntheticRows(200, 'split', 5);
    for (const url of shards.shardUrls) {
      const local = new ClickHouseSink({ url, database, table: localTableName(TABLE), spoolDir: await spoolDir() });
      await local.write(rows);
      await local.close();
    }
    assert.equal(await countRows(sharded, { namespace: 'split', distinct: true }), 2 * rows.length);
    const merged: CurveSource = { database, table: TABLE, query: (sql) => sharded.query(sql) };
    assert.equal(await countRows(merged, { namespace: 'split', distinct: true }), rows.length);
  });

  void test('a shard down: writes are spooled and replayed once it is back, nothing lost', async () => {
    const database = newDb();
    const sharded = await shardedSink(database);
    await sharded.ensureSchema();
    const rows = syntheticRows(1000, 'outage', 9);
    await sharded.write(rows.slice(0, 500));
    shards.killShard(2);
    // The Distributed insert fails part-way (shard 1 stores its rows, shard 2 refuses the
    // connection): an outage, so the rows go to the spool and write resolves.
    await sharded.write(rows.slice(500));
    assert.ok((await sharded.spooledBytes()) > 0, 'rows spooled while shard 2 is down');
    await shards.sh('up'); // starts shard 2 again (shard 1 is left running)
    await sharded.flush();
    assert.equal(await sharded.spooledBytes(), 0);
    assert.equal(await countRows(sharded, { namespace: 'outage', distinct: true }), rows.length);
    const ref = referenceCurves(rows);
    for (const c of await queryCurves(sharded, { namespace: 'outage' })) assert.equal(c.n, ref.get(curveKey(c))?.n, curveKey(c));
  });

  void test('the layout is checked at start', async () => {
    const database = newDb();
    const [s1, s2] = shards.shardUrls;
    assert.ok(s1 !== undefined && s2 !== undefined);
    const refused = async (sink: ClickHouseSink, key: string, pattern: RegExp): Promise<void> => {
      await assert.rejects(sink.ensureSchema(), (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.equal(err.key, key);
        assert.match(err.message, pattern);
        return true;
      });
    };
    await refused(await shardedSink(database, [s1]), 'clickhouse.shardUrls', /no URL given for shard\/replica 2\/1/);
    await refused(await shardedSink(database, [s1, SINGLE_URL]), 'clickhouse.shardUrls', /not a host of cluster/);
    await refused(await shardedSink(database, [s1, s2], 'no_such_cluster'), 'clickhouse.cluster', /not in the remote_servers/);
    // A single-node table of the same name on a shard is not silently written as if distributed.
    const shard2 = new HttpSqlTarget({ url: s2, database, table: TABLE });
    cleanups.push(() => shard2.close());
    await shard2.command(createDatabaseSql(database));
    await shard2.command(createPredictionsTableSql(database, TABLE));
    await refused(await shardedSink(database), 'clickhouse.table', /ReplacingMergeTree.*expected Distributed/);
  });
});
