/**
 * Issue 11 items 5 and 8: `thaw run --drain-timeout-ms` and `--session-timeout-ms` are typed,
 * validated (exit 2 naming the key) and documented with their unit and default.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { heartbeatIntervalFor } from '../../../cli/commands/run.js';
import { runSpec } from '../../../config/commands/run.js';
import { describeField } from '../../../config/describe.js';
import { loadConfig } from '../../../config/load.js';
import { ConfigError } from '../../../lib/errors.js';

const load = (...argv: string[]) => loadConfig(runSpec, ['item', ...argv], { env: {} }).config;
const refused = (key: string, ...argv: string[]): void =>
  assert.throws(
    () => load(...argv),
    (e: unknown) => e instanceof ConfigError && e.key === key,
    argv.join(' '),
  );

describe('thaw run deadlines', () => {
  it('defaults: drain 30 s, session 8 s with heartbeats every 0.8 s', () => {
    const c = load();
    assert.equal(c.drainTimeoutMs, 30_000);
    assert.equal(c.sessionTimeoutMs, 8_000);
    assert.equal(heartbeatIntervalFor(c.sessionTimeoutMs), 800);
    assert.equal(heartbeatIntervalFor(6_000) * 3 <= 6_000, true, 'kafkajs needs heartbeats within a third of the session');
  });

  it('takes valid values', () => {
    const c = load('--drain-timeout-ms', '5000', '--session-timeout-ms', '45000');
    assert.equal(c.drainTimeoutMs, 5_000);
    assert.equal(c.sessionTimeoutMs, 45_000);
  });

  it('refuses bad values naming the key', () => {
    refused('drainTimeoutMs', '--drain-timeout-ms', '0');
    refused('drainTimeoutMs', '--drain-timeout-ms', '1.5');
    refused('drainTimeoutMs', '--drain-timeout-ms', 'soon');
    refused('drainTimeoutMs', '--drain-timeout-ms', '7200000');
    refused('sessionTimeoutMs', '--session-timeout-ms', '1000');
    refused('sessionTimeoutMs', '--session-timeout-ms', '600000');
  });

  it('documents unit and default', () => {
    for (const key of ['drainTimeoutMs', 'sessionTimeoutMs']) {
      const doc = describeField(runSpec.schema, key);
      assert.match(doc.description, /\(ms\)/, key);
      assert.ok(doc.defaultText !== undefined, key);
    }
  });
});
