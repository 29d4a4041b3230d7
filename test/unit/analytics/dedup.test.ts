import { test } from 'node:test';
import assert from 'node:assert/strict';
import { curveSql } from '../../../analytics/curves.js';
import { DEDUP_KEY, latestRowsSql } from '../../../analytics/dedup.js';
import { predictionsDdl } from '../../../analytics/ddl.js';

// Issue 11 item 10: FINAL over a table with hundreds of parts ran out of memory after a backfill.
void test('the curve queries de-duplicate with a GROUP BY on the key, never FINAL', () => {
  for (const filter of [{}, { byDay: true }, { namespace: 'ns', since: 0, until: 1 }, { buckets: 'early' as const, byRelease: false }]) {
    const sql = curveSql(filter);
    assert.doesNotMatch(sql, /\bFINAL\b/i);
    assert.match(sql, new RegExp(`GROUP BY ${DEDUP_KEY.join(', ')}`));
    assert.match(sql, /max_bytes_before_external_group_by = \d+/);
  }
});

void test('latestRowsSql keeps the latest inserted copy under names that do not shadow the columns', () => {
  const sql = latestRowsSql('db.t', "WHERE namespace = 'a'", ['score', 'label']);
  assert.equal(
    sql,
    "SELECT namespace, adapter, side, event_id, argMax(score, inserted_at) AS latest_score, argMax(label, inserted_at) AS latest_label\nFROM db.t WHERE namespace = 'a'\nGROUP BY namespace, adapter, side, event_id",
  );
});

void test('the table is partitioned by namespace (a key column), not by event time', () => {
  const ddl = predictionsDdl().join('\n');
  assert.match(ddl, /PARTITION BY namespace\n/);
  assert.doesNotMatch(ddl, /toYYYYMM|toYear/);
});
