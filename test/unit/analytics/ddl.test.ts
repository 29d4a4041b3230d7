import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { predictionsDdl, PREDICTION_COLUMNS } from '../../../analytics/ddl.js';
import { bucketSqlExpr, curveSql } from '../../../analytics/curves.js';
import { BUCKETS, bucketOf } from '../../../analytics/types.js';
import { toStoredRow } from '../../../analytics/row-codec.js';

const root = (p: string): string => fileURLToPath(new URL(`../../../${p}`, import.meta.url));
const stripComments = (sql: string): string => sql.replace(/^--.*\n/gm, '');

void test('schemas/clickhouse/predictions.sql is the rendered DDL', async () => {
  const file = stripComments(await readFile(root('schemas/clickhouse/predictions.sql'), 'utf8'));
  assert.equal(file, predictionsDdl().join(';\n\n') + ';\n');
});

void test('schemas/clickhouse/warmup_curve.sql is the rendered curve query', async () => {
  const file = stripComments(await readFile(root('schemas/clickhouse/warmup_curve.sql'), 'utf8'));
  assert.equal(file, curveSql() + ';\n');
});

void test('DDL avoids what ClickHouse 18.16 lacks', () => {
  const ddl = predictionsDdl().join('\n');
  assert.doesNotMatch(ddl, /LowCardinality|DateTime64|CODEC|TTL/);
  for (const c of PREDICTION_COLUMNS) assert.match(ddl, new RegExp(`\\n\\s+${c}\\s`));
});

void test('the SQL bucket expression agrees with bucketOf', () => {
  // Evaluate the multiIf arms in TypeScript: `prior_count <= K, 'label'` pairs, then the default.
  const expr = bucketSqlExpr();
  const arms = [...expr.matchAll(/prior_count <= (\d+), '([^']+)'/g)].map((m) => ({ upper: Number(m[1]), label: m[2] }));
  const fallback = /, '([^']+)'\)$/.exec(expr)?.[1];
  assert.equal(arms.length + 1, BUCKETS.length);
  for (let k = 0; k <= 200; k++) {
    const sqlBucket = arms.find((a) => k <= a.upper)?.label ?? fallback;
    assert.equal(sqlBucket, bucketOf(k), `prior_count ${k}`);
  }
});

void test('stored rows carry every column, UTC day and bucket; bad rows are refused', () => {
  const row = {
    eventId: 'e1',
    eventTimeMs: Date.UTC(2026, 2, 4, 23, 59, 59, 999),
    side: 'item' as const,
    entityId: 'i9',
    priorCount: 4,
    score: 0.25,
    label: 1 as const,
    adapter: 'fm',
    release: 'r',
    namespace: 'n',
  };
  const s = toStoredRow(row, 1234);
  assert.deepEqual(Object.keys(s), [...PREDICTION_COLUMNS]);
  assert.equal(s.day, '2026-03-04');
  assert.equal(s.event_time, Math.floor(row.eventTimeMs / 1000));
  assert.equal(s.bucket, '3-5');
  assert.equal(s.inserted_at, 1234);
  for (const bad of [{ side: 'x' }, { label: 2 }, { score: NaN }, { priorCount: -1 }, { eventTimeMs: 1.5 }, { eventId: '' }]) {
    assert.throws(() => toStoredRow({ ...row, ...bad } as typeof row, 0), { code: 'VALIDATION_FAILED' });
  }
});
