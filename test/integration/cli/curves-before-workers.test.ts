/**
 * Issue 16, README as written: the production quick start starts the workers in the background and
 * runs `thaw curves` at once. Before the first worker created the prediction table, curves failed
 * with a ClickHouse "Table ... doesn't exist" error and exit 1, which stops a pasted script. It now
 * says that nothing was logged yet, names the table, and exits 0, like an empty table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cliHarness } from './cli-harness.js';

void test('thaw curves before any worker created the prediction table: no predictions yet, exit 0', { timeout: 60_000 }, async () => {
  const h = cliHarness('curves-early');
  const text = await h.thaw('curves');
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`no predictions logged yet: table thaw\\.${h.table} does not exist`));
  const json = await h.thaw('curves', '--json');
  assert.equal(json.code, 0, json.stderr);
  assert.deepStrictEqual(JSON.parse(json.stdout), { curves: [] });
  assert.match(json.stderr, /does not exist/);
  // A ClickHouse that cannot be reached still fails.
  const down = await h.start(['curves'], { THAW_CLICKHOUSE_URL: 'http://127.0.0.1:1' }).done;
  assert.notEqual(down.code, 0);
});
