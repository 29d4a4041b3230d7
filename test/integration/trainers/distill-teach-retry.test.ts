/**
 * Issue 14, "a failed teacher call is retried elsewhere": two teacher workers share a group over a
 * 3-partition labelled topic; one worker's teacher fails every call (a release that cannot load, an
 * inference error). It retries, gives up with TEACHER_FAILED, commits nothing and leaves the group;
 * the other worker takes its partitions. Every event then has exactly one committed soft label, all
 * from the working teacher. Real broker, own topics and group; the teachers are stubs (scoring is
 * not what is tested here, and a real teacher release costs a training run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ReleaseWatcher } from '../../../model-store/release-sync.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { decodeSoftLabel, encodeLabelled } from '../../../streams/serde.js';
import { TeachWorker } from '../../../trainers/distill/teach-worker.js';
import type { TeacherScorer } from '../../../trainers/distill/teacher.js';
import { conn, readTopic, uniqueName } from '../streams/helpers.js';
import { duplicates } from '../streams/kill-drill.js';

const N = 600;

/** A watcher holding one fixed teacher (what TeachWorker uses of a ReleaseWatcher). */
function fixedTeacher(release: string, logits: (events: readonly LabelledEvent[]) => Float32Array): ReleaseWatcher<TeacherScorer> {
  const scorer = { release, logits, dispose: () => undefined } as unknown as TeacherScorer;
  return { activeRelease: () => ({ value: scorer }), take: () => undefined, stop: () => Promise.resolve() } as unknown as ReleaseWatcher<TeacherScorer>;
}

void test('distill teach: a worker whose teacher keeps failing retries, leaves the group, and another scores its partitions; one soft label per event', { timeout: 90_000 }, async (t) => {
  const source = uniqueName('teach-retry-src');
  const soft = uniqueName('teach-retry-soft');
  const dlq = uniqueName('teach-retry-dlq');
  const group = uniqueName('teach-retry-group');
  await ensureTopics(
    conn,
    [source, soft, dlq].map((topic) => ({ topic, partitions: 3 })),
  );
  t.after(() => deleteTopics(conn, [source, soft, dlq]));
  const events: LabelledEvent[] = Array.from({ length: N }, (_, i) => ({
    eventId: `e${i}`,
    timeMs: 1_700_000_000_000 + i,
    userId: `u${i % 17}`,
    itemId: `i${i % 29}`,
    label: i % 3 === 0 ? 1 : 0,
    userFeatures: {},
    itemFeatures: {},
  }));
  const producer = new EventProducer({ kafka: conn });
  await producer.connect();
  try {
    await producer.send(
      source,
      events.map((e) => ({ key: e.itemId, value: encodeLabelled(e) })),
    );
  } finally {
    await producer.close();
  }

  let badCalls = 0;
  const common = {
    kafka: conn,
    groupId: group,
    sourceTopic: source,
    softLabelTopic: soft,
    deadLetterTopic: dlq,
    consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 600, maxBatchMessages: 100 },
  };
  const bad = new TeachWorker({
    ...common,
    teachers: fixedTeacher('teacher/bad', () => {
      badCalls++;
      throw new Error('teacher inference failed');
    }),
    retry: { retries: 2, minTimeoutMs: 10, maxTimeoutMs: 20 },
  });
  const good = new TeachWorker({ ...common, teachers: fixedTeacher('teacher/good', (evs) => Float32Array.from(evs, (e) => Number(e.eventId.slice(1)) / 100)) });
  t.after(() => Promise.all([bad.stop(), good.stop()]));
  await bad.start();
  await good.start();

  const failure = await bad.failed();
  assert.equal(failure.code, 'TEACHER_FAILED');
  await bad.stop();
  assert.ok(badCalls >= 3, `the failing teacher was retried: ${badCalls} calls`);
  assert.equal(bad.stats.softLabels, 0);
  assert.ok(bad.stats.teacherRetries >= 2);

  const records = await readTopic(soft, N, 60_000);
  const labels = records.map((r) => decodeSoftLabel(r.value ?? Buffer.alloc(0)));
  assert.deepStrictEqual([...duplicates(labels.map((l) => l.eventId))], [], 'no event scored twice');
  assert.equal(new Set(labels.map((l) => l.eventId)).size, N, 'every event scored');
  assert.deepStrictEqual(new Set(labels.map((l) => l.teacherRelease)), new Set(['teacher/good']));
  for (const l of labels) assert.ok(Math.abs(l.teacherLogit - Number(l.eventId.slice(1)) / 100) < 1e-4);
});
