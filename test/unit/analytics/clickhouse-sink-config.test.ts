import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import { ChdbSink } from '../../../analytics/chdb-sink.js';
import { isTransientClickHouseError, serverErrorCode, wrapClickHouseError } from '../../../analytics/clickhouse-errors.js';
import { ConfigError } from '../../../lib/errors.js';

void test('outage vs refusal: 18.16 error text, ClickHouseError codes, socket errors', () => {
  const refused = new Error("Code: 60, e.displayText() = DB::Exception: Table x.y doesn't exist., e.what() = DB::Exception");
  assert.equal(serverErrorCode(refused), 60);
  assert.equal(isTransientClickHouseError(refused), false);
  assert.equal(isTransientClickHouseError(new Error('Code: 252, e.displayText() = DB::Exception: Too many parts')), true);
  assert.equal(isTransientClickHouseError(Object.assign(new Error('x'), { code: '241' })), true);
  assert.equal(isTransientClickHouseError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })), true);
  assert.equal(isTransientClickHouseError(new Error('Timeout error.')), true);
  const wrapped = wrapClickHouseError('insert', new Error('failed for http://bob:s3cret@host:8123/\nsecond line'));
  assert.equal(wrapped.code, 'CLICKHOUSE_ERROR');
  assert.ok(!wrapped.message.includes('s3cret') && !wrapped.message.includes('second line'));
});

void test('bad options are refused naming the key, without echoing credentials', async () => {
  const spoolDir = await mkdtemp(join(tmpdir(), 'thaw-cfg-'));
  try {
    const cases: [Record<string, unknown>, string][] = [
      [{ url: 'not a url :pw@' }, 'url'],
      [{ url: 'ftp://h' }, 'url'],
      [{ database: 'a-b' }, 'database'],
      [{ table: 'x;y' }, 'table'],
      [{ maxBatchRows: 0 }, 'maxBatchRows'],
      [{ requestTimeoutMs: 1.5 }, 'requestTimeoutMs'],
      [{ spoolDir: '' }, 'spoolDir'],
    ];
    for (const [over, key] of cases) {
      assert.throws(
        () => new ClickHouseSink({ url: 'http://127.0.0.1:1', spoolDir, ...over }),
        (e: unknown) => e instanceof ConfigError && e.key === key && !e.message.includes('pw@'),
        key,
      );
    }
    assert.throws(() => new ChdbSink({ dataDir: '' }), { key: 'dataDir' });
    assert.throws(() => new ChdbSink({ dataDir: spoolDir, table: '1x' }), { key: 'table' });
    const ok = new ClickHouseSink({ url: 'http://u:p@127.0.0.1:1', spoolDir });
    assert.equal(ok.database, 'thaw');
    assert.equal(ok.table, 'predictions');
    await ok.close();
  } finally {
    await rm(spoolDir, { recursive: true, force: true });
  }
});
