/**
 * `thaw curves --since/--until` on the real ClickHouse server: the command counts exactly the
 * events of the event-time window (since inclusive, until exclusive), as the prediction rows say.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, ClickHouseLogLevel } from '@clickhouse/client';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import type { CurveJson } from '../../../cli/curve-json.js';
import { main } from '../../../cli/main.js';
import { syntheticRows } from './fixtures.js';

const URL_ = process.env.THAW_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123';
const database = `thaw_test_${randomUUID().replace(/-/g, '')}`;
const table = `p_${randomUUID().replace(/-/g, '')}`;
const admin = createClient({ url: URL_, log: { level: ClickHouseLogLevel.OFF } });

/** Runs `thaw curves --json` on this test's table; the events counted, summed over the curves. */
async function curvesEvents(args: string[]): Promise<number> {
  let out = '';
  let err = '';
  const code = await main(['curves', '--namespace', 'win', '--json', '--log-level', 'silent', ...args], {
    stdout: { write: (s: string) => ((out += s), true) },
    stderr: { write: (s: string) => ((err += s), true) },
    env: { THAW_CLICKHOUSE_URL: URL_, THAW_CLICKHOUSE_DATABASE: database, THAW_CLICKHOUSE_TABLE: table },
  });
  assert.equal(code, 0, err);
  return (JSON.parse(out) as { curves: CurveJson[] }).curves.reduce((sum, c) => sum + c.n, 0);
}

describe('thaw curves --since/--until against ClickHouse', () => {
  // 20,000 rows one minute apart from 2026-01-01T00:00Z (fixtures.ts), so about two weeks.
  const rows = syntheticRows(20_000, 'win', 7);
  let spool: string;
  before(async () => {
    spool = await mkdtemp(join(tmpdir(), 'thaw-spool-'));
    await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` });
    const sink = new ClickHouseSink({ url: URL_, database, table, spoolDir: spool });
    try {
      await sink.ensureSchema();
      await sink.write(rows);
      await sink.flush();
    } finally {
      await sink.close();
    }
  });
  after(async () => {
    await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await admin.close();
    await rm(spool, { recursive: true, force: true });
  });

  it('counts exactly the events of the window', async () => {
    const t0 = Date.UTC(2026, 0, 1);
    const day = 86_400_000;
    const inWindow = (since: number, until: number): number => rows.filter((r) => r.eventTimeMs >= since && r.eventTimeMs < until).length;
    assert.equal(await curvesEvents([]), rows.length);
    // ISO with a zone and unix ms mix; the event at exactly --until is left out, the one at --since kept.
    assert.equal(await curvesEvents(['--since', '2026-01-02T00:00:00Z', '--until', String(t0 + 3 * day)]), inWindow(t0 + day, t0 + 3 * day));
    assert.equal(inWindow(t0 + day, t0 + 3 * day), 2 * 1440);
    assert.equal(await curvesEvents(['--since', '2026-01-02T01:00:00+01:00', '--until', '2026-01-02T00:01:00Z']), 1);
    assert.equal(await curvesEvents(['--since', String(t0 + 10 * day)]), inWindow(t0 + 10 * day, Infinity));
    assert.equal(await curvesEvents(['--until', '2026-01-01T12:00:00Z']), 720);
  });
});
