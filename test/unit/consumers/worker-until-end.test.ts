/**
 * `untilEnd` (consumers/until-end.ts, `thaw run --until-end`): the worker snapshots the topic's end
 * before it joins the group, drains itself once the group's commits reach it, stops at once when
 * nothing is left; and the pure end-of-topic arithmetic of streams/offsets.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UntilEnd, type EndOfTopicProbe } from '../../../consumers/until-end.js';
import { AdaptationWorker, type BatchSource } from '../../../consumers/worker.js';
import { ConfigError } from '../../../lib/errors.js';
import { createLogger, silentLogger } from '../../../lib/log.js';
import type { MessageBatch } from '../../../streams/message.js';
import { remainingToEnd } from '../../../streams/offsets.js';
import { RecordingSink, SharingStore, ToyAdapter } from './fakes.js';

/** Records what happened, in order, across the fakes. */
type Journal = string[];

class FakeSource implements BatchSource {
  constructor(private readonly journal: Journal) {}
  start(_handler: (b: MessageBatch) => Promise<void>): Promise<void> {
    this.journal.push('source.start');
    return Promise.resolve();
  }
  stop(): Promise<void> {
    this.journal.push('source.stop');
    return Promise.resolve();
  }
  lag(): Promise<number> {
    return Promise.resolve(0);
  }
}

class FlushCountingSink extends RecordingSink {
  constructor(private readonly journal: Journal) {
    super();
  }
  override flush(): Promise<void> {
    this.journal.push('sink.flush');
    return Promise.resolve();
  }
}

/** Answers `remaining()` from a script (the last answer repeats); a thrown Error answers with a failure. */
class ScriptedProbe implements EndOfTopicProbe {
  calls = 0;
  constructor(
    private readonly journal: Journal,
    private readonly script: readonly (number | Error)[],
  ) {}
  snapshot(): Promise<void> {
    this.journal.push('probe.snapshot');
    return Promise.resolve();
  }
  remaining(): Promise<number> {
    const answer = this.script[Math.min(this.calls, this.script.length - 1)]!;
    this.calls++;
    this.journal.push(`probe.remaining=${answer instanceof Error ? 'error' : answer}`);
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
  }
}

function setup(script: readonly (number | Error)[]): { worker: AdaptationWorker; journal: Journal; probe: ScriptedProbe; logs: Record<string, unknown>[] } {
  const journal: Journal = [];
  const probe = new ScriptedProbe(journal, script);
  const logs: Record<string, unknown>[] = [];
  const worker = new AdaptationWorker({
    kafka: { brokers: ['127.0.0.1:1'] },
    side: 'item',
    adapter: new ToyAdapter('item'),
    store: new SharingStore(),
    sink: new FlushCountingSink(journal),
    deadLetters: { sendMany: () => Promise.resolve() },
    source: new FakeSource(journal),
    metricsPort: 0,
    untilEnd: true,
    untilEndPollMs: 1,
    endProbe: probe,
    logger: createLogger('debug', {}, (l) => logs.push(JSON.parse(l) as Record<string, unknown>)),
  });
  return { worker, journal, probe, logs };
}

