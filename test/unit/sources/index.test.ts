import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSource, parseSourceSpec } from '../../../sources/index.js';
import { ConfigError } from '../../../lib/errors.js';

void test('parseSourceSpec reads the CLI forms', () => {
  assert.deepEqual(parseSourceSpec('synthetic'), { kind: 'synthetic' });
  assert.deepEqual(parseSourceSpec('synthetic:events=200_000,seed=7,drift=0.2'), { kind: 'synthetic', events: 200_000, seed: 7, drift: 0.2 });
  assert.deepEqual(parseSourceSpec('ml100k:/data/ml-100k'), { kind: 'ml100k', dir: '/data/ml-100k' });
  assert.deepEqual(parseSourceSpec('ml1m:/d'), { kind: 'ml1m', dir: '/d' });
  assert.deepEqual(parseSourceSpec('csv:/a/b:c.csv'), { kind: 'csv', path: '/a/b:c.csv' });
  assert.deepEqual(parseSourceSpec('jsonl:x.jsonl'), { kind: 'jsonl', path: 'x.jsonl' });
});

void test('parseSourceSpec rejects bad input naming the key', () => {
  const key = (text: string, k: string): void =>
    assert.throws(
      () => parseSourceSpec(text),
      (e: unknown) => e instanceof ConfigError && e.key === k,
      text,
    );
  key('synthetic:evnts=5', 'source.synthetic.evnts');
  key('synthetic:events=many', 'source.synthetic.events');
  key('synthetic:events', 'source.synthetic.events');
  key('kafka:topic', 'source');
  key('ml100k', 'source');
  key('csv:', 'source');
});

void test('openSource streams a synthetic spec', async () => {
  let n = 0;
  for await (const e of openSource(parseSourceSpec('synthetic:events=100,seed=3,users=20,items=10'))) {
    assert.equal(e.eventId, `syn-3-${n}`);
    n++;
  }
  assert.equal(n, 100);
});
