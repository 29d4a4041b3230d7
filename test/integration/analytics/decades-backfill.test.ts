/**
 * Issue 11 item 10: a backfill whose events span decades. With the table partitioned by month, every
 * insert of a 22-year replay wrote a part per month it touched (641 parts), and the curve queries
 * with FINAL over them failed at the server's memory limit. Here 3,000 rows spread over 30 years are
 * written in ten inserts, each spanning all 30 years, plus redeliveries: on the ClickHouse server and
 * on chDB the curves equal the TypeScript reference over the distinct rows, and the table holds one
 * partition with at most one part per insert.
 */
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
import { countRows } from '../../../analytics/namespaces.js';
import { sqlString } from '../../../analytics/sql.js';
import type { PredictionRow } from '../../../analytics/types.js';
import { curveKey, referenceCurves, syntheticRows } from './fixtures.js';

const URL_ = process.env.THAW_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123';
const N = 3000;
const INSERTS = 10;
const YEAR_MS = 365.25 * 86_400_000;
const cleanups: (() => Promise<unknown>)[] = [];

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

/** Rows of the fixture, re-timed so that they spread evenly over 30 years from 1996. */
function decadesRows(namespace: string): PredictionRow[] {
  const t0 = Date.UTC(1996, 0, 1);
  return syntheticRows(N, namespace, 23).map((r, i) => ({ ...r, eventTimeMs: t0 + Math.floor(((i * 7919) % N) * ((30 * YEAR_MS) / N)) }));
}

async function partsOf(sink: ChdbSink | ClickHouseSink): Promise<{ parts: number; partitions: number }> {
  const rows = await sink.query(
    `SELECT count() AS parts, uniqExact(partition) AS partitions FROM system.parts WHERE database = ${sqlString(sink.database)} AND table = ${sqlString(sink.table)} AND active`,
  );
  return { parts: Number(rows[0]?.parts), partitions: Number(rows[0]?.partitions) };
}

async function check(sink: ChdbSink | ClickHouseSink, engine: string): Promise<void> {
  await sink.ensureSchema();
  const rows = decadesRows('decades');
  const years = new Set(rows.map((r) => new Date(r.eventTimeMs).getUTCFullYear()));
  assert.ok(years.size >= 30, `rows span ${years.size} years`);
  // Ten inserts, each spanning the 30 years (a shuffled replay), then 500 redeliveries.
  for (let i = 0; i < INSERTS; i++) {
    await sink.write(rows.filter((_, k) => k % INSERTS === i));
    await sink.flush();
  }
  await sink.write(rows.slice(0, 500));
  await sink.flush();

  const { parts, partitions } = await partsOf(sink);
  assert.equal(partitions, 1, `${engine}: one partition per namespace, not one per month`);
  assert.ok(parts <= INSERTS + 1, `${engine}: at most one part per insert, got ${parts}`);
  assert.equal(await countRows(sink, { distinct: true }), N, `${engine}: redeliveries count once`);

  const curves = await queryCurves(sink, { namespace: 'decades' });
  const ref = referenceCurves(rows);
  assert.equal(curves.length, ref.size, engine);
  for (const c of curves) {
    const r = ref.get(curveKey(c));
    assert.ok(r, `${engine}: ${curveKey(c)}`);
    assert.equal(c.n, r.n, `${engine}: ${curveKey(c)} n`);
    assert.ok(Math.abs(c.ctr - r.ctr) < 1e-12, `${engine}: ${curveKey(c)} ctr`);
    assert.ok(Math.abs(c.logLoss - r.logLoss) < 1e-6, `${engine}: ${curveKey(c)} log loss`);
    if (Number.isNaN(r.auc)) assert.ok(Number.isNaN(c.auc));
    else assert.ok(Math.abs(c.auc - r.auc) < 1e-9, `${engine}: ${curveKey(c)} auc ${c.auc} vs ${r.auc}`);
  }
  // An event-time window over the old years counts exactly its rows.
  const since = Date.UTC(2000, 0, 1);
  const until = Date.UTC(2010, 0, 1);
  const windowed = await queryCurves(sink, { namespace: 'decades', since, until });
  assert.equal(
    windowed.reduce((s, c) => s + c.n, 0),
    rows.filter((r) => r.eventTimeMs >= since && r.eventTimeMs < until).length,
    `${engine}: window`,
  );
}

void describe('predictions table after a backfill spanning 30 years', () => {
  void test('ClickHouse server: exact curves, one partition, parts bounded by the inserts', async () => {
    const database = `thaw_test_${randomUUID().replace(/-/g, '')}`;
    const spoolDir = await mkdtemp(join(tmpdir(), 'thaw-spool-'));
    const admin = createClient({ url: URL_, log: { level: ClickHouseLogLevel.OFF } });
    const server = new ClickHouseSink({ url: URL_, database, table: 'predictions', spoolDir });
    cleanups.push(async () => {
      await server.close();
      await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
      await admin.close();
      await rm(spoolDir, { recursive: true, force: true });
    });
    await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
    await check(server, 'server');
  });

  void test('chDB: the same', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'thaw-chdb-'));
    const chdb = new ChdbSink({ dataDir, database: 'thaw', table: 'predictions' });
    cleanups.push(async () => {
      await chdb.close();
      await rm(dataDir, { recursive: true, force: true });
    });
    await check(chdb, 'chdb');
  });
});
