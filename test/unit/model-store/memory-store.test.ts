import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ThawError } from '../../../lib/errors.js';
import { MemoryEntityStore } from '../../../model-store/memory-store.js';
import type { EntityState, StateScope } from '../../../model-store/types.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
const st = (offset: number, v = offset): EntityState => ({ count: offset + 1, lastOffset: offset, lastEventMs: 1000 + offset, params: Float32Array.from([v, v / 2]) });

void test('CAS: older or equal offsets are skipped, newer written, within and across batches', async () => {
  const m = new MemoryEntityStore();
  assert.deepEqual(
    await m.putMany(scope, [
      { entityId: 'a', state: st(5) },
      { entityId: 'a', state: st(3) },
      { entityId: 'b', state: st(1) },
    ]),
    { written: 2, skipped: 1 },
  );
  assert.deepEqual(
    await m.putMany(scope, [
      { entityId: 'a', state: st(5, 99) },
      { entityId: 'b', state: st(2) },
    ]),
    { written: 1, skipped: 1 },
  );
  const [a, b, c] = await m.getMany(scope, ['a', 'b', 'c']);
  assert.deepEqual(a, st(5));
  assert.deepEqual(b, st(2));
  assert.equal(c, undefined);
});

void test('scopes are isolated and returned states are copies', async () => {
  const m = new MemoryEntityStore();
  await m.putMany(scope, [{ entityId: 'a', state: st(1) }]);
  assert.deepEqual(await m.getMany({ ...scope, namespace: 'replay-1' }, ['a']), [undefined]);
  assert.deepEqual(await m.getMany({ ...scope, side: 'user' }, ['a']), [undefined]);
  const [got] = await m.getMany(scope, ['a']);
  got!.params[0] = 1234;
  assert.deepEqual(await m.getMany(scope, ['a']), [st(1)]);
});

void test('snapshot round trip, atomic write, corrupt file rejected', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'thaw-snap-'));
  try {
    const m = new MemoryEntityStore();
    const ids = ['plain', 'ünïcødé {x}', '', 'x'.repeat(300)];
    await m.putMany(
      scope,
      ids.map((entityId, i) => ({ entityId, state: st(i) })),
    );
    await m.putMany({ namespace: 'replay-a', side: 'user', adapter: 'none' }, [{ entityId: 'u1', state: st(9) }]);
    const path = join(dir, 'states.snap');
    await m.saveSnapshot(path);
    await m.saveSnapshot(path); // overwrite in place
    assert.deepEqual(await readdir(dir), ['states.snap'], 'no temp file left behind');
    const loaded = await MemoryEntityStore.loadSnapshot(path);
    assert.equal(loaded.size, 5);
    assert.deepEqual(
      await loaded.getMany(scope, ids),
      ids.map((_, i) => st(i)),
    );
    assert.deepEqual(await loaded.getMany({ namespace: 'replay-a', side: 'user', adapter: 'none' }, ['u1']), [st(9)]);

    const bytes = await readFile(path);
    await writeFile(join(dir, 'cut.snap'), bytes.subarray(0, bytes.length - 3));
    await assert.rejects(MemoryEntityStore.loadSnapshot(join(dir, 'cut.snap')), (e: unknown) => e instanceof ThawError && e.code === 'STATE_CORRUPT');
    await writeFile(join(dir, 'magic.snap'), Buffer.concat([Buffer.from('XXXX'), bytes.subarray(4)]));
    await assert.rejects(MemoryEntityStore.loadSnapshot(join(dir, 'magic.snap')), /bad magic/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

void test('progress is written with the states (max of the offsets), per scope and partition', async () => {
  const store = new MemoryEntityStore();
  const scope = { namespace: 'live', side: 'item', adapter: 'fm' } as const;
  const state = { count: 1, lastOffset: 9, lastEventMs: 1, params: Float32Array.of(1) };
  await store.putManyScoped([{ scope, entries: [{ entityId: 'a', state }] }], { scope, topic: 't', partition: 2, offset: 9 });
  await store.putManyScoped([], { scope, topic: 't', partition: 2, offset: 4 });
  assert.equal(await store.getProgress(scope, 't', 2), 9, 'never moves back');
  assert.equal(await store.getProgress(scope, 't', 3), undefined);
  assert.equal(await store.getProgress({ ...scope, adapter: 'none' }, 't', 2), undefined);
});
