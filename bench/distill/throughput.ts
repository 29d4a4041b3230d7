/**
 * Throughput half of the distill bench: the student's training rate (events/s) on the real broker,
 * for online distillation (the teacher's forward pass inside the student's loop, one process:
 * trainers/distill/online-kd.ts) and for EDL-Dist (`thaw distill teach` processes writing soft
 * labels, the student joining them: what `thaw distill learn` runs), optionally killing a teacher
 * with -9 part-way.
 *
 * Each run owns its topics, groups and release directory. Teachers are started and a warm-up slice
 * is trained first (so group joins and start-up are not timed); then the measured events are
 * produced at once and the clock runs until the student has trained all of them. The student
 * publishes no release while timed (its sync interval is an hour); its soft-label wait is long
 * enough that no event trains late, so every run trains on the same soft labels.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReleaseStore } from '../../model-store/releases.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { deleteTopics, ensureTopics } from '../../streams/admin.js';
import type { KafkaConnection } from '../../streams/kafka.js';
import { EventProducer } from '../../streams/producer.js';
import { readRange, resolveRange } from '../../streams/replay.js';
import { decodeSoftLabel, encodeLabelled } from '../../streams/serde.js';
import type { DistillLossOptions } from '../../trainers/distill/loss.js';
import { onlineKdHooks } from '../../trainers/distill/online-kd.js';
import { SoftLabelJoin } from '../../trainers/distill/soft-label-join.js';
import { teacherFromRelease } from '../../trainers/distill/teacher.js';
import { OnlineTrainer, type OnlineTrainerOptions } from '../../trainers/online-trainer.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

export interface ThroughputSetup {
  kafka: KafkaConnection;
  /** Release directory holding the `teacher` and `student` models (copied per run). */
  baseDir: string;
  teacherModel: string;
  studentModel: string;
  warm: readonly LabelledEvent[];
  timed: readonly LabelledEvent[];
  partitions: number;
  loss: DistillLossOptions;
  log: (line: string) => void;
}

export interface ThroughputRun {
  name: string;
  /** 0: online distillation in the student's process; else EDL-Dist with this many teacher processes. */
  teachers: number;
  /** Kill one teacher with -9 once this share of the timed events is trained. @default never */
  killAt?: number;
}

export interface SoftLabelCount {
  expected: number;
  written: number;
  duplicates: number;
}

export interface ThroughputResult {
  name: string;
  teachers: number;
  events: number;
  seconds: number;
  eventsPerSec: number;
  /** Events trained on the hard label alone (their soft label came after the wait). */
  late: number;
  /** EDL: seconds from the produce until the student's join had read every soft label (the teachers' pace). */
  teacherSeconds?: number;
  softLabels?: SoftLabelCount;
}

function startTeacher(s: ThroughputSetup, dir: string, topics: { labelled: string; soft: string; dlq: string; group: string }): Promise<ChildProcess> {
  const args = [
    '--import',
    'tsx',
    'cli/dev.ts',
    'distill',
    'teach',
    '--group-id',
    topics.group,
    '--source-topic',
    topics.labelled,
    '--soft-label-topic',
    topics.soft,
    '--dead-letter-topic',
    topics.dlq,
    '--release-dir',
    dir,
    '--teacher-model',
    s.teacherModel,
    '--session-timeout-ms',
    '6000',
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, THAW_KAFKA: s.kafka.brokers.join(','), THAW_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolvePromise, reject) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('teacher worker running')) resolvePromise(child);
    });
    child.on('exit', (code) => reject(new Error(`teacher exited with ${String(code)} before running: ${err.slice(-1500)}`)));
  });
}

async function countSoftLabels(kafka: KafkaConnection, topic: string, expected: number): Promise<SoftLabelCount> {
  const ranges = await resolveRange(kafka, topic, { offset: 0 }, { offset: Number.MAX_SAFE_INTEGER });
  const seen = new Set<string>();
  let total = 0;
  for await (const b of readRange(kafka, topic, ranges)) {
    for (const m of b.messages) {
      if (m.value === null) continue;
      total++;
      seen.add(decodeSoftLabel(m.value).eventId);
    }
  }
  return { expected, written: seen.size, duplicates: total - seen.size };
}

