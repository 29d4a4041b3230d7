// All chDB work of the analytics tests lives in this file: libchdb binds one data directory per process.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, ClickHouseLogLevel } from '@clickhouse/client';
import { ChdbSink } from '../../../analytics/chdb-sink.js';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import { queryCurves } from '../../../analytics/curves.js';
import { countRows, dropNamespaceRows } from '../../../analytics/namespaces.js';
import { ThawError } from '../../../lib/errors.js';
import { curveKey, referenceCurves, syntheticRows } from './fixtures.js';

const URL_ = process.env.THAW_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123';
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

void describe('ChdbSink', () => {
  void test('same rows give the same curves on chDB and on the ClickHouse server', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'thaw-chdb-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const chdb = new ChdbSink({ dataDir, database: 'thaw', table: 'predictions' });
    cleanups.push(() => chdb.close());
    const database = `thaw_test_${randomUUID().replace(/-/g, '')}`;
    const spoolDir = await mkdtemp(join(tmpdir(), 'thaw-spool-'));
    cleanups.push(() => rm(spoolDir, { recursive: true, force: true }));
    const server = new ClickHouseSink({ url: URL_, database, spoolDir });
    cleanups.push(async () => {
      const admin = createClient({ url: URL_, log: { level: ClickHouseLogLevel.OFF } });
      await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
      await admin.close();
      await server.close();
    });

    await chdb.ensureSchema();
    await server.ensureSchema();
    const rows = syntheticRows(20_000, 'ns', 11);
    const tied = syntheticRows(2_000, 'ns-ties', 12).map((r) => ({ ...r, eventId: `t-${r.eventId}`, score: Math.fround(Math.round(r.score * 10) / 10) }));
    for (const sink of [chdb, server]) {
      await sink.write(rows);
      await sink.write(rows.slice(0, 2_000)); // redelivered
      await sink.write(tied);
      await sink.flush();
    }
    assert.equal(await countRows(chdb), 24_000);
    assert.equal(await countRows(chdb, { distinct: true }), 22_000);

    const fromChdb = await queryCurves(chdb, { byDay: false });
    const fromServer = await queryCurves(server);
    assert.equal(fromChdb.length, fromServer.length);
    fromChdb.forEach((c, i) => {
      const s = fromServer[i];
      assert.ok(s);
      assert.deepEqual([c.adapter, c.side, c.release, c.namespace, c.bucket, c.n], [s.adapter, s.side, s.release, s.namespace, s.bucket, s.n]);
      for (const k of ['ctr', 'auc', 'logLoss'] as const) {
        if (Number.isNaN(s[k])) assert.ok(Number.isNaN(c[k]));
        else assert.ok(Math.abs(c[k] - s[k]) < 1e-9, `${curveKey(c)} ${k}: chdb ${c[k]} server ${s[k]}`);
      }
    });
    const ref = referenceCurves(rows);
    for (const c of fromChdb.filter((x) => x.namespace === 'ns')) {
      const r = ref.get(curveKey(c));
      assert.ok(r);
      if (!Number.isNaN(r.auc)) assert.ok(Math.abs(c.auc - r.auc) < 1e-6);
    }

    await dropNamespaceRows(chdb, 'ns-ties');
    assert.equal(await countRows(chdb, { namespace: 'ns-ties' }), 0);
    assert.equal(await countRows(chdb, { distinct: true }), 20_000);

    await assert.rejects(chdb.write([{ ...rows[0]!, side: 'both' as 'user' }]), (e: unknown) => e instanceof ThawError && e.code === 'VALIDATION_FAILED');
    await chdb.close();
    await assert.rejects(chdb.write(rows.slice(0, 1)), (e: unknown) => e instanceof ThawError && e.code === 'LIFECYCLE');
  });
});
