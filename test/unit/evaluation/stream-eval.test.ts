import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChdbSink } from '../../../analytics/chdb-sink.js';
import { BUCKETS } from '../../../analytics/types.js';
import { batchEnd } from '../../../evaluation/stream/lockstep.js';
import { streamEvalJson } from '../../../evaluation/stream/report.js';
import { readStream, runStreamEval, type StreamEvalResult } from '../../../evaluation/stream/run.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import type { SourceSpec } from '../../../sources/index.js';

const SOURCE: SourceSpec = { kind: 'synthetic', events: 12_000, users: 400, items: 300, seed: 5 };
const SYNC = 2_000;

describe('thaw eval --protocol stream on a small synthetic stream', () => {
  let dir: string;
  let result: StreamEvalResult;
  let events: LabelledEvent[];
  let stored: { event_id: string; side: string; prior_count: number; release: string; adapter: string }[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'thaw-eval-stream-'));
    events = await readStream(SOURCE);
    result = await runStreamEval({ source: SOURCE, adapters: ['fm-adagrad'], syncEvery: SYNC, peers: ['counts'], out: dir, progressStream: { write: () => true } });
    const chdb = new ChdbSink({ dataDir: result.chdbDir });
    try {
      stored = (await chdb.query('SELECT event_id, side, prior_count, release, adapter FROM thaw.predictions')) as typeof stored;
    } finally {
      await chdb.close();
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('scores every event after the history once per side and method, in every bucket and the pooled 1-5', () => {
    const scored = events.length - result.windowFrom;
    assert.equal(result.windowFrom, Math.floor(events.length * 0.2));
    for (const side of ['user', 'item'] as const) {
      for (const adapter of ['fm-adagrad', 'none', 'counts']) {
        const rows = result.rows.filter((r) => r.side === side && r.adapter === adapter);
        assert.equal(
          rows.filter((r) => r.bucket !== '1-5').reduce((a, r) => a + r.n, 0),
          scored,
          `${side} ${adapter}`,
        );
        const early = rows.find((r) => r.bucket === '1-5')?.n;
        assert.equal(early, (rows.find((r) => r.bucket === '1-2')?.n ?? 0) + (rows.find((r) => r.bucket === '3-5')?.n ?? 0));
        for (const r of rows) assert.ok(r.auc > 0.4 && r.auc < 1 && r.logLoss > 0, JSON.stringify(r));
      }
    }
    assert.equal(stored.length, scored * 2 * 3);
    // The JSON document has the documented shape.
    const json = streamEvalJson(result) as {
      events: number;
      windowFrom: number;
      rows: { side: string; adapter: string; release: string; bucket: string; n: number; auc: number | null; logLoss: number | null }[];
    };
    assert.equal(json.events, events.length);
    assert.deepEqual(Object.keys(json.rows[0] ?? {}), ['side', 'adapter', 'release', 'bucket', 'n', 'auc', 'logLoss']);
    assert.ok(json.rows.some((r) => r.adapter === 'counts' && r.release === 'peer'));
    assert.ok([...BUCKETS, '1-5'].every((b) => json.rows.some((r) => r.bucket === b)));
  });

  it("logs each row with its entity's prior count from the start of the stream (a recount)", () => {
    const recount = new Map<string, number>();
    for (const side of ['user', 'item'] as const) {
      const seen = new Map<string, number>();
      for (const e of events) {
        const id = side === 'user' ? e.userId : e.itemId;
        const c = seen.get(id) ?? 0;
        recount.set(`${side}|${e.eventId}`, c);
        seen.set(id, c + 1);
      }
    }
    for (const r of stored) assert.equal(Number(r.prior_count), recount.get(`${r.side}|${r.event_id}`), `${r.adapter} ${r.side} ${r.event_id}`);
  });

  it('switches in a release trained online every sync interval, at a batch boundary, and scores after it with it', () => {
    const switches = result.replay.firstSwitches;
    assert.equal(result.replay.switches, Math.ceil((events.length - result.windowFrom) / SYNC) - 1);
    let expected = result.windowFrom;
    for (const s of switches) {
      expected += SYNC;
      assert.equal(s.family, 'fm');
      // The first batch boundary at or after the sync point (no batch straddles it).
      assert.ok(s.offset >= expected && s.offset < expected + 64, `switch at ${s.offset}, sync point ${expected}`);
      expected = s.offset;
      assert.equal(s.release, `fm/on-${s.offset}`);
    }
    const position = new Map(events.map((e, j) => [e.eventId, j]));
    const releaseAt = (j: number): string => [...switches].reverse().find((s) => s.offset <= j)?.release ?? 'fm/history';
    for (const r of stored.filter((x) => x.adapter !== 'counts')) {
      const j = position.get(r.event_id) ?? -1;
      assert.equal(r.release, releaseAt(j), `event ${j}`);
    }
  });

  it('cuts micro-batches before the first repeated user or item', () => {
    const evs = ['a1', 'b2', 'c1', 'a3', 'd4'].map((ui, j) => ({ ...(events[0] as LabelledEvent), eventId: `e${j}`, userId: ui[0] ?? '', itemId: ui[1] ?? '' }));
    assert.equal(batchEnd(evs, 0, evs.length, 100), 2, 'item 1 repeats at position 2');
    assert.equal(batchEnd(evs, 2, evs.length, 100), 5);
    assert.equal(batchEnd(evs, 2, 4, 100), 4, 'never past the limit (the history end)');
    assert.equal(batchEnd(evs, 2, evs.length, 1), 3);
  });
});