const trained = (t: OnlineTrainer): number => Object.values(t.status().positions).reduce((a, b) => a + b, 0);

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** One run: see the file comment. */
export async function runThroughput(s: ThroughputSetup, run: ThroughputRun): Promise<ThroughputResult> {
  const id = randomUUID();
  const dir = mkdtempSync(joinPath(tmpdir(), 'thaw-bench-distill-'));
  cpSync(s.baseDir, dir, { recursive: true });
  const topics = { labelled: `bench.distill.labelled.${id}`, soft: `bench.distill.soft.${id}`, dlq: `bench.distill.dlq.${id}`, group: `bench-distill-teach-${id}` };
  await ensureTopics(
    s.kafka,
    [topics.labelled, topics.soft, topics.dlq].map((topic) => ({ topic, partitions: s.partitions })),
  );
  const store = new ReleaseStore({ root: dir });
  const teachers: ChildProcess[] = [];
  let join: SoftLabelJoin | undefined;
  let trainer: OnlineTrainer | undefined;
  const producer = new EventProducer({ kafka: s.kafka });
  try {
    const common: OnlineTrainerOptions = {
      kafka: s.kafka,
      store,
      model: s.studentModel,
      side: 'item',
      kind: 'fm',
      topic: topics.labelled,
      groupId: `bench-distill-learn-${id}`,
      syncIntervalMs: 3_600_000,
    };
    if (run.teachers === 0) {
      const teacherVersion = await store.current(s.teacherModel);
      if (teacherVersion === undefined) throw new Error('no teacher release');
      const hooks = onlineKdHooks(teacherFromRelease(await store.load(s.teacherModel, teacherVersion)));
      trainer = new OnlineTrainer({ ...common, fm: { teacher: { logitOf: hooks.logitOf, loss: s.loss } }, beforeObserve: hooks.beforeObserve });
    } else {
      for (let i = 0; i < run.teachers; i++) teachers.push(await startTeacher(s, dir, topics));
      const j = new SoftLabelJoin({ kafka: s.kafka, topic: topics.soft, waitMs: 120_000 });
      join = j;
      trainer = new OnlineTrainer({
        ...common,
        fm: { teacher: { logitOf: (ev) => j.take(ev), loss: s.loss } },
        beforeObserve: (evs) => j.ready(evs),
        attached: { save: () => j.save(), start: (r) => j.start(r) },
      });
    }
    const t = trainer;
    await t.start();
    await producer.connect();
    const send = (evs: readonly LabelledEvent[]): Promise<void> =>
      producer.send(
        topics.labelled,
        evs.map((e) => ({ key: e.itemId, value: encodeLabelled(e) })),
      );
    await send(s.warm);
    await until('the warm-up slice trained', () => trained(t) >= s.warm.length, 180_000);
    const lateBefore = join?.stats.late ?? 0;
    const received0 = join?.stats.received ?? 0;
    const t0 = process.hrtime.bigint();
    await send(s.timed);
    const total = s.warm.length + s.timed.length;
    if (run.killAt !== undefined) {
      const at = s.warm.length + Math.floor(s.timed.length * run.killAt);
      await until('the kill point', () => trained(t) >= at, 300_000);
      teachers[0]?.kill('SIGKILL');
      s.log(`  ${run.name}: teacher killed with -9 at ${trained(t) - s.warm.length} of ${s.timed.length} timed events`);
    }
    let teacherSeconds: number | undefined;
    await until(
      'every timed event trained',
      () => {
        if (join !== undefined && teacherSeconds === undefined && join.stats.received - received0 >= s.timed.length) teacherSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
        return trained(t) >= total;
      },
      600_000,
    );
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (join !== undefined && teacherSeconds === undefined)
      await until('every soft label read', () => join?.stats.received === undefined || join.stats.received - received0 >= s.timed.length, 60_000).then(
        () => (teacherSeconds = Number(process.hrtime.bigint() - t0) / 1e9),
      );
    const result: ThroughputResult = {
      name: run.name,
      teachers: run.teachers,
      events: s.timed.length,
      seconds,
      eventsPerSec: s.timed.length / seconds,
      late: (join?.stats.late ?? 0) - lateBefore,
      ...(teacherSeconds === undefined ? {} : { teacherSeconds }),
    };
    await t.stop();
    if (run.teachers > 0) result.softLabels = await countSoftLabels(s.kafka, topics.soft, total);
    return result;
  } finally {
    await trainer?.stop().catch(() => undefined);
    await join?.stop().catch(() => undefined);
    await producer.close().catch(() => undefined);
    await Promise.all(
      teachers.map(
        (c) =>
          new Promise<void>((r) => {
            if (c.exitCode !== null || c.signalCode !== null) return r();
            c.once('exit', () => r());
            c.kill('SIGTERM');
          }),
      ),
    );
    await deleteTopics(s.kafka, [topics.labelled, topics.soft, topics.dlq]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
