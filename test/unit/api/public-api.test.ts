// The package's public API (package.json "exports" → api/index.ts): it loads, and names the parts a
// library user builds on. test/integration/docs/readme-blocks.test.ts imports it by package name from
// the built tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as thaw from '../../../api/index.js';

void test('public API: the stream processors, the worker, state and releases, analytics, serving and errors load', () => {
  for (const name of [
    'EventProducer',
    'ImpressionClickJoin',
    'Rekeyer',
    'AdaptationWorker',
    'RedisEntityStore',
    'CachedEntityStore',
    'ReleaseStore',
    'ClickHouseSink',
    'ChdbSink',
    'queryCurves',
    'startScoringServer',
    'ThawError',
    'encodeLabelled',
    'decodeLabelled',
    'createAdapter',
  ] as const) {
    assert.equal(typeof thaw[name], 'function', name);
  }
  assert.deepStrictEqual([...thaw.SIDES].sort(), ['item', 'user']);
  const e = new thaw.ThawError('CONFIG_INVALID', 'x');
  assert.equal(e.code, 'CONFIG_INVALID');
});
