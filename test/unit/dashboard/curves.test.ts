import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CurvesView, seriesBySide } from '../../../dashboard/curves.js';
import { BUCKETS, type CurveRow } from '../../../analytics/types.js';

function row(side: 'item' | 'user', adapter: string, release: string, bucket: (typeof BUCKETS)[number], auc: number, n = 10): CurveRow {
  return { adapter, side, release, namespace: 'live', bucket, n, ctr: 0.3, auc, logLoss: 0.6 };
}

void test('seriesBySide: one series per (adapter, release) and side, none after its adapter with its hue dashed, NaN AUC as null', () => {
  const rows = [row('item', 'none', 'fm/1', '0', 0.5), row('item', 'fm-adagrad', 'fm/1', '0', 0.6, 12), row('item', 'fm-adagrad', 'fm/1', '1-2', NaN), row('user', 'fm-adagrad', 'fm/1', '0', 0.7)];
  const { item, user } = seriesBySide(rows);
  assert.deepEqual(
    item.map((s) => s.label),
    ['fm-adagrad (fm/1)', 'none (fm/1)'],
  );
  assert.equal(item[1]?.color, item[0]?.color);
  assert.deepEqual([item[0]?.dash, item[1]?.dash], [false, true]);
  assert.equal(user[0]?.color, item[0]?.color, 'one colour per adapter on both sides');
  assert.deepEqual(item[0]?.auc.slice(0, 3), [0.6, null, null]);
  assert.deepEqual(item[0]?.n.slice(0, 2), [12, 10]);
  assert.equal(item[0]?.auc.length, BUCKETS.length);
});

void test('CurvesView: a failing query is reported, not thrown; a result is reused for refreshMs; days listed', async () => {
  let now = 0;
  let calls = 0;
  let fail = true;
  const source = {
    query: (sql: string): Promise<Record<string, unknown>[]> => {
      calls++;
      if (fail) return Promise.reject(new Error('connection refused'));
      const day = /\bday\b/.test(sql) && sql.includes('GROUP BY adapter, side, release, namespace, bucket, day');
      return Promise.resolve([
        { adapter: 'fm-adagrad', side: 'item', release: 'fm/1', namespace: 'live', bucket: '0', n: 5, ctr: 0.2, auc: 0.7, log_loss: 0.5, ...(day ? { day: '2026-12-01' } : {}) },
      ]);
    },
  };
  const view = new CurvesView({ source, namespaces: ['live'], refreshMs: 1000, clock: () => now });
  const down = await view.get();
  assert.match(down.error ?? '', /connection refused/);
  assert.deepEqual(down.sides, { item: [], user: [] });
  fail = false;
  const up = await view.get();
  assert.equal(up.error, null);
  assert.equal(up.sides.item.length, 1);
  assert.deepEqual(up.days, ['2026-12-01']);
  assert.equal((await view.get('2026-12-01')).sides.item.length, 1);
  assert.equal((await view.get('2026-12-02')).sides.item.length, 0);
  const before = calls;
  now = 999;
  await view.get();
  assert.equal(calls, before);
  now = 1000;
  await view.get();
  assert.equal(calls, before + 2);
});
