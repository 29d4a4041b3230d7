/**
 * Issue 14, elastic teachers: `thaw distill teach` members join and leave a group over the labelled
 * topic while it fills (0 → 2 → 1, the leaving member killed with -9 mid-stream). Every event must
 * then have exactly one soft label in the committed output (read_committed), scored by the teacher
 * release: none lost, none doubled. At least once (produce, then commit the input offsets) fails
 * this: the chunk in flight at the kill is scored again by the member that takes the partition over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReleaseStore } from '../../../model-store/releases.js';
import { initBackend } from '../../../models/backend.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { openSource } from '../../../sources/index.js';
import { deleteTopics, ensureTopics, topicOffsets, withAdmin } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { decodeSoftLabel, encodeLabelled, type SoftLabel } from '../../../streams/serde.js';
import { teacherFromRelease } from '../../../trainers/distill/teacher.js';
import { conn, uniqueName, waitFor } from '../streams/helpers.js';
import { duplicates, killHard, readCommitted, startThaw, type ThawProcess } from '../streams/kill-drill.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const STREAM = 20_000;
const HISTORY = 10_000;
const N = 3_000;
const CHUNK = 50;
const CHUNK_EVERY_MS = 100;

async function offsetsWritten(topic: string): Promise<number> {
  return withAdmin(conn, async (admin) => (await topicOffsets(admin, topic)).reduce((s, p) => s + p.high - p.low, 0));
}

void test('thaw distill teach, members 0 -> 2 -> 1 with a kill -9: exactly one soft label per event, from the teacher release', { timeout: 150_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'thaw-distill-teach-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const releaseDir = join(dir, 'releases');
  // The teacher: a DeepFM release of the stream's history, as users train it.
  const train = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'cli/dev.ts',
      'train',
      'deepfm',
      '--source',
      'synthetic',
      '--events',
      String(STREAM),
      '--history-events',
      String(HISTORY),
      '--epochs',
      '1',
      '--model',
      'teacher',
      '--release-dir',
      releaseDir,
    ],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, THAW_LOG_LEVEL: 'warn' } },
  );
  assert.equal(train.status, 0, train.stderr);
  const store = new ReleaseStore({ root: releaseDir });
  const version = await store.current('teacher');
  assert.ok(version !== undefined);

  const events: LabelledEvent[] = [];
  let i = 0;
  for await (const e of openSource({ kind: 'synthetic', events: STREAM })) {
    if (i++ >= HISTORY) events.push({ ...e, eventId: `e${i}` });
    if (events.length >= N) break;
  }

  const source = uniqueName('distill-src');
  const soft = uniqueName('distill-soft');
  const dlq = uniqueName('distill-dlq');
  const group = uniqueName('distill-group');
  await ensureTopics(
    conn,
    [source, soft, dlq].map((topic) => ({ topic, partitions: 3 })),
  );
  t.after(() => deleteTopics(conn, [source, soft, dlq]));

  const args = [
    'distill',
    'teach',
    '--source-topic',
    source,
    '--soft-label-topic',
    soft,
    '--dead-letter-topic',
    dlq,
    '--group-id',
    group,
    '--release-dir',
    releaseDir,
    '--teacher-model',
    'teacher',
    '--session-timeout-ms',
    '6000',
    '--max-batch-messages',
    '100',
  ];
  const members: ThawProcess[] = [];
  t.after(() => {
    for (const m of members) m.child.kill('SIGKILL');
  });

  const producer = new EventProducer({ kafka: conn });
  await producer.connect();
  const feeding = (async () => {
    for (let k = 0; k < N; k += CHUNK) {
      const msgs = events.slice(k, k + CHUNK).map((e) => ({ key: e.userId, value: encodeLabelled(e) }));
      await producer.send(source, msgs);
      await sleep(CHUNK_EVERY_MS);
    }
  })();
  try {
    // 0 members while the first events arrive; then 2 join; then one is killed mid-stream.
    await waitFor('first events in the labelled topic', async () => (await offsetsWritten(source)) >= N * 0.1, 60_000);
    members.push(startThaw(args), startThaw(args));
    await waitFor('soft labels past a third of the stream', async () => (await offsetsWritten(soft)) >= N / 3, 90_000);
    const killed = members[0];
    assert.ok(killed !== undefined);
    // Mid-stream: the killed member's partitions still have events to score.
    assert.ok((await offsetsWritten(soft)) < N, 'the kill came before every event was scored');
    await killHard(killed);
    await feeding;
  } finally {
    await producer.close();
  }

  let got: SoftLabel[] = [];
  await waitFor(
    `${N} committed soft labels`,
    async () => {
      got = (await readCommitted(soft)).map((m) => {
        assert.ok(m.value !== null);
        return decodeSoftLabel(m.value);
      });
      return got.length >= N;
    },
    90_000,
  ).catch(() => undefined);
  const survivor = members[1]?.stderr() ?? '';
  const ids = got.map((s) => s.eventId);
  const dup = duplicates(ids);
  assert.equal(dup.size, 0, `${dup.size} events with more than one soft label, e.g. ${[...dup].slice(0, 5).join(' ')}\n${survivor.slice(-2000)}`);
  assert.deepStrictEqual([...ids].sort(), events.map((e) => e.eventId).sort(), `every event once\n${survivor.slice(-2000)}`);

  // Scored by the teacher release: the same logits as the release scores in this process.
  assert.ok(got.every((s) => s.teacherRelease === `teacher/${version}`));
  await initBackend('auto');
  const teacher = teacherFromRelease(await store.load('teacher', version));
  const byId = new Map(got.map((s) => [s.eventId, s.teacherLogit]));
  const sample = events.filter((_, k) => k % 97 === 0);
  const want = teacher.logits(sample);
  sample.forEach((e, k) => assert.ok(Math.abs((byId.get(e.eventId) ?? NaN) - (want[k] ?? NaN)) < 1e-4, `logit of ${e.eventId}: ${byId.get(e.eventId)} vs ${want[k]}`));
  assert.ok(new Set(got.map((s) => s.teacherLogit)).size > N / 10, 'the teacher discriminates between events');
});
