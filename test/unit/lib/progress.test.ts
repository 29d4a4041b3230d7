import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Progress, fmtDuration } from '../../../lib/progress.js';
import { createLogger } from '../../../lib/log.js';

function fakeStream(isTTY: boolean): { write(s: string): boolean; isTTY: boolean; columns: number; out: string[] } {
  const out: string[] = [];
  return { write: (s: string) => out.push(s) > 0, isTTY, columns: 200, out };
}

describe('Progress', () => {
  it('computes rate, done/total and ETA from the clock', () => {
    let t = 0;
    const p = new Progress({ label: 'x', total: 1000, stream: fakeStream(false), now: () => t });
    t = 2000;
    p.tick(400);
    const s = p.snapshot();
    assert.equal(s.done, 400);
    assert.equal(s.rate, 200);
    assert.equal(s.etaSec, 3);
    assert.match(p.format(s), /^x 400\/1,000 \(40\.0%\) 200 events\/s ETA 3s$/);
  });

  it('on a TTY redraws one line in place, throttled, and ends it on finish', () => {
    let t = 0;
    const stream = fakeStream(true);
    const p = new Progress({ label: 'replay', total: 10, stream, now: () => t, drawIntervalMs: 100 });
    t = 50;
    p.tick(1); // first draw
    t = 60;
    p.tick(1); // throttled
    t = 200;
    p.tick(1); // second draw
    assert.equal(stream.out.length, 2);
    assert.ok(stream.out.every((s) => s.startsWith('\r\x1b[2K')));
    p.finish();
    assert.equal(stream.out[stream.out.length - 1], '\n');
    const n = stream.out.length;
    p.finish(); // idempotent
    assert.equal(stream.out.length, n);
  });

  it('off a TTY writes nothing to the stream and logs JSON lines at the log interval', () => {
    let t = 0;
    const stream = fakeStream(false);
    const lines: string[] = [];
    const logger = createLogger('info', {}, (l) => lines.push(l));
    const p = new Progress({ label: 'produce', stream, logger, now: () => t, logIntervalMs: 5000 });
    t = 1000;
    p.tick(10);
    assert.equal(lines.length, 0);
    t = 6000;
    p.tick(10);
    assert.equal(lines.length, 1);
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(rec.msg, 'produce progress');
    assert.equal(rec.done, 20);
    assert.equal(rec.total, undefined);
    p.finish();
    assert.equal((JSON.parse(lines[1]!) as Record<string, unknown>).msg, 'produce done');
    assert.equal(stream.out.length, 0);
  });

  it('formats durations', () => {
    assert.equal(fmtDuration(42), '42s');
    assert.equal(fmtDuration(185), '3m05s');
    assert.equal(fmtDuration(3720), '1h02m');
  });
});
