/**
 * Distill bench (issue 14, EDL-Dist): `npm run bench -- --only distill [--json]`.
 *
 * On MovieLens-100K (../shared/data/ml-100k, events in time order): the first `--history` events
 * train the teacher (`thaw train deepfm`) and the student's base release (`thaw train fm`), as users
 * run them. Then, on the real broker:
 *   - throughput (bench/distill/throughput.ts): the student's training events/s over the `--events`
 *     events after the history, for online distillation (teacher in the student's loop, one process)
 *     and EDL-Dist with 1 and 2 `thaw distill teach` processes, and with 2 of which one is killed
 *     with -9 a third of the way; soft labels expected, written and duplicated (read_committed);
 *   - quality (bench/distill/quality.ts): prequential AUC by the item's prior events of the teacher,
 *     the student with distillation and without, over the `--window` events after the history.
 *
 *   node --import tsx bench/distill/run.ts [--data ../shared/data/ml-100k] [--history 10000]
 *        [--window 10000] [--events 40000] [--warm 2000] [--partitions 4] [--alpha 0.5]
 *        [--temperature 2] [--json] [--out .thaw/bench/distill.json]
 *
 * The machine is shared and has 2 cores: the load average is printed before and after. Markdown on
 * stdout (or the JSON the issue asks for with --json), progress on stderr. Never asserts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CURVE_BUCKETS } from '../../analytics/types.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { initBackend } from '../../models/backend.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { openSource } from '../../sources/index.js';
import { kafkaFromEnv } from '../../streams/kafka.js';
import { formatNumber, markdownTable, positiveOption } from '../stats.js';
import { distillQuality, type AucByBucket } from './quality.js';
import { runThroughput, type SoftLabelCount, type ThroughputResult, type ThroughputRun } from './throughput.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    data: { type: 'string', default: resolve(ROOT, '..', 'shared', 'data', 'ml-100k') },
    history: { type: 'string', default: '10000' },
    window: { type: 'string', default: '10000' },
    events: { type: 'string', default: '40000' },
    warm: { type: 'string', default: '2000' },
    partitions: { type: 'string', default: '4' },
    alpha: { type: 'string', default: '0.5' },
    temperature: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
    out: { type: 'string', default: resolve(ROOT, '.thaw', 'bench', 'distill.json') },
  },
});
const HISTORY = positiveOption('history', values.history);
const WINDOW = positiveOption('window', values.window);
const EVENTS = positiveOption('events', values.events);
const WARM = positiveOption('warm', values.warm);
const PARTITIONS = positiveOption('partitions', values.partitions);
const loss = { alpha: Number(values.alpha), temperature: positiveOption('temperature', values.temperature, false) };
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

function train(args: readonly string[], dir: string): void {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/dev.ts', 'train', ...args, '--source', `ml100k:${values.data}`, '--history-events', String(HISTORY), '--release-dir', dir], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, THAW_LOG_LEVEL: 'warn' },
  });
  if (r.status !== 0) throw new Error(`thaw train ${args.join(' ')} failed: ${r.stderr}`);
}

async function main(): Promise<void> {
  const loadBefore = load();
  log(`distill bench: load average ${loadBefore} (2 cores, shared)`);
  const events: LabelledEvent[] = [];
  for await (const e of openSource({ kind: 'ml100k', dir: values.data })) events.push(e);
  const history = events.slice(0, HISTORY);
  const rest = events.slice(HISTORY);
  if (rest.length < Math.max(WINDOW, WARM + EVENTS)) throw new Error(`ML-100K has ${rest.length} events after the history; --window or --warm + --events ask for more`);
  const baseDir = mkdtempSync(join(tmpdir(), 'thaw-bench-distill-base-'));
  try {
    log('training the teacher (deepfm) and the student base (fm) on the history ...');
    train(['deepfm', '--model', 'teacher', '--min-events', '20'], baseDir);
    train(['fm', '--model', 'student'], baseDir);
    await initBackend('auto');
    const store = new ReleaseStore({ root: baseDir });

    log('quality: prequential AUC on the window ...');
    const quality = await distillQuality(store, 'teacher', 'student', history, rest.slice(0, WINDOW), loss);

    const setup = {
      kafka: kafkaFromEnv(),
      baseDir,
      teacherModel: 'teacher',
      studentModel: 'student',
      warm: rest.slice(0, WARM),
      timed: rest.slice(WARM, WARM + EVENTS),
      partitions: PARTITIONS,
      loss,
      log,
    };
    const runs: ThroughputRun[] = [
      { name: 'onlineKd', teachers: 0 },
      { name: 'edl1', teachers: 1 },
      { name: 'edl2', teachers: 2 },
      { name: 'edl2WithKill', teachers: 2, killAt: 1 / 3 },
    ];
    const results: ThroughputResult[] = [];
    for (const r of runs) {
      log(`throughput: ${r.name} ...`);
      const res = await runThroughput(setup, r);
      log(`  ${r.name}: ${formatNumber(res.eventsPerSec)} events/s (${res.seconds.toFixed(2)} s, late ${res.late})`);
      results.push(res);
    }
    const loadAfter = load();
    const rate = (name: string): number => Math.round(results.find((r) => r.name === name)?.eventsPerSec ?? Number.NaN);
    const soft = results.reduce<SoftLabelCount>(
      (a, r) => ({ expected: a.expected + (r.softLabels?.expected ?? 0), written: a.written + (r.softLabels?.written ?? 0), duplicates: a.duplicates + (r.softLabels?.duplicates ?? 0) }),
      { expected: 0, written: 0, duplicates: 0 },
    );
    const aucs = (q: AucByBucket): Record<string, number> => Object.fromEntries(Object.entries(q).map(([b, v]) => [b, Number(v.auc.toFixed(4))]));
    const out = {
      throughput: { onlineKd: rate('onlineKd'), edl1: rate('edl1'), edl2: rate('edl2'), edl2WithKill: rate('edl2WithKill') },
      auc: { teacher: aucs(quality.teacher), studentKd: aucs(quality.studentKd), studentNoKd: aucs(quality.studentNoKd) },
      softLabels: soft,
    };
    await mkdir(dirname(values.out), { recursive: true });
    await writeFile(
      values.out,
      JSON.stringify(
        { ...out, runs: results, loadAverage: { before: loadBefore, after: loadAfter }, settings: { history: HISTORY, window: WINDOW, events: EVENTS, warm: WARM, partitions: PARTITIONS, loss } },
        null,
        2,
      ),
    );
    if (values.json) {
      console.log(JSON.stringify(out));
      return;
    }
    console.log(`## Distillation (EDL-Dist): MovieLens-100K, history ${HISTORY}, ${EVENTS} timed events, ${PARTITIONS} partitions; alpha ${loss.alpha}, T ${loss.temperature}`);
    console.log(`load average before ${loadBefore}, after ${loadAfter} (1/5/15 min; 2 cores, shared with other work)\n`);
    const base = rate('onlineKd');
    console.log(
      markdownTable(
        ['student training', 'teacher processes', 'events/s', 'x online KD', 'seconds', 'soft labels all read after (s)', 'late', 'soft labels expected / written / duplicated'],
        results.map((r) => [
          r.name,
          r.teachers === 0 ? 'in the loop' : String(r.teachers),
          formatNumber(r.eventsPerSec),
          (r.eventsPerSec / base).toFixed(2),
          r.seconds.toFixed(2),
          r.teacherSeconds === undefined ? '-' : r.teacherSeconds.toFixed(2),
          String(r.late),
          r.softLabels === undefined ? '-' : `${r.softLabels.expected} / ${r.softLabels.written} / ${r.softLabels.duplicates}`,
        ]),
      ),
    );
    console.log(`\nPrequential AUC on the ${WINDOW} events after the history, by the item's prior events (n = events):\n`);
    const buckets = ['all', ...CURVE_BUCKETS] as const;
    const row = (name: string, q: AucByBucket): string[] => [name, ...buckets.map((b) => (q[b] === undefined ? '-' : q[b].auc.toFixed(4)))];
    console.log(
      markdownTable(
        ['model', ...buckets],
        [row('teacher (deepfm)', quality.teacher), row('student, KD', quality.studentKd), row('student, no KD', quality.studentNoKd), ['n', ...buckets.map((b) => String(quality.teacher[b]?.n ?? 0))]],
      ),
    );
  } finally {
    rmSync(baseDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`distill bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
