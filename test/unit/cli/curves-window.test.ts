/**
 * `thaw curves --since/--until`: event-time bounds as unix ms or ISO-8601 with a zone, validated at
 * start-up (a bad value names its flag, an empty window names both), and turned into the curve SQL's
 * `event_time_ms >= since AND event_time_ms < until`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { curveSql } from '../../../analytics/curves.js';
import { curveFilterOf } from '../../../cli/commands/curves.js';
import { EXIT } from '../../../cli/context.js';
import { main } from '../../../cli/main.js';
import { curvesSpec } from '../../../config/commands/curves.js';
import { parseInstantMs } from '../../../config/fields.js';
import { loadConfig } from '../../../config/load.js';
import { ConfigError } from '../../../lib/errors.js';

const JAN1 = Date.UTC(2024, 0, 1);
const JAN2 = Date.UTC(2024, 0, 2);

const load = (argv: string[]) => loadConfig(curvesSpec, argv, { env: {} }).config;

describe('parseInstantMs', () => {
  it('takes unix ms and ISO-8601 date-times with a zone', () => {
    assert.equal(parseInstantMs('1704067200000'), JAN1);
    assert.equal(parseInstantMs('0'), 0);
    assert.equal(parseInstantMs('2024-01-01T00:00:00Z'), JAN1);
    assert.equal(parseInstantMs('2024-01-01T00:00Z'), JAN1);
    assert.equal(parseInstantMs('2024-01-01T00:00:00.250Z'), JAN1 + 250);
    assert.equal(parseInstantMs('2024-01-01T01:00:00+01:00'), JAN1);
    assert.equal(parseInstantMs('2023-12-31T19:00:00-0500'), JAN1);
  });

  it('refuses times without a zone, non-dates and anything else', () => {
    for (const bad of ['2024-01-01', '2024-01-01T00:00:00', '2024-02-30T00:00:00Z', '2024-13-01T00:00:00Z', '2024-01-01T24:00:00Z', 'yesterday', '-5', '1.5', '', '99999999999999999999']) {
      assert.equal(parseInstantMs(bad), undefined, bad);
    }
  });
});

describe('thaw curves --since/--until', () => {
  it('restrict the curve SQL to the event-time window, since inclusive and until exclusive', () => {
    const cfg = load(['--since', '2024-01-01T00:00:00Z', '--until', String(JAN2)]);
    assert.deepEqual([cfg.since, cfg.until], [JAN1, JAN2]);
    const sql = curveSql(curveFilterOf(cfg));
    assert.match(sql, new RegExp(`WHERE namespace IN \\('live'\\) AND event_time_ms >= ${JAN1} AND event_time_ms < ${JAN2}\\n`));
    // One bound alone; none at all.
    assert.match(curveSql(curveFilterOf(load(['--since', String(JAN1)]))), new RegExp(`WHERE namespace IN \\('live'\\) AND event_time_ms >= ${JAN1}\\n`));
    assert.match(curveSql(curveFilterOf(load(['--until', '2024-01-02T00:00:00Z']))), new RegExp(`AND event_time_ms < ${JAN2}\\n`));
    assert.doesNotMatch(curveSql(curveFilterOf(load([]))), /event_time_ms/);
  });

  it('a bad value is a ConfigError naming the flag; since >= until names both', () => {
    const configError = (argv: string[]): ConfigError => {
      try {
        load(argv);
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return err;
      }
      assert.fail(`expected a ConfigError for ${argv.join(' ')}`);
    };
    assert.equal(configError(['--since', 'last week']).key, 'since');
    assert.match(configError(['--until', '2024-01-01T00:00:00']).message, /invalid config "until": expected unix milliseconds or an ISO-8601 time with a zone/);
    for (const window of [
      ['--since', String(JAN2), '--until', String(JAN1)],
      ['--since', String(JAN1), '--until', '2024-01-01T00:00:00Z'],
    ]) {
      const err = configError(window);
      assert.equal(err.key, 'until');
      assert.match(err.message, /--until \(.*\) must be after --since \(.*\)/);
    }
  });

  it('exits with the usage code before connecting', async () => {
    let err = '';
    const code = await main(['curves', '--since', '2024-01-02T00:00:00Z', '--until', '2024-01-01T00:00:00Z'], {
      stdout: { write: () => true },
      stderr: { write: (s: string) => ((err += s), true) },
      env: {},
    });
    assert.equal(code, EXIT.usage);
    assert.match(err, /^thaw curves: invalid config "until": --until \(2024-01-01T00:00:00\.000Z\) must be after --since \(2024-01-02T00:00:00\.000Z\)/);
  });
});
