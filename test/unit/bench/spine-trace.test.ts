/** The spine bench's latency breakdown (bench/spine/trace.ts): phases per event that sum to its latency. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkTrace, emptySamples, phaseFigures, PHASES, recordPhases } from '../../../bench/spine/trace.js';
import type { MessageBatch } from '../../../streams/message.js';

function batch(sentMs: number[], fetch?: MessageBatch['fetch']): MessageBatch {
  const messages = sentMs.map((t, i) => ({ topic: 't', partition: 0, offset: i, key: null, value: null, headers: {}, timestampMs: t }));
  return { topic: 't', partition: 0, messages, highWatermark: messages.length, ...(fetch === undefined ? {} : { fetch }) };
}

describe('spine latency breakdown', () => {
  it('splits each event at the fetch sent, the batch received, the chunk handed, the sink and the state write', () => {
    const trace = new ChunkTrace(1130);
    trace.readMs = 5;
    trace.sinkStart = 1150;
    trace.sinkEnd = 1190;
    trace.putStart = 1190;
    trace.putEnd = 1200;
    const s = emptySamples();
    // Sent before the fetch went out (waited for it), and sent while it waited on the broker.
    recordPhases(batch([1000, 1110], { requestedAtMs: 1100, receivedAtMs: 1120 }), trace, 1201, 0, s);
    assert.deepEqual(s.total, [201, 91]);
    const at = (i: number): number[] => PHASES.map((p) => s.byPhase[p][i] ?? Number.NaN);
    //                fetch wait, fetch, chunk queue, redis read, prepare, sink, redis write, tail
    assert.deepEqual(at(0), [100, 20, 10, 5, 15, 40, 10, 1]);
    assert.deepEqual(at(1), [0, 10, 10, 5, 15, 40, 10, 1]);
    for (let i = 0; i < 2; i++)
      assert.equal(
        at(i).reduce((a, b) => a + b, 0),
        s.total[i],
      );
  });

  it('a chunk with no rows to write keeps the sum (missing moments collapse onto the next one); events before `since` are left out', () => {
    const trace = new ChunkTrace(1000);
    trace.putStart = 1010;
    trace.putEnd = 1020;
    const s = emptySamples();
    recordPhases(batch([900, 990]), trace, 1025, 950, s);
    assert.deepEqual(s.total, [35]);
    assert.equal(
      PHASES.reduce((sum, p) => sum + (s.byPhase[p][0] ?? 0), 0),
      35,
    );
    assert.equal(s.byPhase.sink[0], 0);
    const f = phaseFigures(s);
    assert.equal(f.find((x) => x.phase === 'redis write')?.p99Ms, 10);
  });
});
