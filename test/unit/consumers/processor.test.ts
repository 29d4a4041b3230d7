import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchProcessor, type BatchItem } from '../../../consumers/processor.js';
import { createAdapter } from '../../../adapters/registry.js';
import { ConfigError } from '../../../lib/errors.js';
import { MemoryEntityStore } from '../../../model-store/memory-store.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { syntheticStream } from '../../../sources/synthetic.js';
import type { StateScope } from '../../../model-store/types.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { RecordingSink, SharingStore, ToyAdapter, toyEvents } from './fakes.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'toy' };

function setup(): { store: SharingStore; sink: RecordingSink; adapter: ToyAdapter; proc: BatchProcessor } {
  const store = new SharingStore();
  const sink = new RecordingSink();
  const adapter = new ToyAdapter('item');
  return { store, sink, adapter, proc: new BatchProcessor({ adapter, store, sink, scope }) };
}

function items(events: readonly LabelledEvent[], firstOffset = 0): BatchItem[] {
  return events.map((event, i) => ({ offset: firstOffset + i, event }));
}

/** Reference: every event in its own call, so no waves are involved at all. */
async function oneAtATime(all: readonly BatchItem[]): Promise<ReturnType<typeof setup>> {
  const ref = setup();
  for (const it of all) await ref.proc.process([it]);
  return ref;
}

