/**
 * Admission control's estimate (serving/admission.ts): the delay ahead of a new request is the CPU
 * of the requests in flight (the event loop's active time per answered request), not the stages'
 * round times. Regression: the first estimator predicted one read round and one model batch for a
 * request behind ~200 others, admitted them all, and at 2-4× capacity the admitted requests came out
 * seconds late (README "Serving", 2026-12-07).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FactorizationMachine } from '../../../models/fm.js';
import { Admission, OverloadedError, type LoopClock } from '../../../serving/admission.js';
import { ScoringPipeline } from '../../../serving/pipeline.js';
import { fixedRelease, servingRelease } from '../../../serving/release.js';
import { parseScoreRequest } from '../../../serving/request.js';
import type { StateSource } from '../../../serving/state-source.js';

/** A clock the test moves: `now` and the event loop's cumulative active time (ms). */
class FakeClock implements LoopClock {
  t = 0;
  active = 0;
  now(): number {
    return this.t;
  }
  activeMs(): number {
    return this.active;
  }
}

describe('admission estimate', () => {
  test('CPU per request is the loop active time per answered request, over windows', () => {
    const clock = new FakeClock();
    const a = new Admission(clock);
    assert.equal(a.costMs(), 0, 'nothing measured yet');
    clock.t = 100;
    clock.active = 50;
    a.answered(100);
    assert.equal(a.costMs(), 0.5);
    // The next window: 2 ms per request moves the average by COST_ALPHA (0.3) of the difference.
    clock.t = 200;
    clock.active = 250;
    a.answered(100);
    assert.ok(Math.abs(a.costMs() - 0.95) < 1e-9, String(a.costMs()));
  });

  test('the delay ahead grows with the requests in flight; the read round trip overlaps it', () => {
    const clock = new FakeClock();
    const a = new Admission(clock);
    clock.t = 100;
    clock.active = 100;
    a.answered(100); // 1 ms per request
    a.observeFetch(5, 0);
    assert.equal(a.predictMs(0, 0, 0), 5 + 1, 'an empty pipeline: the read, then its own CPU');
    assert.equal(a.predictMs(3, 0, 0), 5 + 1, 'a short queue hides behind the read');
    assert.equal(a.predictMs(60, 2, 0), 2 + 60 + 1, 'a long one does not');
  });
});

describe('admission in the pipeline', () => {
  const fm = FactorizationMachine.create({ buckets: 1024, k: 4, seed: 1, initStd: 0.1, release: 'fm/v1' });
  const release = servingRelease(fm, 'v1', Date.now(), undefined, { keyPrefix: 'unit', namespace: 'live', safeguard: 'off' });
  const request = parseScoreRequest({ user: { id: 'u' }, candidates: [{ id: 'a' }] }, { maxCandidates: 10 });

  /** A store whose reads wait for `gate`. */
  class GatedSource implements StateSource {
    gate: Promise<void> = Promise.resolve();
    async mget(keys: readonly string[]): Promise<(Buffer | null)[]> {
      await this.gate;
      return keys.map(() => null);
    }
    ping(): Promise<void> {
      return Promise.resolve();
    }
    close(): Promise<void> {
      return Promise.resolve();
    }
  }

  test('at 1 ms of CPU per request, a 50 ms deadline admits about 50 requests in flight and refuses the rest as deadline', async () => {
    const clock = new FakeClock();
    const source = new GatedSource();
    const pipeline = new ScoringPipeline({
      source,
      releases: fixedRelease(release),
      serving: { safeguard: 'off', freshnessMs: 0, fetchTimeoutMs: 60_000 },
      defaultMetrics: false,
      admissionClock: clock,
    });
    await pipeline.start();
    // A measured window: 20 requests answered while the loop was active 20 ms (1 ms each).
    for (let i = 0; i < 19; i++) await pipeline.score(request, performance.now(), 10_000);
    clock.t = 1000;
    clock.active = 20;
    await pipeline.score(request, performance.now(), 10_000); // the 20th closes the window
    // Now the store stalls and a burst of 200 arrives with a 50 ms deadline.
    let open: () => void = () => undefined;
    source.gate = new Promise((r) => (open = r));
    const answers: Promise<string>[] = [];
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      try {
        answers.push(pipeline.score(request, performance.now(), 50));
      } catch (err) {
        assert.ok(err instanceof OverloadedError && err.reason === 'deadline', String(err));
        refused++;
      }
    }
    const admitted = 200 - refused;
    assert.ok(admitted >= 45 && admitted <= 50, `admitted ${admitted} of 200`);
    open();
    const settled = await Promise.allSettled(answers);
    assert.equal(settled.length, admitted);
    await pipeline.stop();
  });
});

describe('admission under overload', () => {
  test('a window with more refusals than answers keeps the estimate (no collapse of goodput)', () => {
    const clock = new FakeClock();
    const a = new Admission(clock);
    clock.t = 100;
    clock.active = 50;
    a.answered(100); // 0.5 ms per request
    // Overload: the loop is busy the whole window, mostly refusing; few answers.
    clock.t = 120;
    a.refused(1000);
    clock.t = 200;
    clock.active = 150;
    a.answered(20);
    assert.equal(a.costMs(), 0.5, "refusals' CPU is not charged to the few answers");
    // Back below capacity: windows update again.
    clock.t = 300;
    clock.active = 250;
    a.answered(100);
    assert.ok(Math.abs(a.costMs() - (0.5 + 0.3 * (1 - 0.5))) < 1e-9, String(a.costMs()));
  });
});
