/**
 * The shared history options and the thin-history check (trainers/history.ts): defaults, mutual
 * exclusion, the count of history events, and the HISTORY_TOO_THIN messages.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, ThawError } from '../../../lib/errors.js';
import { checkHistory, DEFAULT_HISTORY_FRACTION, DEFAULT_MIN_EVENTS, HISTORY_MINIMUM, historyEventCount, resolveHistory, type HistoryCounts } from '../../../trainers/history.js';

const isConfig =
  (key: string, message: RegExp) =>
  (err: unknown): boolean =>
    err instanceof ConfigError && err.key === key && message.test(err.message);

describe('resolveHistory', () => {
  it('defaults: the first half of the source; min-events 20 for the FM, 40 for the meta trainers', () => {
    assert.equal(DEFAULT_HISTORY_FRACTION, 0.5);
    assert.deepEqual(resolveHistory({}, 'fm'), { length: { fraction: 0.5 }, minEvents: DEFAULT_MIN_EVENTS.fm });
    assert.deepEqual(resolveHistory({}, 'meta'), { length: { fraction: 0.5 }, minEvents: DEFAULT_MIN_EVENTS.meta });
    assert.deepEqual([DEFAULT_MIN_EVENTS.fm, DEFAULT_MIN_EVENTS.meta], [20, 40]);
  });

  it('takes a fraction or a count, and min-events', () => {
    assert.deepEqual(resolveHistory({ historyFraction: 0.3, minEvents: 5 }, 'meta'), { length: { fraction: 0.3 }, minEvents: 5 });
    assert.deepEqual(resolveHistory({ historyEvents: 1234 }, 'fm'), { length: { events: 1234 }, minEvents: 20 });
  });

  it('a fraction and a count together are a ConfigError naming both flags', () => {
    assert.throws(() => resolveHistory({ historyFraction: 0.5, historyEvents: 100 }, 'fm'), isConfig('history-events', /--history-events 100 and --history-fraction 0\.5 are mutually exclusive/));
    // The deprecated spelling is named when it is what was typed.
    assert.throws(
      () => resolveHistory({ historyFraction: 0.5, historyEvents: 100 }, 'fm', 'max-events'),
      isConfig('max-events', /--max-events 100 and --history-fraction 0\.5 are mutually exclusive/),
    );
  });

  it('rejects values out of range, naming the flag', () => {
    for (const f of [0, 1, -0.1, 1.5, NaN]) assert.throws(() => resolveHistory({ historyFraction: f }, 'meta'), isConfig('history-fraction', /must be in \(0, 1\)/), String(f));
    for (const n of [0, -3, 2.5, NaN]) assert.throws(() => resolveHistory({ historyEvents: n }, 'meta'), isConfig('history-events', /must be an integer >= 1/), String(n));
    assert.throws(() => resolveHistory({ minEvents: 0 }, 'fm'), isConfig('min-events', /must be an integer >= 1, got 0/));
    assert.throws(() => resolveHistory({ minEvents: 1 }, 'meta'), isConfig('min-events', /must be an integer >= 2, got 1/));
    assert.equal(resolveHistory({ minEvents: 1 }, 'fm').minEvents, 1);
  });
});

describe('historyEventCount', () => {
  it('floors a fraction, caps a count at the stream, refuses an empty history', () => {
    assert.equal(historyEventCount({ fraction: 0.5 }, 6001), 3000);
    assert.equal(historyEventCount({ events: 100 }, 6000), 100);
    assert.equal(historyEventCount({ events: 9000 }, 6000), 6000);
    assert.throws(() => historyEventCount({ fraction: 0.1 }, 9), isConfig('history-fraction', /leaves no history events out of 9/));
  });
});

describe('checkHistory', () => {
  const enough: HistoryCounts = { side: 'user', minEvents: 40, historyEvents: 20_000, entities: HISTORY_MINIMUM.entities, rows: HISTORY_MINIMUM.rows };

  it('passes at the minimum', () => {
    checkHistory(enough);
    checkHistory({ ...enough, search: { eligible: 20, validation: HISTORY_MINIMUM.validationEntities, queryRows: 20 } });
  });

  it('too few hot entities or rows: HISTORY_TOO_THIN naming the flags and the counts', () => {
    const thin = (c: HistoryCounts): ThawError => {
      try {
        checkHistory(c);
      } catch (err) {
        assert.ok(err instanceof ThawError && err.code === 'HISTORY_TOO_THIN', String(err));
        return err;
      }
      assert.fail('expected HISTORY_TOO_THIN');
    };
    assert.equal(
      thin({ ...enough, entities: 10, rows: 1034 }).message,
      'history too thin: --min-events 40 leaves 10 hot users (1,034 rows) in a history of 20,000 events; at least 20 hot users and 1,000 rows are needed: ' +
        'lower --min-events or give a longer history (raise --history-fraction or --history-events)',
    );
    assert.match(thin({ ...enough, side: 'item', entities: 25, rows: 999 }).message, /leaves 25 hot items \(999 rows\)/);
  });

  it('ColdNAS: too few validation users for the search, with a hint that fits --min-events', () => {
    const search = { eligible: 17, validation: 4, queryRows: 20 };
    assert.throws(
      () => checkHistory({ ...enough, entities: 30, rows: 1500, search }),
      (err: unknown) =>
        err instanceof ThawError &&
        err.code === 'HISTORY_TOO_THIN' &&
        err.message ===
          "history too thin for ColdNAS's structure search: 17 of the 30 hot users (--min-events 40) have more than 20 rows, which holds out 4 validation users " +
            'in a history of 20,000 events; at least 5 are needed: lower --min-events (down to 21) or give a longer history (raise --history-fraction or --history-events)',
    );
    // At --min-events 21 or below, lowering it adds no user with more than 20 rows.
    assert.throws(
      () => checkHistory({ ...enough, minEvents: 21, entities: 30, rows: 1500, search }),
      (err: unknown) => err instanceof ThawError && /needed: give a longer history/.test(err.message),
    );
  });
});
