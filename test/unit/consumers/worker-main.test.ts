import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseWorkerMainOptions } from '../../../consumers/worker-main.js';
import { ConfigError } from '../../../lib/errors.js';

const minimal = {
  kafka: { brokers: ['127.0.0.1:19092'] },
  redis: { url: 'redis://127.0.0.1:16379' },
  clickhouse: { url: 'http://127.0.0.1:18123', spoolDir: '/tmp/spool' },
  side: 'item',
  model: { buckets: 1024, k: 4 },
};

describe('worker-main options', () => {
  it('parses JSON from argv with defaults filled in', () => {
    const o = parseWorkerMainOptions(JSON.stringify(minimal), {});
    assert.equal(o.adapter, 'fm-adagrad');
    assert.equal(o.namespace, 'live');
    assert.equal(o.fromBeginning, true);
    assert.equal(o.metricsPort, 0);
    assert.equal(o.redis.keyPrefix, 'thaw');
    assert.deepEqual(o.model, { buckets: 1024, k: 4, seed: 1 });
  });

  it('reads @file and the THAW_WORKER_OPTIONS env', () => {
    const dir = mkdtempSync(join(tmpdir(), 'thaw-wm-'));
    try {
      const file = join(dir, 'o.json');
      writeFileSync(file, JSON.stringify({ ...minimal, side: 'user' }));
      assert.equal(parseWorkerMainOptions(`@${file}`, {}).side, 'user');
      assert.equal(parseWorkerMainOptions(undefined, { THAW_WORKER_OPTIONS: JSON.stringify(minimal) }).side, 'item');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad options with a ConfigError naming the key', () => {
    const bad = (raw: string | undefined, key: string): void =>
      assert.throws(
        () => parseWorkerMainOptions(raw, {}),
        (e: unknown) => e instanceof ConfigError && e.key === key,
        key,
      );
    bad(undefined, 'options');
    bad('{not json', 'options');
    bad(JSON.stringify({ ...minimal, side: 'both' }), 'side');
    bad(JSON.stringify({ ...minimal, metricsPort: 70000 }), 'metricsPort');
    bad(JSON.stringify({ ...minimal, sessionTimeoutMs: 100 }), 'sessionTimeoutMs');
    bad(JSON.stringify({ ...minimal, kafka: { brokers: [] } }), 'kafka.brokers');
    bad(JSON.stringify({ ...minimal, surprise: 1 }), 'options');
  });
});
