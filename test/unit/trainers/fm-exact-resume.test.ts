/**
 * Issue 14, exact resume of the FM learner: its training state (parameters, accumulators, entity
 * replicas in LRU order, RNG, counters) saved mid-stream through a checkpoint file and restored into
 * a learner built afresh trains on to the same bits as a learner never stopped. Versioned
 * checkpoints keep the newest N.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabelledEvent } from '../../../schemas/types.js';
import { FactorizationMachine, mulberry32, Mulberry32 } from '../../../models/fm.js';
import { FmOnlineLearner } from '../../../trainers/online/fm-learner.js';
import { bytesArray, bytesValue, f64Array, f64Values, listCheckpoints, readCheckpointFile, writeVersionedCheckpoint } from '../../../trainers/checkpoint.js';

function events(n: number, seed: number): LabelledEvent[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => {
    const u = Math.floor(rand() * 40);
    const it = Math.floor(rand() * 90);
    return {
      eventId: `e${i}`,
      timeMs: 1_700_000_000_000 + i,
      userId: `u${u}`,
      itemId: `i${it}`,
      label: rand() < 0.3 ? 1 : 0,
      userFeatures: { age: [String(u % 5)] },
      itemFeatures: { cat: [String(it % 7)] },
    };
  });
}

const mk = (): FactorizationMachine => FactorizationMachine.create({ buckets: 512, k: 4, seed: 3, crossBuckets: 64 });
// Few replicas, so evictions (and their order) are part of what must resume exactly.
const opts = { entityDropout: 0.3, maxEntities: 25, metaLr: 0.05, teacher: { logitOf: (e: LabelledEvent) => (e.label === 1 ? 1.5 : -1), loss: { alpha: 0.4, temperature: 2 } } };

const bytes = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

void test('fm learner: training state through a checkpoint file resumes bit-exactly (parameters, replicas and their LRU order, RNG, counters)', () => {
  const evs = events(3000, 5);
  const whole = new FmOnlineLearner(mk(), opts);
  whole.observe(evs);

  const first = new FmOnlineLearner(mk(), opts);
  first.observe(evs.slice(0, 1234));
  const dir = mkdtempSync(join(tmpdir(), 'thaw-fm-resume-'));
  try {
    const file = writeVersionedCheckpoint(dir, 'on-0000000001234-x', { meta: {}, arrays: first.trainingState() }, 2);
    // Resumed into a learner of a different (untrained) starting point: everything comes from the file.
    const resumed = new FmOnlineLearner(FactorizationMachine.create({ buckets: 512, k: 4, seed: 99, crossBuckets: 64 }), opts);
    resumed.restoreTrainingState(readCheckpointFile(file).arrays);
    resumed.observe(evs.slice(1234));
    const a = whole.trainingState();
    const b = resumed.trainingState();
    assert.deepStrictEqual([...b.keys()].sort(), [...a.keys()].sort());
    for (const [name, arr] of a) assert.ok(bytes(arr).equals(bytes(b.get(name) ?? new Float32Array())), `${name} differs`);
    assert.deepStrictEqual(resumed.stats(), whole.stats());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('fm learner: a checkpoint of another shape is refused with STATE_CORRUPT', () => {
  const small = new FmOnlineLearner(FactorizationMachine.create({ buckets: 256, k: 4 }), {});
  const big = new FmOnlineLearner(mk(), {});
  assert.throws(() => big.restoreTrainingState(small.trainingState()), { code: 'STATE_CORRUPT' });
});

void test('versioned checkpoints: atomic files named by version, the newest N kept, temporary leftovers removed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'thaw-ckpt-'));
  try {
    for (let i = 1; i <= 5; i++) writeVersionedCheckpoint(dir, `on-${String(i).padStart(13, '0')}-h`, { meta: { i }, arrays: new Map([['x', Float32Array.of(i)]]) }, 3);
    assert.deepStrictEqual(
      listCheckpoints(dir).map((f) => readCheckpointFile(f).meta.i),
      [3, 4, 5],
    );
    assert.deepStrictEqual(
      readdirSync(dir).filter((f) => f.includes('.tmp-')),
      [],
    );
    assert.throws(() => writeVersionedCheckpoint(dir, '../x', { meta: {}, arrays: new Map() }, 3), { code: 'USAGE' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('checkpoint helpers: doubles and bytes ride in float arrays bit-exactly; Mulberry32 draws what mulberry32 draws', () => {
  const xs = [0.1, -1e300, Number.MIN_VALUE, 2 ** 53 + 2, NaN];
  assert.deepStrictEqual([...f64Values(f64Array(xs))], xs);
  assert.equal(bytesValue(bytesArray(Buffer.from('["ü",1]'))).toString('utf8'), '["ü",1]');
  const f = mulberry32(42);
  const g = new Mulberry32(42);
  for (let i = 0; i < 100; i++) assert.equal(g.next(), f());
});
