import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sqlIdent, sqlSide, sqlString, sqlTable, sqlUInt } from '../../../analytics/sql.js';
import { curveSql, filterSql } from '../../../analytics/curves.js';
import { dropNamespaceSql } from '../../../analytics/namespaces.js';
import { predictionsDdl } from '../../../analytics/ddl.js';
import { ThawError } from '../../../lib/errors.js';

const invalid = (e: unknown): boolean => e instanceof ThawError && e.code === 'SQL_VALUE_INVALID';

void test('identifiers: plain names pass, anything else is refused', () => {
  assert.equal(sqlIdent('predictions'), 'predictions');
  assert.equal(sqlIdent('_p1'), '_p1');
  assert.equal(sqlTable('thaw', 'p_2'), 'thaw.p_2');
  for (const bad of ['', '1abc', 'a-b', 'a.b', 'a b', 'x;DROP TABLE y', '`x`', 'ä', 'a'.repeat(65), 42, null, undefined]) {
    assert.throws(() => sqlIdent(bad), invalid, String(bad));
  }
});

void test('string literals are escaped; control characters and non-strings are refused', () => {
  assert.equal(sqlString('plain'), "'plain'");
  assert.equal(sqlString("o'brien"), "'o\\'brien'");
  assert.equal(sqlString('back\\slash'), "'back\\\\slash'");
  assert.equal(sqlString("\\'"), "'\\\\\\''");
  for (const bad of ['a\u0000b', 'line\nbreak', 'tab\t', 'x'.repeat(257), 5, null]) assert.throws(() => sqlString(bad), invalid);
});

void test('side is whitelisted and numbers must be non-negative safe integers', () => {
  assert.equal(sqlSide('user'), "'user'");
  assert.throws(() => sqlSide("user' OR 1=1 --"), invalid);
  assert.equal(sqlUInt(1700000000000), '1700000000000');
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 60, '5']) assert.throws(() => sqlUInt(bad), invalid);
});

void test('curveSql and friends refuse bad identifiers and filter values', () => {
  assert.throws(() => curveSql({ table: 'p; DROP DATABASE thaw' }), invalid);
  assert.throws(() => curveSql({ database: 'a.b' }), invalid);
  assert.throws(() => curveSql({ namespace: 'ns\u0000' }), invalid);
  assert.throws(() => curveSql({ namespace: [] }), invalid);
  assert.throws(() => curveSql({ side: 'both' as 'user' }), invalid);
  assert.throws(() => curveSql({ since: -5 }), invalid);
  assert.throws(() => curveSql({ until: new Date(NaN) }), invalid);
  assert.throws(() => dropNamespaceSql('thaw', 'predictions', 'x\ny'), invalid);
  assert.throws(() => predictionsDdl('thaw', 'bad-name'), invalid);
});

void test('filters become validated literals', () => {
  assert.equal(filterSql({}), '');
  assert.equal(
    filterSql({ namespace: "it's", adapter: ['a', 'b'], side: 'item', release: 'r1', since: 10, until: new Date(20) }),
    "WHERE namespace IN ('it\\'s') AND adapter IN ('a', 'b') AND release IN ('r1') AND side = 'item' AND event_time_ms >= 10 AND event_time_ms < 20",
  );
  assert.equal(dropNamespaceSql('thaw', 'predictions', "a'b"), "ALTER TABLE thaw.predictions DELETE WHERE namespace = 'a\\'b'");
  const sql = curveSql({ database: 'd', table: 't', byDay: true });
  assert.match(sql, /FROM d\.t\n/);
  assert.doesNotMatch(sql, /\bFINAL\b/);
  assert.doesNotMatch(sql, /LIMIT 1 BY/);
  assert.match(sql, /GROUP BY adapter, side, release, namespace, bucket, day\n/);
  assert.doesNotMatch(curveSql(), /\bday\n/);
});
