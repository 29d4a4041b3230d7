/**
 * Issue 14, exact resume: `thaw distill learn` stopped with SIGTERM, resumed with --resume, killed
 * with -9 after a checkpoint, resumed again, ends with the same bits as a run that was never stopped.
 * One labelled partition, so both runs see the events in one order; every soft label is in the topic
 * before the student starts, so no event is late in either run (lateness depends on timing).
 *
 * Run A trains on all N events at once. Run B gets them in three parts: B1 trains the first part and
 * is stopped with SIGTERM (its drain publishes and checkpoints); B2 resumes, trains the second part,
 * and is killed with -9 right after its first release (training past it is lost); B3 resumes from
 * the newest checkpoint and trains to the end. The newest releases of both lineages must hold
 * byte-equal parameters (weights.bin), and their newest checkpoints byte-equal arrays (parameters, optimiser
 * accumulators, entity replicas, RNG, counters, the soft-label join's pending buffer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ReleaseStore } from '../../../model-store/releases.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { openSource } from '../../../sources/index.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { encodeLabelled, encodeSoftLabel } from '../../../streams/serde.js';
import { listCheckpoints, readCheckpointFile } from '../../../trainers/checkpoint.js';
import { onlineCheckpointDir } from '../../../trainers/online-trainer.js';
import { newestOwnRelease } from '../../../trainers/online/offsets.js';
import { conn, uniqueName, waitFor } from '../streams/helpers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const N = 3000;
const PARTS = [1000, 2000, N];

interface Run {
  child: ChildProcessByStdio<null, Readable, Readable>;
  lines: () => { release: string; events: number }[];
  stderr: () => string;
  exited: Promise<number | null>;
}

void test('thaw distill learn --resume: SIGTERM, resume, kill -9 after a checkpoint, resume: bit-equal to an uninterrupted run', { timeout: 150_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'thaw-distill-resume-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const baseDir = join(dir, 'base');
  const train = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'cli/dev.ts', 'train', 'fm', '--source', 'synthetic', '--max-events', '4000', '--epochs', '1', '--model', 'student', '--release-dir', baseDir],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, THAW_LOG_LEVEL: 'warn' } },
  );
  assert.equal(train.status, 0, train.stderr);
  const dirA = join(dir, 'a');
  const dirB = join(dir, 'b');
  cpSync(baseDir, dirA, { recursive: true });
  cpSync(baseDir, dirB, { recursive: true });

  const events: LabelledEvent[] = [];
  let i = 0;
  for await (const e of openSource({ kind: 'synthetic', events: 20_000 })) {
    if (i++ >= 10_000) events.push({ ...e, eventId: `e${i}` });
    if (events.length >= N) break;
  }
  const labelledA = uniqueName('resume-labelled-a');
  const labelledB = uniqueName('resume-labelled-b');
  const soft = uniqueName('resume-soft');
  await ensureTopics(conn, [
    { topic: labelledA, partitions: 1 },
    { topic: labelledB, partitions: 1 },
    { topic: soft, partitions: 2 },
  ]);
  t.after(() => deleteTopics(conn, [labelledA, labelledB, soft]));
  const producer = new EventProducer({ kafka: conn });
  await producer.connect();
  t.after(() => producer.close());
  await producer.send(
    soft,
    events.map((e, k) => ({ key: e.eventId, value: encodeSoftLabel({ eventId: e.eventId, teacherLogit: ((k * 37) % 13) / 3 - 2, teacherRelease: 'teacher/t1' }) })),
  );
  const produce = (topic: string, from: number, to: number): Promise<void> =>
    producer.send(
      topic,
      events.slice(from, to).map((e) => ({ key: e.itemId, value: encodeLabelled(e) })),
    );
  await produce(labelledA, 0, N);

  const groupA = uniqueName('resume-a');
  const groupB = uniqueName('resume-b');
  const start = (releaseDir: string, topic: string, groupId: string, resume: boolean): Run => {
    const args = [
      'distill',
      'learn',
      '--model',
      'student',
      '--release-dir',
      releaseDir,
      '--labelled-topic',
      topic,
      '--soft-label-topic',
      soft,
      '--group-id',
      groupId,
      '--soft-label-wait-ms',
      '30000',
      '--sync-every',
      '600',
      '--sync-interval-ms',
      '1000',
      '--max-batch-messages',
      '200',
      '--alpha',
      '0.3',
      '--temperature',
      '2',
    ];
    if (resume) args.push('--resume');
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
    const lines = (): { release: string; events: number }[] =>
      stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { release: string; events: number });
    return { child, lines, stderr: () => stderr.slice(-3000), exited };
  };
  const untilCovered = async (run: Run, releaseDir: string, groupId: string, topic: string, n: number): Promise<void> => {
    const store = new ReleaseStore({ root: releaseDir });
    await waitFor(`a release covering ${n} events`, async () => (newestOwnRelease(await store.list('student'), groupId, topic)?.info.offsets['0'] ?? 0) >= n, 60_000).catch(() =>
      assert.fail(`no release covering ${n}\n${run.stderr()}`),
    );
  };
  const term = async (run: Run): Promise<void> => {
    run.child.kill('SIGTERM');
    assert.equal(await run.exited, 0, run.stderr());
  };

  // A: uninterrupted.
  const a = start(dirA, labelledA, groupA, false);
  await untilCovered(a, dirA, groupA, labelledA, N);
  await term(a);

  // B1: the first part, then SIGTERM (drain).
  await produce(labelledB, 0, PARTS[0] ?? 0);
  const b1 = start(dirB, labelledB, groupB, false);
  await untilCovered(b1, dirB, groupB, labelledB, PARTS[0] ?? 0);
  await term(b1);
  // B2: resumed; killed with -9 right after its first release.
  await produce(labelledB, PARTS[0] ?? 0, PARTS[1] ?? 0);
  const b2 = start(dirB, labelledB, groupB, true);
  await waitFor('a release of B2', () => b2.lines().length > 0, 60_000).catch(() => assert.fail(`B2 published nothing\n${b2.stderr()}`));
  b2.child.kill('SIGKILL');
  await b2.exited;
  // B3: resumed from the newest checkpoint, to the end.
  await produce(labelledB, PARTS[1] ?? 0, N);
  const b3 = start(dirB, labelledB, groupB, true);
  await untilCovered(b3, dirB, groupB, labelledB, N);
  await term(b3);

  const storeA = new ReleaseStore({ root: dirA });
  const storeB = new ReleaseStore({ root: dirB });
  const relA = newestOwnRelease(await storeA.list('student'), groupA, labelledA);
  const relB = newestOwnRelease(await storeB.list('student'), groupB, labelledB);
  assert.ok(relA !== undefined && relB !== undefined);
  assert.equal(relB.info.events, relA.info.events, 'the lineages count the same events');
  const filesA = (await storeA.load('student', relA.manifest.version)).files;
  const filesB = (await storeB.load('student', relB.manifest.version)).files;
  // weights.bin holds the parameters (the ONNX graph and the legacy file also carry the release id).
  const weightsA = filesA['weights.bin'];
  assert.ok(weightsA !== undefined && filesB['weights.bin']?.equals(weightsA) === true, 'the releases hold different parameters');

  const ckA = listCheckpoints(onlineCheckpointDir(storeA, 'student', groupA)).at(-1);
  const ckB = listCheckpoints(onlineCheckpointDir(storeB, 'student', groupB)).at(-1);
  assert.ok(ckA !== undefined && ckB !== undefined, 'both lineages have checkpoints');
  const dataA = readCheckpointFile(ckA);
  const dataB = readCheckpointFile(ckB);
  assert.deepStrictEqual([...dataB.arrays.keys()].sort(), [...dataA.arrays.keys()].sort());
  for (const [name, arr] of dataA.arrays) {
    const other = dataB.arrays.get(name);
    assert.ok(other !== undefined && Buffer.from(other.buffer, other.byteOffset, other.byteLength).equals(Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength)), `checkpoint array ${name} differs`);
  }
});
