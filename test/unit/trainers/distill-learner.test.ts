import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LabelledEvent } from '../../../schemas/types.js';
import { FactorizationMachine, mulberry32 } from '../../../models/fm.js';
import { FmOnlineLearner } from '../../../trainers/online/fm-learner.js';
import { SoftLabelJoin } from '../../../trainers/distill/soft-label-join.js';
import { onlineKdHooks } from '../../../trainers/distill/online-kd.js';
import type { TeacherScorer } from '../../../trainers/distill/teacher.js';

function events(n: number, seed: number): LabelledEvent[] {
  const rand = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => {
    const u = Math.floor(rand() * 40);
    const it = Math.floor(rand() * 60);
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

const mk = (): FactorizationMachine => FactorizationMachine.create({ buckets: 512, k: 4, seed: 3 });

void test('fm learner with a teacher: alpha 1, or no soft label, trains exactly as without one', () => {
  const evs = events(2000, 1);
  const plain = new FmOnlineLearner(mk(), { entityDropout: 0.3 });
  const alpha1 = new FmOnlineLearner(mk(), { entityDropout: 0.3, teacher: { logitOf: () => 3, loss: { alpha: 1, temperature: 2 } } });
  const none = new FmOnlineLearner(mk(), { entityDropout: 0.3, teacher: { logitOf: () => undefined, loss: { alpha: 0.2, temperature: 2 } } });
  for (const l of [plain, alpha1, none]) l.observe(evs);
  assert.deepStrictEqual(Buffer.from(alpha1.fm.toBuffer()), Buffer.from(plain.fm.toBuffer()));
  assert.deepStrictEqual(Buffer.from(none.fm.toBuffer()), Buffer.from(plain.fm.toBuffer()));
});

void test('fm learner with a teacher: soft labels pull the student toward the teacher', () => {
  const evs = events(4000, 2);
  // A teacher that is sure every event is a click; the hard labels say 30 %.
  const student = new FmOnlineLearner(mk(), { entityDropout: 0, teacher: { logitOf: () => 4, loss: { alpha: 0, temperature: 1 } } });
  const plain = new FmOnlineLearner(mk(), { entityDropout: 0 });
  student.observe(evs);
  plain.observe(evs);
  assert.ok(student.fm.w0 > plain.fm.w0 + 0.5, `shared bias follows the teacher: ${student.fm.w0} vs ${plain.fm.w0}`);
});

void test('soft-label join: an event whose soft label is missing after the wait trains on the hard label and is counted late', async () => {
  const join = new SoftLabelJoin({ kafka: { brokers: ['127.0.0.1:1'], clientId: 'unused' }, topic: 'unused', waitMs: 0 });
  const evs = events(3, 3);
  join.add('e0', 1.5);
  join.add('e2', -0.5);
  await join.ready(evs);
  assert.deepStrictEqual(
    evs.map((e) => join.take(e)),
    [1.5, undefined, -0.5],
  );
  assert.deepStrictEqual({ joined: join.stats.joined, late: join.stats.late }, { joined: 2, late: 1 });
  // Taken soft labels leave the map: a redelivered event finds none.
  assert.equal(join.take(evs[0] ?? assert.fail()), undefined);
});

void test('online distillation hooks: the teacher scores each chunk in the loop; the student gets those logits, and none for events of other chunks', async () => {
  const evs = events(10, 4);
  const calls: number[] = [];
  const teacher = {
    release: 'teacher/t',
    logits: (chunk: readonly LabelledEvent[]) => (calls.push(chunk.length), Float32Array.from(chunk, (e) => Number(e.eventId.slice(1)))),
    dispose: () => undefined,
  } as unknown as TeacherScorer;
  const hooks = onlineKdHooks(teacher);
  await hooks.beforeObserve(evs.slice(0, 6));
  assert.deepStrictEqual(
    evs.slice(0, 6).map((e) => hooks.logitOf(e)),
    [0, 1, 2, 3, 4, 5],
  );
  await hooks.beforeObserve(evs.slice(6));
  assert.equal(hooks.logitOf(evs[0] ?? ({ eventId: 'none' } as LabelledEvent)), undefined);
  assert.equal(hooks.logitOf(evs[9] ?? ({ eventId: 'none' } as LabelledEvent)), 9);
  assert.deepStrictEqual(calls, [6, 4]);
});