describe('AdaptationWorker untilEnd', () => {
  it('a topic with nothing to consume stops in start(): flushed, never joined', async () => {
    const t = setup([0]);
    await t.worker.start();
    assert.equal(await t.worker.whenStopped(), 'STOPPED');
    assert.deepEqual(t.journal, ['probe.snapshot', 'probe.remaining=0', 'source.stop', 'sink.flush']);
  });

  it('snapshots before joining, then drains once the commits reach the snapshot', async () => {
    const t = setup([7, 4, 0]);
    await t.worker.start();
    assert.equal(await t.worker.whenStopped(), 'STOPPED');
    assert.deepEqual(t.journal, ['probe.snapshot', 'probe.remaining=7', 'source.start', 'probe.remaining=4', 'probe.remaining=0', 'source.stop', 'sink.flush']);
    assert.ok(t.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('topic end reached')));
  });

  it('a failed check is logged and checked again; it does not stop the run', async () => {
    const t = setup([3, new Error('broker away'), 0]);
    await t.worker.start();
    assert.equal(await t.worker.whenStopped(), 'STOPPED');
    assert.deepEqual(t.journal.slice(2), ['source.start', 'probe.remaining=error', 'probe.remaining=0', 'source.stop', 'sink.flush']);
    assert.ok(t.logs.some((l) => l.level === 'warn' && l.msg === 'end-of-topic check failed; checking again'));
  });

  it('drain() before the end (a signal) stops the worker without waiting for the end', async () => {
    const t = setup([5]);
    await t.worker.start();
    await t.worker.drain();
    assert.equal(await t.worker.whenStopped(), 'STOPPED');
    assert.deepEqual(t.journal.slice(-2), ['source.stop', 'sink.flush']);
  });

  it('refuses a bad poll interval naming the key', () => {
    assert.throws(
      () =>
        new AdaptationWorker({
          kafka: { brokers: ['127.0.0.1:1'] },
          side: 'item',
          adapter: new ToyAdapter('item'),
          store: new SharingStore(),
          sink: new RecordingSink(),
          deadLetters: { sendMany: () => Promise.resolve() },
          source: new FakeSource([]),
          metricsPort: 0,
          untilEnd: true,
          untilEndPollMs: 0,
        }),
      (e: unknown) => e instanceof ConfigError && e.key === 'untilEndPollMs',
    );
  });
});

describe('UntilEnd', () => {
  it('stop() ends the checks: no check runs after it, onEnd is never called', async () => {
    const journal: Journal = [];
    const probe = new ScriptedProbe(journal, [5]);
    let ended = 0;
    const u = new UntilEnd({ probe, pollMs: 60_000, logger: silentLogger, onEnd: () => ended++ });
    assert.equal(await u.atEndOnStart(), false);
    const watching = u.watch();
    u.stop();
    await watching;
    assert.deepEqual(journal, ['probe.snapshot', 'probe.remaining=5']);
    assert.equal(ended, 0);
  });

  it('calls onEnd once when the end is reached, then stops checking', async () => {
    const journal: Journal = [];
    let ended = 0;
    const u = new UntilEnd({ probe: new ScriptedProbe(journal, [2, 1, 0]), pollMs: 1, logger: silentLogger, onEnd: () => ended++ });
    assert.equal(await u.atEndOnStart(), false);
    await u.watch();
    assert.equal(ended, 1);
    assert.deepEqual(journal, ['probe.snapshot', 'probe.remaining=2', 'probe.remaining=1', 'probe.remaining=0']);
  });
});

describe('remainingToEnd', () => {
  it('counts each partition from its commit (or its low offset) to its end', () => {
    const ends = [
      { partition: 0, low: 0, high: 10 },
      { partition: 1, low: 0, high: 0 },
      { partition: 2, low: 5, high: 9 },
      { partition: 3, low: 4, high: 8 },
    ];
    // 0: committed 6 of 10; 1: empty, never committed; 2: never committed, records 5..8 retained;
    // 3: committed 2, but records below 4 were removed by retention.
    assert.deepEqual(
      remainingToEnd(
        ends,
        new Map([
          [0, 6],
          [3, 2],
        ]),
      ),
      [
        { partition: 0, remaining: 4 },
        { partition: 1, remaining: 0 },
        { partition: 2, remaining: 4 },
        { partition: 3, remaining: 4 },
      ],
    );
    assert.deepEqual(
      remainingToEnd(
        ends,
        new Map([
          [0, 10],
          [1, -1],
          [2, 9],
          [3, 12],
        ]),
      ).map((p) => p.remaining),
      [0, 0, 0, 0],
      'a commit past the snapshot (events produced since) counts as reached',
    );
    // A group that starts at new records has nothing of the snapshot to do where it has no offset.
    assert.deepEqual(
      remainingToEnd(ends, new Map([[0, 6]]), false).map((p) => p.remaining),
      [4, 0, 0, 0],
    );
  });
});
