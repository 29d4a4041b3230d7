/**
 * The shedding threshold's AIMD controller (serving/shed-controller.ts), on a fake clock: windows
 * close by time and count; a window over the target decreases the threshold multiplicatively, one
 * far under it that refused requests increases it additively, anything else holds; the bounds hold;
 * bad options stop start-up. And a closed loop against a toy server whose admission mispredicts by
 * 3×: the controller brings the admitted p99 under the deadline.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '../../../lib/errors.js';
import { ShedController, shedControllerConfig } from '../../../serving/shed-controller.js';

/** Feeds `n` admitted requests of latency `ratio × 100 ms` (deadline 100 ms) at time `t`; returns the last window closed. */
function feed(c: ShedController, n: number, ratio: number, t: number, refusals = 0): ReturnType<ShedController['observe']> {
  let closed: ReturnType<ShedController['observe']>;
  for (let r = 0; r < refusals; r++) closed = c.refused(t) ?? closed;
  for (let i = 0; i < n; i++) closed = c.observe(ratio * 100, 100, t) ?? closed;
  return closed;
}

describe('ShedController', () => {
  test('a window closes only after windowMs and windowAnswers', () => {
    const c = new ShedController({ windowMs: 100, windowAnswers: 20 }, 0);
    assert.equal(feed(c, 50, 2, 50), undefined, 'too early');
    assert.equal(c.threshold, 1);
    const w = feed(c, 1, 2, 100);
    assert.equal(w?.action, 'decrease');
    assert.equal(w.answers, 51);
    const c2 = new ShedController({ windowMs: 100, windowAnswers: 20 }, 0);
    assert.equal(feed(c2, 19, 2, 500), undefined, 'too few answers');
    assert.equal(feed(c2, 1, 2, 500)?.action, 'decrease');
  });

  test('over the target: multiplicative decrease down to the floor', () => {
    const c = new ShedController({ decrease: 0.5, minThreshold: 0.1 }, 0);
    feed(c, 30, 0.9, 100);
    assert.equal(c.threshold, 0.5);
    feed(c, 30, 0.9, 200);
    assert.equal(c.threshold, 0.25);
    for (let t = 300; t < 2000; t += 100) feed(c, 30, 5, t);
    assert.equal(c.threshold, 0.1, 'bounded below');
  });

  test('the p99, not the mean, decides: 2 % of requests over the target decrease', () => {
    const c = new ShedController({}, 0);
    feed(c, 98, 0.1, 0);
    assert.equal(feed(c, 2, 0.95, 100)?.action, 'decrease');
    const d = new ShedController({}, 0);
    feed(d, 99, 0.6, 0);
    const w = feed(d, 1, 3, 100);
    assert.equal(w?.action, 'hold', 'one in a hundred over is the 1 % a p99 allows');
    assert.ok(Math.abs((w.p99Ratio ?? 0) - 0.6) < 1e-9);
  });

  test('far under the target: additive increase only in windows that refused, up to the ceiling', () => {
    const c = new ShedController({ increase: 0.25, maxThreshold: 1.5 }, 0);
    assert.equal(feed(c, 30, 0.1, 100)?.action, 'hold', 'nothing refused: nothing to admit more of');
    assert.equal(c.threshold, 1);
    assert.equal(feed(c, 30, 0.1, 200, 5)?.action, 'increase');
    assert.equal(c.threshold, 1.25);
    for (let t = 300; t < 1500; t += 100) feed(c, 30, 0.1, t, 5);
    assert.equal(c.threshold, 1.5, 'bounded above');
  });

  test('between low and target: hold', () => {
    const c = new ShedController({}, 0);
    assert.equal(feed(c, 30, 0.7, 100, 10)?.action, 'hold');
    assert.equal(c.threshold, 1);
  });

  test('counts admitted requests finished and finished past their deadline', () => {
    const c = new ShedController({}, 0);
    feed(c, 10, 0.5, 0);
    feed(c, 3, 1.5, 0);
    assert.equal(c.finished, 13);
    assert.equal(c.pastDeadline, 3);
  });

  test('bad options stop start-up naming the key', () => {
    assert.throws(
      () => shedControllerConfig({ targetRatio: 0.4, lowRatio: 0.5 }),
      (e: unknown) => e instanceof ConfigError && e.key === 'serving.shedControl.lowRatio',
    );
    assert.throws(
      () => shedControllerConfig({ decrease: 1.2 }),
      (e: unknown) => e instanceof ConfigError && e.key === 'serving.shedControl.decrease',
    );
    assert.throws(
      () => shedControllerConfig({ minThreshold: 2, maxThreshold: 1 }),
      (e: unknown) => e instanceof ConfigError && e.key === 'serving.shedControl.minThreshold',
    );
    assert.throws(
      () => shedControllerConfig({ windowMs: 0 }),
      (e: unknown) => e instanceof ConfigError && e.key === 'serving.shedControl.windowMs',
    );
  });

  test('closed loop: a toy server whose admission underestimates latency 3× is brought under the deadline', () => {
    // The toy: a FIFO server with 1 ms of real work per request, 4 arrivals per ms (4× capacity),
    // deadline 20 ms. Admission predicts queue × 1/3 ms (3× too optimistic) and refuses when the
    // prediction exceeds threshold × deadline. Without feedback it admits a queue of ~60 ms.
    const run = (control: boolean): { lateShare: number; threshold: number } => {
      const c = new ShedController({}, 0);
      let busyUntil = 0;
      let late = 0;
      let admitted = 0;
      for (let t = 0; t < 20_000; t += 0.25) {
        // Completions up to t are observed in order (their finish times are known at admission).
        const queueMs = Math.max(0, busyUntil - t);
        const predicted = queueMs / 3 + 1 / 3;
        const threshold = control ? c.threshold : 1;
        if (predicted > threshold * 20) {
          c.refused(t);
          continue;
        }
        busyUntil = Math.max(busyUntil, t) + 1;
        const latency = busyUntil - t;
        c.observe(latency, 20, busyUntil);
        if (t >= 5_000) {
          admitted++;
          if (latency > 20) late++;
        }
      }
      return { lateShare: late / admitted, threshold: c.threshold };
    };
    const off = run(false);
    const on = run(true);
    assert.ok(off.lateShare > 0.5, `without feedback most admitted requests are late: ${off.lateShare}`);
    assert.ok(on.lateShare <= 0.01, `with feedback the admitted p99 is within the deadline: ${on.lateShare} past it, threshold ${on.threshold}`);
    assert.ok(on.threshold < 0.34, `the threshold compensates the 3× misprediction: ${on.threshold}`);
  });
});
