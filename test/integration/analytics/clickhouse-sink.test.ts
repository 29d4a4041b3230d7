import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, ClickHouseLogLevel } from '@clickhouse/client';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import { queryCurves, type DailyCurveRow } from '../../../analytics/curves.js';
import { countRows, dropNamespaceRows } from '../../../analytics/namespaces.js';
import { ThawError } from '../../../lib/errors.js';
import { curveKey, referenceCurves, syntheticRows } from './fixtures.js';
import { TcpProxy } from './tcp-proxy.js';

const URL_ = process.env.THAW_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123';
const admin = createClient({ url: URL_, log: { level: ClickHouseLogLevel.OFF } });
const database = `thaw_test_${randomUUID().replace(/-/g, '')}`;
const dirs: string[] = [];

async function spoolDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'thaw-spool-'));
  dirs.push(d);
  return d;
}

function uniqueTable(): string {
  return `p_${randomUUID().replace(/-/g, '')}`;
}

before(async () => {
  await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
});

after(async () => {
  await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await admin.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

void describe('ClickHouseSink against ClickHouse server', () => {
  void test('curves match TypeScript Mann-Whitney AUC, log loss and CTR; duplicates count once', async () => {
    const sink = new ClickHouseSink({ url: URL_, database, table: uniqueTable(), spoolDir: await spoolDir(), maxBatchRows: 7_000 });
    try {
      await sink.ensureSchema();
      const rows = syntheticRows(20_000, 'ns-main', 42);
      await sink.write(rows);
      // Redeliveries: the same events again (a replay), in a separate insert.
      await sink.write(rows.slice(0, 3_000));
      await sink.flush();
      assert.equal(await countRows(sink), 23_000);
      assert.equal(await countRows(sink, { distinct: true }), 20_000);

      const curves = await queryCurves(sink, { namespace: 'ns-main' });
      const ref = referenceCurves(rows);
      assert.equal(curves.length, ref.size);
      let compared = 0;
      for (const c of curves) {
        const r = ref.get(curveKey(c));
        assert.ok(r, `unexpected group ${curveKey(c)}`);
        assert.equal(c.n, r.n, curveKey(c));
        assert.ok(Math.abs(c.ctr - r.ctr) < 1e-12, curveKey(c));
        if (Number.isNaN(r.auc)) assert.ok(Number.isNaN(c.auc));
        else assert.ok(Math.abs(c.auc - r.auc) < 1e-6, `${curveKey(c)} auc ${c.auc} vs ${r.auc}`);
        assert.ok(Math.abs(c.logLoss - r.logLoss) < 1e-6, `${curveKey(c)} logloss ${c.logLoss} vs ${r.logLoss}`);
        compared++;
      }
      assert.ok(compared >= 20);
      // The planted warm-up: adapter fm improves from bucket 0 to 51+, 'none' stays near 0.5.
      const fm0 = curves.find((c) => c.adapter === 'fm' && c.side === 'user' && c.bucket === '0');
      const fm51 = curves.find((c) => c.adapter === 'fm' && c.side === 'user' && c.bucket === '51+');
      assert.ok(fm0 && fm51 && fm51.auc > fm0.auc + 0.1, 'planted warm-up visible');

      // Filters and per-day grouping partition the same events.
      const users = await queryCurves(sink, { side: 'user', adapter: ['fm'] });
      assert.ok(users.every((c) => c.side === 'user' && c.adapter === 'fm'));
      assert.equal(
        users.reduce((a, c) => a + c.n, 0),
        rows.filter((r) => r.side === 'user' && r.adapter === 'fm').length,
      );
      const daily = (await queryCurves(sink, { byDay: true })) as DailyCurveRow[];
      assert.ok(daily.every((d) => /^\d{4}-\d{2}-\d{2}$/.test(d.day)));
      assert.equal(
        daily.reduce((a, c) => a + c.n, 0),
        20_000,
      );
      const t0 = Date.UTC(2026, 0, 1);
      const firstDay = await queryCurves(sink, { since: t0, until: new Date(t0 + 86_400_000) });
      assert.equal(
        firstDay.reduce((a, c) => a + c.n, 0),
        1440,
      );
      assert.deepEqual(await queryCurves(sink, { namespace: 'no-such-namespace' }), []);
    } finally {
      await sink.close();
    }
  });

  void test('tied scores get average ranks (ties count one half)', async () => {
    const sink = new ClickHouseSink({ url: URL_, database, table: uniqueTable(), spoolDir: await spoolDir() });
    try {
      await sink.ensureSchema();
      // Scores on a coarse grid: every group is full of ties.
      const rows = syntheticRows(3_000, 'ties', 5).map((r) => ({ ...r, score: Math.fround(Math.round(r.score * 10) / 10) }));
      await sink.write(rows);
      const ref = referenceCurves(rows);
      const curves = await queryCurves(sink);
      assert.equal(curves.length, ref.size);
      for (const c of curves) {
        const r = ref.get(curveKey(c));
        assert.ok(r);
        if (Number.isNaN(r.auc)) assert.ok(Number.isNaN(c.auc));
        else assert.ok(Math.abs(c.auc - r.auc) < 1e-9, `${curveKey(c)} auc ${c.auc} vs ${r.auc}`);
      }
    } finally {
      await sink.close();
    }
  });

  void test('dropNamespaceRows deletes one namespace only', async () => {
    const sink = new ClickHouseSink({ url: URL_, database, table: uniqueTable(), spoolDir: await spoolDir() });
    try {
      await sink.ensureSchema();
      await sink.write(syntheticRows(500, 'keep', 1));
      await sink.write(syntheticRows(300, "back'fill", 2));
      assert.equal(await countRows(sink, { namespace: "back'fill" }), 300);
      await dropNamespaceRows(sink, "back'fill");
      assert.equal(await countRows(sink, { namespace: "back'fill" }), 0);
      assert.equal(await countRows(sink), 500);
    } finally {
      await sink.close();
    }
  });

  void test('every column arrives as written (TabSeparated body: escapes, floats, times)', async () => {
    const sink = new ClickHouseSink({ url: URL_, database, table: uniqueTable(), spoolDir: await spoolDir() });
    try {
      await sink.ensureSchema();
      const rows = [
        {
          eventId: 'tab\there\nnewline\\back\rcr',
          eventTimeMs: 1_704_067_200_123,
          side: 'user' as const,
          entityId: "u'1\\",
          priorCount: 4_000_000_000,
          score: 1e-7,
          label: 1 as const,
          adapter: 'coldnas',
          release: 'r/1',
          namespace: 'n\t1',
        },
        { eventId: 'plain', eventTimeMs: 2 * 86_400_000 + 5, side: 'item' as const, entityId: 'i', priorCount: 0, score: 0.999999, label: 0 as const, adapter: 'none', release: '', namespace: 'n' },
      ];
      await sink.write(rows);
      const got = await sink.query(
        `SELECT event_id, toUInt64(event_time) AS t, event_time_ms, toString(day) AS day, side, entity_id, prior_count, bucket, score, label, adapter, release, namespace FROM ${database}.${sink.table} ORDER BY event_time_ms DESC`,
      );
      assert.equal(got.length, 2);
      const [a, b] = got;
      assert.equal(a?.event_id, rows[0]?.eventId);
      assert.equal(Number(a?.t), 1_704_067_200);
      assert.equal(Number(a?.event_time_ms), 1_704_067_200_123);
      assert.equal(a?.day, '2024-01-01');
      assert.equal(a?.side, 'user');
      assert.equal(a?.entity_id, rows[0]?.entityId);
      assert.equal(Number(a?.prior_count), 4_000_000_000);
      assert.ok(Math.abs(Number(a?.score) - 1e-7) < 1e-12);
      assert.equal(Number(a?.label), 1);
      assert.equal(a?.namespace, 'n\t1');
      assert.equal(b?.event_id, 'plain');
      assert.equal(b?.release, '');
      assert.equal(b?.day, '1970-01-03');
      assert.ok(Math.abs(Number(b?.score) - 0.999999) < 1e-6);
    } finally {
      await sink.close();
    }
  });

  void test('outage: rows spool while the server is unreachable and arrive exactly once afterwards', async () => {
    const target = new URL(URL_);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 8123));
    await proxy.start();
    const dir = await spoolDir();
    const table = uniqueTable();
    const opts = { url: `http://127.0.0.1:${proxy.port}`, database, table, spoolDir: dir, requestTimeoutMs: 3_000, retryInitialMs: 100, retryMaxMs: 400 };
    let sink = new ClickHouseSink(opts);
    try {
      await sink.ensureSchema();
      const rows = syntheticRows(6_000, 'outage', 7);
      await sink.write(rows.slice(0, 1_000)); // server up: straight in
      assert.equal(await sink.spooledBytes(), 0);

      await proxy.stop();
      for (let i = 1_000; i < 3_000; i += 500) await sink.write(rows.slice(i, i + 500)); // resolve: durable in the spool
      assert.ok((await sink.spooledBytes()) > 0, 'rows went to the spool');
      assert.ok((await readdir(dir)).some((f) => f.endsWith('.jsonl')));

      // Still down: a restart of the process keeps the spool (closed sink, new sink on the same directory).
      await sink.close();
      sink = new ClickHouseSink(opts);
      await sink.write(rows.slice(3_000, 4_000)); // appended behind the spooled rows
      const restart = new Promise<void>((resolve, reject) => {
        setTimeout(() => {
          proxy.start().then(resolve, reject);
        }, 1_500);
      });
      await sink.write(rows.slice(4_000, 5_000));
      await restart;
      await sink.write(rows.slice(5_000));
      await sink.flush({ timeoutMs: 30_000 });
      assert.equal(await sink.spooledBytes(), 0);
      assert.equal(await countRows(sink, { namespace: 'outage' }), 6_000, 'every row exactly once');
      assert.equal(await countRows(sink, { namespace: 'outage', distinct: true }), 6_000);
      assert.deepEqual(
        (await readdir(dir)).filter((f) => f.endsWith('.jsonl')),
        [],
      );
    } finally {
      await sink.close();
      await proxy.stop();
    }
  });

  void test('group commit: concurrent writes share inserts, bounded by maxBatchRows; every row exactly once, also through the spool', async () => {
    const target = new URL(URL_);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 8123));
    await proxy.start();
    const opts = { url: `http://127.0.0.1:${proxy.port}`, database, table: uniqueTable(), spoolDir: await spoolDir(), maxBatchRows: 1_000, retryInitialMs: 50, retryMaxMs: 200 };
    const sink = new ClickHouseSink(opts);
    try {
      await sink.ensureSchema();
      const rows = syntheticRows(4_000, 'group', 11);
      // 20 writes of 100 rows at once: the first goes alone, the 19 queued behind it are merged
      // into inserts of at most 1,000 rows (2 more), instead of 19 more.
      const settled: number[] = [];
      await Promise.all(Array.from({ length: 20 }, (_, w) => sink.write(rows.slice(w * 100, (w + 1) * 100)).then(() => void settled.push(w))));
      assert.equal(sink.groupCommits, 3, 'one insert for the first write, two for the 19 queued');
      assert.equal(settled.length, 20);
      assert.equal(await countRows(sink, { namespace: 'group' }), 2_000);
      assert.equal(await countRows(sink, { namespace: 'group', distinct: true }), 2_000);

      // Server down: concurrent writes resolve once spooled (in order), and arrive exactly once later.
      await proxy.stop();
      await Promise.all(Array.from({ length: 10 }, (_, w) => sink.write(rows.slice(2_000 + w * 200, 2_000 + (w + 1) * 200))));
      assert.ok((await sink.spooledBytes()) > 0, 'rows went to the spool');
      await proxy.start();
      await sink.flush({ timeoutMs: 30_000 });
      assert.equal(await countRows(sink, { namespace: 'group' }), 4_000, 'every row exactly once');
      assert.equal(await countRows(sink, { namespace: 'group', distinct: true }), 4_000);
    } finally {
      await sink.close();
      await proxy.stop();
    }
  });

  void test('flush times out with rows still spooled while the server stays down', async () => {
    const proxy = new TcpProxy(new URL(URL_).hostname, Number(new URL(URL_).port || 8123));
    await proxy.start();
    const table = uniqueTable();
    const sink = new ClickHouseSink({ url: `http://127.0.0.1:${proxy.port}`, database, table, spoolDir: await spoolDir(), retryInitialMs: 50, retryMaxMs: 100 });
    try {
      await sink.ensureSchema();
      await proxy.stop();
      await sink.write(syntheticRows(10, 'down', 3));
      await assert.rejects(sink.flush({ timeoutMs: 500 }), (e: unknown) => e instanceof ThawError && e.code === 'CLICKHOUSE_ERROR');
      assert.ok((await sink.spooledBytes()) > 0);
    } finally {
      await sink.close();
      await proxy.stop();
    }
  });

  void test('a refused insert rejects and is not spooled; passwords stay out of errors', async () => {
    const sink = new ClickHouseSink({ url: URL_, database, table: uniqueTable(), spoolDir: await spoolDir() });
    try {
      // No ensureSchema: the table does not exist, which is a refusal, not an outage.
      await assert.rejects(sink.write(syntheticRows(5, 'x', 1)), (e: unknown) => e instanceof ThawError && e.code === 'CLICKHOUSE_ERROR');
      assert.equal(await sink.spooledBytes(), 0);
    } finally {
      await sink.close();
    }
    const secret = 'hunter2-very-secret';
    const u = new URL(URL_);
    u.username = 'nobody';
    u.password = secret;
    const bad = new ClickHouseSink({ url: u.toString(), database, table: uniqueTable(), spoolDir: await spoolDir() });
    try {
      const err = await bad.query('SELECT 1').then(
        () => assert.fail('authentication should fail'),
        (e: unknown) => e,
      );
      // Refused credentials are AUTH_FAILED (not retryable), since issue 11.
      assert.ok(err instanceof ThawError && err.code === 'AUTH_FAILED', String(err));
      assert.ok(!err.message.includes(secret) && !JSON.stringify(err).includes(secret));
    } finally {
      await bad.close();
    }
  });
});
