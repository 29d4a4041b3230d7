/**
 * Issue 14, the student trainer: `thaw distill learn` as users run it joins the labelled topic with
 * the soft-label topic by event id. Events whose soft label never comes train on the hard label
 * alone after --soft-label-wait-ms and are counted late; the others are joined; a release of the
 * student is published every --sync-every events and every --sync-interval-ms (the interval makes
 * the last events' release come: a count threshold crossed at chunk boundaries may never reach N
 * exactly), and SIGTERM drains the last one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ReleaseStore } from '../../../model-store/releases.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { openSource } from '../../../sources/index.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { encodeLabelled, encodeSoftLabel } from '../../../streams/serde.js';
import { conn, uniqueName, waitFor } from '../streams/helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const N = 2000;

interface ReleaseLine {
  release: string;
  events: number;
  softLabels: { joined: number; late: number };
}

void test('thaw distill learn: joined soft labels train the student, missing ones fall back to the hard label and are counted', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'thaw-distill-learn-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const releaseDir = join(dir, 'releases');
  const train = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'cli/dev.ts', 'train', 'fm', '--source', 'synthetic', '--max-events', '8000', '--epochs', '1', '--model', 'student', '--release-dir', releaseDir],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, THAW_LOG_LEVEL: 'warn' } },
  );
  assert.equal(train.status, 0, train.stderr);
  const base = await new ReleaseStore({ root: releaseDir }).current('student');
  assert.ok(base !== undefined);

  const events: LabelledEvent[] = [];
  let i = 0;
  for await (const e of openSource({ kind: 'synthetic', events: 20_000 })) {
    if (i++ >= 10_000) events.push({ ...e, eventId: `e${i}` });
    if (events.length >= N) break;
  }
  const labelled = uniqueName('distill-labelled');
  const soft = uniqueName('distill-soft');
  await ensureTopics(
    conn,
    [labelled, soft].map((topic) => ({ topic, partitions: 2 })),
  );
  t.after(() => deleteTopics(conn, [labelled, soft]));
  // Every 10th event never gets a soft label.
  const producer = new EventProducer({ kafka: conn });
  await producer.connect();
  try {
    await producer.send(
      soft,
      events.filter((_, k) => k % 10 !== 0).map((e, k) => ({ key: e.eventId, value: encodeSoftLabel({ eventId: e.eventId, teacherLogit: (k % 7) - 3, teacherRelease: 'teacher/t1' }) })),
    );
    await producer.send(
      labelled,
      events.map((e) => ({ key: e.itemId, value: encodeLabelled(e) })),
    );
  } finally {
    await producer.close();
  }

  const args = [
    'distill',
    'learn',
    '--model',
    'student',
    '--release-dir',
    releaseDir,
    '--labelled-topic',
    labelled,
    '--soft-label-topic',
    soft,
    '--group-id',
    uniqueName('distill-learn'),
    '--soft-label-wait-ms',
    '3000',
    '--sync-every',
    '1000',
    '--sync-interval-ms',
    '2000',
    '--alpha',
    '0.3',
    '--temperature',
    '2',
  ];
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/dev.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, THAW_KAFKA: conn.brokers.join(','), THAW_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const lines = (): ReleaseLine[] =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as ReleaseLine);
  await waitFor('a release covering every event', () => lines().some((l) => l.events >= N), 90_000).catch(() => assert.fail(`no release covering ${N} events\n${stdout}\n${stderr.slice(-2000)}`));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr.slice(-2000));
  const last = lines().at(-1);
  assert.ok(last !== undefined);
  assert.deepStrictEqual({ joined: last.softLabels.joined, late: last.softLabels.late }, { joined: N - N / 10, late: N / 10 }, stderr.slice(-2000));
  const store = new ReleaseStore({ root: releaseDir });
  assert.equal(await store.current('student'), last.release, 'the newest student release is promoted');
  assert.notEqual(last.release, base);
});
