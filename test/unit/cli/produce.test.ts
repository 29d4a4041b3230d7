import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { toBatches } from '../../../cli/commands/produce.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { decodeClick, decodeImpression, decodeLabelled } from '../../../streams/serde.js';

const NOW = Date.now();
const ev = (i: number, label: 0 | 1): LabelledEvent => ({
  eventId: `e${i}`,
  timeMs: NOW - 60_000 + i,
  userId: `u${i % 3}`,
  itemId: `i${i % 2}`,
  label,
  userFeatures: { gender: ['F'] },
  itemFeatures: { genre: ['Drama'] },
});
const cfg = {
  mode: 'labelled' as const,
  rekeyed: false,
  topic: 'T',
  clickDelayMs: 3000,
  byUserTopic: 'BU',
  byItemTopic: 'BI',
  impressionsTopic: 'IMP',
  clicksTopic: 'CLK',
};
const events = [ev(0, 1), ev(1, 0), ev(2, 1)];

describe('produce toBatches', () => {
  it('labelled: one topic keyed by event id, Avro that decodes back', () => {
    const [b, ...rest] = toBatches(cfg, events);
    assert.equal(rest.length, 0);
    assert.equal(b?.topic, 'T');
    assert.deepEqual(
      b?.messages.map((m) => m.key),
      ['e0', 'e1', 'e2'],
    );
    assert.deepEqual(decodeLabelled(b.messages[1]!.value), events[1]);
  });

  it('rekeyed: both entity topics, keyed by user and by item', () => {
    const [u, i] = toBatches({ ...cfg, rekeyed: true }, events);
    assert.equal(u?.topic, 'BU');
    assert.deepEqual(
      u?.messages.map((m) => m.key),
      ['u0', 'u1', 'u2'],
    );
    assert.equal(i?.topic, 'BI');
    assert.deepEqual(
      i?.messages.map((m) => m.key),
      ['i0', 'i1', 'i0'],
    );
  });

  it('impressions: every event an impression, positives a click clickDelayMs later', () => {
    const [imp, clk] = toBatches({ ...cfg, mode: 'impressions' }, events);
    assert.equal(imp?.topic, 'IMP');
    assert.equal(imp?.messages.length, 3);
    const first = decodeImpression(imp.messages[0]!.value);
    assert.equal(first.impressionId, 'e0');
    assert.deepEqual(first.itemFeatures, { genre: ['Drama'] });
    assert.equal(clk?.topic, 'CLK');
    assert.deepEqual(
      clk?.messages.map((m) => decodeClick(m.value)),
      [
        { impressionId: 'e0', timeMs: events[0]!.timeMs + 3000 },
        { impressionId: 'e2', timeMs: events[2]!.timeMs + 3000 },
      ],
    );
  });

  // The README's replay block selected nothing after `thaw produce`: its records were stamped with
  // the time of producing, so --from/--to in event time matched none of them.
  it('every record is stamped with its event time (a click with its own), as thaw rekey and the join do', () => {
    const times = events.map((e) => e.timeMs);
    for (const rekeyed of [false, true]) {
      for (const b of toBatches({ ...cfg, rekeyed }, events))
        assert.deepEqual(
          b.messages.map((m) => m.timestampMs),
          times,
          b.topic,
        );
    }
    const [imp, clk] = toBatches({ ...cfg, mode: 'impressions' }, events);
    assert.deepEqual(
      imp?.messages.map((m) => m.timestampMs),
      times,
    );
    assert.deepEqual(
      clk?.messages.map((m) => m.timestampMs),
      [times[0], times[2]].map((t) => (t ?? 0) + 3000),
    );
  });
});
