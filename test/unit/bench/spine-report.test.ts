import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseBenchArgs, type BenchEntry } from '../../../bench/run.js';
import { ceilingViolations, limitsOf, type AdapterFigures, type SpineFigures } from '../../../bench/spine/report.js';

function adapter(over: Partial<AdapterFigures>): AdapterFigures {
  return {
    adapter: 'fm-adagrad',
    side: 'item',
    ceilings: { kafkaDecodeEventsPerSec: 100_000, redisEventsPerSec: 200_000, sinkRowsPerSec: 90_000 },
    adaptAloneEventsPerSec: 300_000,
    endToEndEventsPerSec: 40_000,
    latency: [],
    ...over,
  };
}

function figures(adapters: AdapterFigures[]): SpineFigures {
  return {
    run: {
      startedAt: '2026-12-07T06:00:00.000Z',
      command: 'npm run bench -- --only spine',
      loadAverageBefore: [1, 1, 1],
      loadAverageAfter: [1, 1, 1],
      wallSeconds: 1,
      events: 1,
      partitions: 4,
      batch: 5000,
      pipelineDepth: 1,
      fetchAhead: false,
    },
    ceilings: { kafkaDecodeEventsPerSec: 100_000, redisEventsPerSec: 200_000, sinkRowsPerSec: 90_000 },
    adapters,
  };
}

describe('spine report', () => {
  it('the lowest limit of an adapter counts its adapt-alone rate', () => {
    const lowest = limitsOf(adapter({ adaptAloneEventsPerSec: 3000 })).reduce((m, x) => (x.perSec < m.perSec ? x : m));
    assert.deepEqual(lowest, { name: 'adapt alone', perSec: 3000 });
  });

  it('end to end above a ceiling names that ceiling as the wrong figure', () => {
    assert.deepEqual(ceilingViolations(figures([adapter({})])), []);
    const v = ceilingViolations(figures([adapter({ adapter: 'emerg', adaptAloneEventsPerSec: 3227, endToEndEventsPerSec: 3376 })]));
    assert.equal(v.length, 1);
    assert.match(v[0] ?? '', /^emerg: .*"adapt alone" ceiling 3,227 .*wrong/);
  });
});

describe('npm run bench --json', () => {
  const benches: BenchEntry[] = [
    { name: 'spine', script: 'bench/spine/run.ts', summary: '', json: true },
    { name: 'models', script: 'bench/models/run.ts', summary: '' },
  ];
  it('forwards --json to benches that print JSON', () => {
    assert.deepEqual(parseBenchArgs(['--only', 'spine', '--json', '--', '--events', '10'], benches).passThrough, ['--json', '--events', '10']);
  });
  it('refuses --json for a bench without it', () => {
    assert.throws(() => parseBenchArgs(['--only', 'spine,models', '--json'], benches), /models/);
  });
});
