/**
 * The resource manager's offline parts without services: the recorded-load format (serving/load-recording.ts),
 * the settings file (serving/resource-manager.ts readSettings) and the coordinate-descent search on a
 * fake evaluator whose goodput and p99 are a known function of the settings.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../../lib/errors.js';
import { formatLoad, parseLoad } from '../../../serving/load-recording.js';
import type { ReplayResult } from '../../../serving/load-replay.js';
import { readSettings, SEARCH_SPACE, searchSettings, SETTINGS_FORMAT, type StageSettings } from '../../../serving/resource-manager.js';

const result = (goodputPerSec: number, p99: number): ReplayResult => ({ sent: 1, ok: 1, shed: 0, errors: 0, goodputPerSec, p50: p99 / 2, p99, lateShare: 0, spanSec: 1 });
const START: StageSettings = { fetchConcurrency: 4, modelMaxBatch: 64, modelMaxWaitMs: 0, maxInFlight: 2048 };

describe('recorded load', () => {
  test('round-trips arrivals, bodies and per-request deadlines', () => {
    const text = formatLoad(
      50,
      [
        { t: 0, body: { user: { id: 'u' }, candidates: [{ id: 'i' }] } },
        { t: 2.5, body: { user: { id: 'v' }, candidates: [] }, deadlineMs: 10 },
      ],
      'note',
    );
    const load = parseLoad(text);
    assert.equal(load.deadlineMs, 50);
    assert.equal(load.spanMs, 2.5);
    assert.deepEqual(
      load.arrivals.map((a) => [a.t, a.deadlineMs]),
      [
        [0, undefined],
        [2.5, 10],
      ],
    );
    assert.deepEqual(JSON.parse(load.arrivals[1]?.body ?? ''), { user: { id: 'v' }, candidates: [] });
  });

  test('refuses a bad file naming the line', () => {
    const header = JSON.stringify({ format: 'thaw-load/1', deadlineMs: 50 });
    const cases: [string, RegExp][] = [
      ['', /line 1: empty/],
      [JSON.stringify({ format: 'x', deadlineMs: 50 }), /line 1: format/],
      [JSON.stringify({ format: 'thaw-load/1', deadlineMs: -1 }), /line 1: deadlineMs/],
      [header, /no arrivals/],
      [`${header}\n{"t":5,"body":{}}\n{"t":4,"body":{}}`, /line 3: t must/],
      [`${header}\n{"t":1}`, /line 2: body/],
      [`${header}\nnot json`, /line 2: not JSON/],
    ];
    for (const [text, re] of cases)
      assert.throws(
        () => parseLoad(text),
        (e: unknown) => e instanceof ConfigError && e.key === 'load' && re.test(e.message),
        text,
      );
  });
});

describe('settings file', () => {
  test('reads the settings of thaw serve tune', () => {
    const doc = JSON.stringify({ format: SETTINGS_FORMAT, settings: START, tuning: { any: 1 } });
    assert.deepEqual(
      readSettings('f', () => doc),
      START,
    );
  });
  test('refuses wrong format, missing, bad or unknown settings naming the key', () => {
    const bad = (settings: unknown, key: string, format = SETTINGS_FORMAT): void =>
      assert.throws(
        () => readSettings('f', () => JSON.stringify({ format, settings })),
        (e: unknown) => e instanceof ConfigError && e.key === key,
        key,
      );
    bad(START, 'settings', 'other');
    bad({ ...START, modelMaxBatch: 0 }, 'settings.modelMaxBatch');
    bad({ ...START, fetchConcurrency: 1.5 }, 'settings.fetchConcurrency');
    bad({ ...START, modelMaxWaitMs: -1 }, 'settings.modelMaxWaitMs');
    bad({ ...START, fetchTimeoutMs: 3 }, 'settings.fetchTimeoutMs');
    bad({ fetchConcurrency: 4 }, 'settings.modelMaxBatch');
    assert.throws(
      () => readSettings('f', () => '{'),
      (e: unknown) => e instanceof ConfigError && e.key === 'settings',
    );
  });
});

describe('coordinate descent', () => {
  test('finds the best feasible setting of a separable objective, one replay per distinct setting', async () => {
    // Goodput peaks at fetch 8 and batch 16; a wait above 1 ms breaks the deadline; the in-flight bound does not matter.
    const evaluated: string[] = [];
    const evaluate = (s: StageSettings): Promise<ReplayResult> => {
      evaluated.push(JSON.stringify(s));
      const goodput = 1000 - 20 * Math.abs(Math.log2(s.fetchConcurrency / 8)) - 30 * Math.abs(Math.log2(s.modelMaxBatch / 16)) + 5 * s.modelMaxWaitMs;
      return Promise.resolve(result(goodput, s.modelMaxWaitMs > 1 ? 80 : 30));
    };
    const r = await searchSettings(START, evaluate, { deadlineMs: 50, minGain: 0 });
    assert.deepEqual(r.best.settings, { fetchConcurrency: 8, modelMaxBatch: 16, modelMaxWaitMs: 1, maxInFlight: 2048 });
    assert.ok(r.best.feasible);
    assert.equal(new Set(evaluated).size, evaluated.length, 'no setting replayed twice');
    const onePass = 1 + Object.values(SEARCH_SPACE).reduce((n, v) => n + v.length - 1, 0);
    assert.ok(evaluated.length <= 2 * onePass, `${evaluated.length} replays`);
    assert.deepEqual(r.baseline.settings, START);
  });

  test('keeps the defaults unless a candidate beats them by minGain, and never picks an infeasible setting over a feasible one', async () => {
    const evaluate = (s: StageSettings): Promise<ReplayResult> => Promise.resolve(s.modelMaxBatch === 128 ? result(2000, 60) : result(s.fetchConcurrency === 8 ? 1020 : 1000, 30));
    const r = await searchSettings(START, evaluate, { deadlineMs: 50, minGain: 0.03 });
    assert.deepEqual(r.best.settings, START, '2 % is within the noise; 2× goodput past the deadline is no gain');
  });

  test('from an infeasible start it moves to a feasible setting', async () => {
    const evaluate = (s: StageSettings): Promise<ReplayResult> => Promise.resolve(result(100, s.maxInFlight / 10));
    const r = await searchSettings(START, evaluate, { deadlineMs: 50 });
    assert.equal(r.best.settings.maxInFlight, 64, 'the first feasible value; 256, feasible too, is no better in goodput');
    assert.ok(r.best.feasible);
  });
});