describe('BatchProcessor', () => {
  it('keeps per-entity order across waves: same scores, prior counts and states as one event at a time', async () => {
    const base = toyEvents(6, 10);
    // Item A three times, B twice, C once, interleaved.
    const pattern = ['A', 'B', 'A', 'C', 'A', 'B'];
    const events = base.map((e, i) => ({ ...e, itemId: pattern[i] as string }));
    const all = items(events, 100);

    const batched = setup();
    const res = await batched.proc.process(all);
    assert.equal(res.processed, 6);
    assert.equal(res.skipped, 0);
    assert.equal(res.entities, 3);
    assert.equal(res.newEntities, 3);
    assert.equal(res.waves, 3);
    assert.equal(batched.adapter.predictCalls, 3, 'one predictThenAdapt per wave');
    assert.deepEqual(
      batched.sink.rows.filter((r) => r.entityId === 'A').map((r) => r.priorCount),
      [0, 1, 2],
    );
    // Rows stay in offset order.
    assert.deepEqual(
      batched.sink.rows.map((r) => r.eventId),
      events.map((e) => e.eventId),
    );

    const ref = await oneAtATime(all);
    assert.deepEqual(batched.sink.rows, ref.sink.rows);
    assert.deepEqual(batched.store.snapshot(), ref.store.snapshot());
    const a = batched.store.snapshot().get('live:item:toy:A');
    assert.equal(a?.count, 3);
    assert.equal(a?.lastOffset, 104);
    assert.equal(a?.lastEventMs, events[4]?.timeMs);
  });

  it('matches the one-at-a-time run on a longer random stream split into random batches', async () => {
    const all = items(toyEvents(600, 25, 7));
    const ref = await oneAtATime(all);
    const batched = setup();
    let at = 0;
    let size = 1;
    while (at < all.length) {
      await batched.proc.process(all.slice(at, at + size));
      at += size;
      size = ((size * 7 + 3) % 97) + 1;
    }
    assert.equal(batched.sink.rows.length, 600);
    assert.deepEqual(batched.sink.rows, ref.sink.rows);
    assert.deepEqual(batched.store.snapshot(), ref.store.snapshot());
  });

  it('skips redelivered offsets and counts them', async () => {
    const all = items(toyEvents(200, 8, 3));
    const once = setup();
    await once.proc.process(all);

    const twice = setup();
    await twice.proc.process(all.slice(0, 120));
    // Redelivery of a range overlapping what was applied, then the rest.
    const res = await twice.proc.process(all.slice(80, 160));
    assert.equal(res.skipped, 40);
    assert.equal(res.processed, 40);
    const res2 = await twice.proc.process(all);
    assert.equal(res2.skipped, 160);
    assert.equal(res2.processed, 40);

    assert.deepEqual(twice.sink.rows, once.sink.rows, 'no event logged twice');
    assert.deepEqual(twice.store.snapshot(), once.store.snapshot());

    const res3 = await twice.proc.process(all.slice(0, 50));
    assert.deepEqual([res3.processed, res3.skipped, res3.waves], [0, 50, 0]);
    assert.equal(twice.store.puts, 3, 'a batch of only redeliveries writes nothing');
  });

  it('writes no state when the sink fails, and the retry gives the uninterrupted result', async () => {
    const all = items(toyEvents(300, 10, 5));
    const ref = setup();
    await ref.proc.process(all.slice(0, 150));
    await ref.proc.process(all.slice(150));

    const t = setup();
    await t.proc.process(all.slice(0, 150));
    const before = t.store.snapshot();
    t.sink.failNext = 1;
    await assert.rejects(t.proc.process(all.slice(150)), /sink down/);
    assert.equal(t.store.puts, 1, 'putMany not called after a failed sink write');
    assert.deepEqual(t.store.snapshot(), before, 'loaded states were not mutated in place');

    await t.proc.process(all.slice(150));
    assert.deepEqual(t.sink.rows, ref.sink.rows);
    assert.deepEqual(t.store.snapshot(), ref.store.snapshot());
  });

  it('recomputes identical rows when rows were durable but states were not (crash between sink and store)', async () => {
    const all = items(toyEvents(100, 6, 9));
    const t = setup();
    const originalPut = t.store.putMany.bind(t.store);
    t.store.putMany = () => Promise.reject(new Error('crash before state write'));
    await assert.rejects(t.proc.process(all), /crash/);
    const firstRows = t.sink.rows.splice(0);
    t.store.putMany = originalPut;
    await t.proc.process(all);
    assert.deepEqual(t.sink.rows, firstRows, 'redelivery recomputes the same scores for the log to de-duplicate');
  });

  it('does not touch the sink when loading fails', async () => {
    const t = setup();
    t.store.failGets = true;
    await assert.rejects(t.proc.process(items(toyEvents(10, 3))), /store down/);
    assert.equal(t.sink.rows.length, 0);
    assert.equal(t.store.puts, 0);
  });

  it('handles an empty batch without round trips', async () => {
    const t = setup();
    const res = await t.proc.process([]);
    assert.deepEqual([res.processed, res.skipped, res.entities, t.store.gets, t.store.puts], [0, 0, 0, 0, 0]);
    assert.ok(res.timings.totalMs >= 0);
  });

  it('uses the user id on the user side and fills row metadata', async () => {
    const store = new SharingStore();
    const sink = new RecordingSink();
    const adapter = new ToyAdapter('user');
    const proc = new BatchProcessor({ adapter, store, sink, scope: { namespace: 'replay-1', side: 'user', adapter: 'toy' } });
    const evs = toyEvents(20, 4);
    await proc.process(items(evs));
    const row = sink.rows[0];
    assert.equal(row?.entityId, evs[0]?.userId);
    assert.deepEqual([row?.side, row?.adapter, row?.release, row?.namespace], ['user', 'toy', 'toy-1', 'replay-1']);
    assert.ok([...store.data.keys()].every((k) => k.startsWith('replay-1:user:toy:u')));
  });

  it('refuses a scope that does not match the adapter', () => {
    const base = { store: new SharingStore(), sink: new RecordingSink(), adapter: new ToyAdapter('item') };
    assert.throws(
      () => new BatchProcessor({ ...base, scope: { ...scope, side: 'user' } }),
      (e: unknown) => e instanceof ConfigError && e.key === 'scope.side',
    );
    assert.throws(
      () => new BatchProcessor({ ...base, scope: { ...scope, adapter: 'other' } }),
      (e: unknown) => e instanceof ConfigError && e.key === 'scope.adapter',
    );
    assert.throws(
      () => new BatchProcessor({ ...base, scope: { ...scope, namespace: '' } }),
      (e: unknown) => e instanceof ConfigError && e.key === 'scope.namespace',
    );
  });

  it('refuses the safeguard over a store without atomic multi-scope writes (a failed write could keep the states and lose the safeguard)', () => {
    const model = FactorizationMachine.create({ buckets: 4096, k: 4, seed: 3 });
    const adapter = createAdapter('fm-adagrad', 'item', model);
    const fmScope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
    const perScope = new MemoryEntityStore();
    // The single-scope calls only: what putScoped then does is write the scopes one after the other.
    const store = { getMany: perScope.getMany.bind(perScope), putMany: perScope.putMany.bind(perScope), close: perScope.close.bind(perScope) };
    assert.throws(
      () => new BatchProcessor({ adapter, store, sink: new RecordingSink(), scope: fmScope }),
      (e: unknown) => e instanceof ConfigError && e.key === 'safeguard' && /putManyScoped/.test(e.message),
    );
    assert.doesNotThrow(() => new BatchProcessor({ adapter, store, sink: new RecordingSink(), scope: fmScope, safeguard: false }));
    assert.doesNotThrow(() => new BatchProcessor({ adapter, store: perScope, sink: new RecordingSink(), scope: fmScope }));
  });

  it('fm-adagrad over MemoryEntityStore: batched waves give the same rows and states as one event at a time', async () => {
    const model = FactorizationMachine.create({ buckets: 4096, k: 4, seed: 3 });
    const evs = [...syntheticStream({ seed: 11, events: 1500, users: 200, items: 40 }).events()];
    const all = items(evs);
    const fmScope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
    const run = async (batchSize: number) => {
      const store = new MemoryEntityStore();
      const sink = new RecordingSink();
      const proc = new BatchProcessor({ adapter: createAdapter('fm-adagrad', 'item', model), store, sink, scope: fmScope });
      let waves = 0;
      for (let at = 0; at < all.length; at += batchSize) waves = Math.max(waves, (await proc.process(all.slice(at, at + batchSize))).waves);
      const ids = [...new Set(evs.map((e) => e.itemId))];
      return { rows: sink.rows, states: await store.getMany(fmScope, ids), waves };
    };
    const one = await run(1);
    const batched = await run(500);
    assert.ok(batched.waves > 5, 'popular items make many waves');
    assert.equal(batched.rows.length, 1500);
    assert.deepEqual(batched.rows, one.rows);
    assert.deepEqual(batched.states, one.states);
    assert.equal(
      batched.states.reduce((n, s) => n + (s?.count ?? 0), 0),
      1500,
    );
  });
});
