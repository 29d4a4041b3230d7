/**
 * Release-switch bench: the pause a release switch causes on a running worker (issue 10: "switching a
 * release pauses a worker for at most 100 ms (measured)"), for an fm release (~9 MB of weights at the
 * default 2^18 buckets, 28 MB of files) and an emerg release.
 *
 *   node --import tsx bench/release-switch/run.ts [--kinds fm,emerg] [--rate-fm 5000] [--rate-emerg 800]
 *        [--baseline-seconds 10] [--switches 6] [--every-seconds 3] [--batch 5000] [--out .thaw/bench/release-switch.json]
 *
 * Per kind, one live run: the item worker wired as `thaw run` wires it (release watcher over a
 * release directory with Kafka announcements, RedisEntityStore behind CachedEntityStore,
 * ClickHouseSink, dead letters, the cross-side read of `--cross-adapter auto`) consumes a
 * 4-partition topic that bench/spine/pace-producer.ts (a child process) fills at a fixed rate. After
 * `--baseline-seconds`, bench/release-switch/publisher.ts (another child process, as the online
 * trainer is) promotes and announces, every `--every-seconds`, alternately a new release of the
 * worker's model (`--switches` of them) and one of a sham model the worker does not follow (the
 * same trainer work without a switch: the control). Then, with nothing left to consume, one more
 * release (the idle switch: every event-loop stall until it is ready is the watcher's). Recorded,
 * each stamped with the wall clock: event-to-state latency of every state written
 * (bench/spine/instrument.ts), every micro-batch's handler time, event-loop stalls (a 5 ms timer's
 * lateness), when each release was promoted, ready in the watcher, taken by the worker.
 * Markdown tables on stdout, progress on stderr, JSON in --out. Measures; never asserts.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createAdapterReleaseWatcher, defaultPartner } from '../../consumers/release-adapter.js';
import { ConfigError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { ensureTopics } from '../../streams/admin.js';
import { DEFAULT_MAX_BATCH_MESSAGES } from '../../streams/batch-consumer.js';
import { buildRig, pacedProducer, warmUp, WARMUP_EVENTS } from '../spine/end-to-end.js';
import { startBenchRun, type BenchResources, type Services } from '../spine/fixtures.js';
import { formatNumber, markdownTable, quantile, positiveOption } from '../stats.js';
import { GcRecorder, LoopLagSampler, TakeRecorder, type AdapterCall } from './probes.js';
import { ADAPTER_OF, bundleBytes, SWITCH_KINDS, switchBundle, type SwitchKind } from './releases.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PARTITIONS = 4;
/** The goal of issue 10. */
const GOAL_PAUSE_MS = 100;
/** Baseline samples start this long after the paced load starts (the group settles). */
const SETTLE_MS = 2000;
/** A switch's window: from its promotion to this long after the worker took it. */
const AFTER_TAKE_MS = 1000;

/** One switch under load: when it was promoted (publisher), ready (watcher), taken (worker), and what it cost. */
export interface SwitchRecord {
  version: string;
  promotedMs: number;
  /** Promoted → ready in the watcher (read, checksums, parse, build), ms; NaN if never ready. */
  loadMs: number;
  /** Ready → taken by the worker at its next micro-batch, ms. */
  waitMs: number;
  /** Longest event-loop stall in the window [promoted, taken + 1 s], ms (the worker's own batches stall it too). */
  stallMs: number;
  /** Adapter compute per event, µs: the previous release's calls in the 2 s before the promotion, the new one's in the 1 s after the take. */
  oldUsPerEvent: number;
  newUsPerEvent: number;
  /** (new − old) µs per event × the events the new adapter ran in that second, ms: what a cold adapter costs. */
  coldExtraMs: number;
  /** GC pause time in the window, ms. */
  gcMs: number;
  /** Event-to-state latency samples written in the window: count and max, ms. */
  samples: number;
  maxLatencyMs: number;
}

/** A switch while the worker has no events to handle: the stalls beyond an idle interval's are the watcher's. */
export interface IdleSwitch {
  loadMs: number;
  /** Longest event-loop stall from the promotion to the release being ready (+200 ms), ms. */
  longestBlockMs: number;
  /** Sum of the stalls above 2 ms in that interval, minus the same sum over as long an interval just before the promotion (timer jitter of a loaded machine), ms. */
  blockedMs: number;
  /** That control: the sum over the interval before the promotion, ms. */
  controlBlockedMs: number;
}

interface Summary {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

export interface KindReport {
  kind: SwitchKind;
  adapter: string;
  releaseBytes: number;
  rate: number;
  consumedPerSec: number;
  baseline: { latency: Summary; stallMs: number };
  atSwitches: { latency: Summary; stallMs: number };
  /** The same windows after promotions of a model the worker does not follow (no switch). */
  atSham: { latency: Summary; stallMs: number };
  switches: SwitchRecord[];
  idle: IdleSwitch;
  /** Median and largest `coldExtraMs` over the switches under load. */
  coldExtraMedianMs: number;
  coldExtraMaxMs: number;
  /** Mean GC pause time per window: after sham promotions, after switches, ms. */
  gcPerShamWindowMs: number;
  gcPerSwitchWindowMs: number;
  /** p99 latency at switches − p99 at sham promotions, ms. */
  p99DeltaMs: number;
  /**
   * The worker-thread time a switch costs, ms (bench/README.md): idle.blockedMs + the median
   * coldExtraMs (≥ 0) + the GC time per switch window beyond a sham window's (≥ 0).
   */
  pauseMs: number;
}

function summary(xs: readonly number[]): Summary {
  return { samples: xs.length, p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), max: quantile(xs, 1) };
}

/** Reads JSON lines from a child's stdout. */
function jsonLines(child: { stdout: Readable }, onLine: (x: Record<string, unknown>) => void): void {
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      onLine(JSON.parse(line) as Record<string, unknown>);
    } catch {
      process.stderr.write(`${line}\n`);
    }
  });
}

const sleep = (msToWait: number): Promise<void> => new Promise((r) => setTimeout(r, msToWait));

/** Resolves once `probe()` is defined (polling every 20 ms), with its value; rejects after `timeoutMs`. */
async function until<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await sleep(20);
  }
}

async function measureKind(
  kind: SwitchKind,
  o: { services: Services; res: BenchResources; rate: number; baselineS: number; switches: number; everyS: number; batch: number; log: Logger },
): Promise<KindReport> {
  const { services, res, log } = o;
  const dir = res.dir(join(tmpdir(), `thaw-bench-switch-${res.id}-${kind}`));
  const store = new ReleaseStore({ root: dir });
  const model = kind;
  const base = await switchBundle(kind, 0);
  const first = await store.publish({ model, architecture: base.architecture, files: base.files });
  await store.promote(model, first.version);
  const announcements = res.topic(`releases-${kind}`);
  const topic = res.topic(`live-${kind}`);
  await ensureTopics(services.kafka, [
    { topic: announcements, partitions: 1 },
    { topic, partitions: PARTITIONS },
  ]);

  // The trainer's side, in its own process: publishes every release up front (the live switches
  // and one idle switch), promotes one per line on its stdin.
  const promoted: { model: string; version: string; promotedMs: number }[] = [];
  const publisher = spawn(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench', 'release-switch', 'publisher.ts'), '--dir', dir, '--model', model, '--kind', kind, '--count', String(o.switches + 1), '--topic', announcements],
    { cwd: ROOT, env: { ...process.env, THAW_KAFKA: services.kafka.brokers.join(',') }, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let publisherReady = false;
  jsonLines(publisher, (x) => {
    if (x.ready === true) publisherReady = true;
    else if (typeof x.model === 'string' && typeof x.version === 'string' && typeof x.promotedMs === 'number') promoted.push({ model: x.model, version: x.version, promotedMs: x.promotedMs });
  });
  /** `promote`: the next release of the model the worker follows; `sham`: of `<model>-sham` (same work, no switch). */
  const promote = async (cue: 'promote' | 'sham'): Promise<{ model: string; version: string; promotedMs: number }> => {
    const n = promoted.length;
    publisher.stdin.write(`${cue}\n`);
    return until('promotion', () => promoted[n], 60_000);
  };

  const adapter = ADAPTER_OF[kind];
  const cross = defaultPartner(adapter, model);
  const readyAt = new Map<string, number>();
  const watcher = await createAdapterReleaseWatcher({
    store,
    model,
    adapter,
    side: 'item',
    ...(cross === undefined ? {} : { cross }),
    pollIntervalMs: 60_000,
    kafka: { connection: services.kafka, topic: announcements },
    onRelease: (r) => readyAt.set(r.version, Date.now()),
    logger: log,
  });
  await watcher.start();
  const takes = new TakeRecorder(watcher);
  const lag = new LoopLagSampler();
  const gc = new GcRecorder();
  try {
    await until('publisher ready', () => (publisherReady ? true : undefined), 300_000);
    const rig = await buildRig(services, res, { releases: takes, side: 'item', ...(cross === undefined ? {} : { crossAdapter: cross.adapter }) }, topic, `switch-${kind}`, o.batch, log);
    try {
      await rig.worker.start();
      await warmUp(services, rig, topic, 'item');
      const paceStartMs = Date.now();
      rig.store.recordLatencyAfterMs = paceStartMs;
      lag.start();
      gc.start();
      // Real and sham promotions alternate, `everyS` apart: the same trainer work, with and without a switch.
      const seconds = o.baselineS + 2 * o.switches * o.everyS + o.everyS;
      log.info('paced run', { kind, rate: o.rate, seconds });
      const paced = pacedProducer(services, topic, o.rate, seconds, 'item');
      for (let i = 0; i < 2 * o.switches; i++) {
        await sleep(paceStartMs + (o.baselineS + i * o.everyS) * 1000 - Date.now());
        await promote(i % 2 === 0 ? 'promote' : 'sham');
      }
      const produced = await paced;
      await rig.source.handled(WARMUP_EVENTS + produced.sent, 300_000);
      // The idle switch: nothing to consume, so the stalls until the release is ready are the
      // watcher's (beyond those of as long an interval before it: the control).
      await sleep(2000);
      const idle = await promote('promote');
      const ready = await until('idle release ready', () => readyAt.get(idle.version), 60_000);
      await sleep(200);
      lag.stop();
      gc.stop();
      return analyse(kind, adapter, bundleBytes(base), o.rate, {
        paceStartMs,
        consumedPerSec: (rig.source.events - WARMUP_EVENTS) / ((rig.source.lastBatchDoneMs - produced.startMs) / 1000),
        latency: rig.store.latencyMs,
        latencyAt: rig.store.latencyAtMs,
        promoted: promoted.slice(0, 2 * o.switches).filter((p) => p.model === model),
        sham: promoted.slice(0, 2 * o.switches).filter((p) => p.model !== model),
        idle: { promotedMs: idle.promotedMs, readyMs: ready },
        readyAt,
        taken: takes.taken,
        baseVersion: first.version,
        calls: takes.calls,
        gc,
        lag,
      });
    } finally {
      await rig.close();
    }
  } finally {
    lag.stop();
    gc.stop();
    publisher.stdin.end();
    await watcher.stop();
    if (publisher.exitCode === null) publisher.kill();
  }
}

interface Observed {
  paceStartMs: number;
  consumedPerSec: number;
  latency: readonly number[];
  latencyAt: readonly number[];
  promoted: readonly { version: string; promotedMs: number }[];
  /** Promotions of the sham model (the worker does not follow it). */
  sham: readonly { promotedMs: number }[];
  idle: { promotedMs: number; readyMs: number };
  readyAt: ReadonlyMap<string, number>;
  taken: readonly { version: string; atMs: number }[];
  /** The release the worker started on. */
  baseVersion: string;
  calls: readonly AdapterCall[];
  gc: GcRecorder;
  lag: LoopLagSampler;
}

/** Adapter compute per event (µs) and events of `release`'s calls that ended in [fromMs, toMs]. */
function computeRate(calls: readonly AdapterCall[], release: string, fromMs: number, toMs: number): { usPerEvent: number; events: number } {
  let ms = 0;
  let events = 0;
  for (const c of calls) {
    if (c.release !== release || c.atMs < fromMs || c.atMs > toMs) continue;
    ms += c.ms;
    events += c.events;
  }
  return { usPerEvent: events > 0 ? (1000 * ms) / events : Number.NaN, events };
}

function analyse(kind: SwitchKind, adapter: string, releaseBytes: number, rate: number, ob: Observed): KindReport {
  const inWindow = (from: number, to: number): number[] => ob.latency.filter((_, i) => (ob.latencyAt[i] ?? 0) >= from && (ob.latencyAt[i] ?? 0) <= to);
  const windows: (readonly [number, number])[] = [];
  const switches: SwitchRecord[] = ob.promoted.map((p, i) => {
    const ready = ob.readyAt.get(p.version) ?? Number.NaN;
    const taken = ob.taken.find((t) => t.version === p.version)?.atMs ?? Number.NaN;
    const end = (Number.isFinite(taken) ? taken : Number.isFinite(ready) ? ready : p.promotedMs) + AFTER_TAKE_MS;
    windows.push([p.promotedMs, end]);
    const lat = inWindow(p.promotedMs, end);
    const previous = i === 0 ? ob.baseVersion : (ob.promoted[i - 1]?.version ?? ob.baseVersion);
    const old = computeRate(ob.calls, previous, p.promotedMs - 2000, p.promotedMs);
    const cold = Number.isFinite(taken) ? computeRate(ob.calls, p.version, taken, taken + AFTER_TAKE_MS) : { usPerEvent: Number.NaN, events: 0 };
    return {
      version: p.version,
      promotedMs: p.promotedMs,
      loadMs: ready - p.promotedMs,
      waitMs: taken - ready,
      stallMs: ob.lag.maxIn(p.promotedMs, end),
      oldUsPerEvent: old.usPerEvent,
      newUsPerEvent: cold.usPerEvent,
      coldExtraMs: ((cold.usPerEvent - old.usPerEvent) * cold.events) / 1000,
      gcMs: ob.gc.sumIn(p.promotedMs, end),
      samples: lat.length,
      maxLatencyMs: quantile(lat, 1),
    };
  });
  // Sham windows: as long as the median switch window, from each sham promotion (the trainer's
  // work without a switch). No switch: the rest of the paced run from 2 s in, without the 0.5 s
  // before any promotion, so load that drifts over the run hits all three alike.
  const windowMs = quantile(
    windows.map(([a, b]) => b - a),
    0.5,
  );
  const shams: (readonly [number, number])[] = ob.sham.map((x) => [x.promotedMs, x.promotedMs + windowMs]);
  const from = ob.paceStartMs + SETTLE_MS;
  const to = ob.idle.promotedMs - 500;
  const quiet = (t: number): boolean => t >= from && t <= to && [...windows, ...shams].every(([a, b]) => t < a - 500 || t > b);
  const noSwitch = ob.latency.filter((_, i) => quiet(ob.latencyAt[i] ?? 0));
  const idleFrom = ob.idle.promotedMs;
  const idleTo = ob.idle.readyMs + 200;
  const blocked = (a: number, b: number): number => ob.lag.late.filter((x) => x.atMs >= a && x.atMs <= b).reduce((sum, x) => sum + x.lateMs, 0);
  const control = blocked(idleFrom - (idleTo - idleFrom) - 100, idleFrom - 100);
  const idle: IdleSwitch = {
    loadMs: ob.idle.readyMs - ob.idle.promotedMs,
    longestBlockMs: ob.lag.maxIn(idleFrom, idleTo),
    blockedMs: blocked(idleFrom, idleTo) - control,
    controlBlockedMs: control,
  };
  const colds = switches.map((x) => x.coldExtraMs).filter((x) => Number.isFinite(x));
  const coldMedian = colds.length === 0 ? 0 : quantile(colds, 0.5);
  const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
  const gcSwitch = mean(switches.map((x) => x.gcMs));
  const gcSham = mean(shams.map(([a, b]) => ob.gc.sumIn(a, b)));
  const base = summary(noSwitch);
  const at = summary(windows.flatMap(([a, b]) => inWindow(a, b)));
  const atSham = summary(shams.flatMap(([a, b]) => inWindow(a, b)));
  return {
    kind,
    adapter,
    releaseBytes,
    rate,
    consumedPerSec: ob.consumedPerSec,
    baseline: { latency: base, stallMs: Math.max(0, ...ob.lag.late.filter((x) => quiet(x.atMs)).map((x) => x.lateMs)) },
    atSwitches: { latency: at, stallMs: Math.max(0, ...switches.map((s) => s.stallMs)) },
    atSham: { latency: atSham, stallMs: Math.max(0, ...shams.map(([a, b]) => ob.lag.maxIn(a, b))) },
    switches,
    idle,
    coldExtraMedianMs: coldMedian,
    coldExtraMaxMs: quantile(colds, 1),
    gcPerShamWindowMs: gcSham,
    gcPerSwitchWindowMs: gcSwitch,
    p99DeltaMs: at.p99 - atSham.p99,
    pauseMs: idle.blockedMs + Math.max(0, coldMedian) + Math.max(0, gcSwitch - gcSham),
  };
}

const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '—');

export function renderReport(r: { startedAt: string; loadBefore: number[]; loadAfter: number[]; wallMs: number; kinds: KindReport[] }, out: string): string {
  const lines = [
    `## Release switch on a running worker (item side, 4 partitions, thaw run's wiring)`,
    '',
    `load average (1, 5, 15 min): before ${r.loadBefore.map((x) => x.toFixed(2)).join(', ')}; after ${r.loadAfter.map((x) => x.toFixed(2)).join(', ')} (2 cores, shared machine); wall ${(r.wallMs / 1000).toFixed(0)} s`,
    '',
    markdownTable(
      [
        'release',
        'files MB',
        'idle switch: load / longest block / blocked ms',
        'cold adapter extra ms (median / max)',
        'GC ms per window: sham / switch',
        'pause ms',
        'paced ev/s',
        'latency p50 / p99 / max ms: no promotion',
        'sham promotions',
        'switches',
      ],
      r.kinds.map((k) => {
        const l = (x: Summary): string => `${ms(x.p50)} / ${ms(x.p99)} / ${ms(x.max)}`;
        return [
          `${k.kind} (${k.adapter})`,
          (k.releaseBytes / 1e6).toFixed(1),
          `${ms(k.idle.loadMs)} / ${ms(k.idle.longestBlockMs)} / ${ms(k.idle.blockedMs)}`,
          `${ms(k.coldExtraMedianMs)} / ${ms(k.coldExtraMaxMs)}`,
          `${ms(k.gcPerShamWindowMs)} / ${ms(k.gcPerSwitchWindowMs)}`,
          ms(k.pauseMs),
          formatNumber(k.consumedPerSec),
          l(k.baseline.latency),
          l(k.atSham.latency),
          l(k.atSwitches.latency),
        ];
      }),
    ),
    '',
    markdownTable(
      ['release', 'switch under load', 'promoted → ready ms', 'ready → taken ms', 'adapter µs/event: old → new', 'cold adapter extra ms', 'GC ms', 'loop stall ms', 'samples', 'latency max ms'],
      r.kinds.flatMap((k) =>
        k.switches.map((s, i) => [
          k.kind,
          String(i + 1),
          ms(s.loadMs),
          ms(s.waitMs),
          `${s.oldUsPerEvent.toFixed(1)} → ${s.newUsPerEvent.toFixed(1)}`,
          ms(s.coldExtraMs),
          ms(s.gcMs),
          ms(s.stallMs),
          String(s.samples),
          ms(s.maxLatencyMs),
        ]),
      ),
    ),
    '',
    `pause = the worker-thread time a switch costs: the event-loop time blocked by an idle switch (promotion → ready: read, checksums, parse, ` +
      `build, with no events to handle; minus the timer lateness of as long an interval before it) + the median cold-adapter extra (the new adapter's compute per event in the second after the take ` +
      `over the old one's in the 2 s before the promotion, times its events) + the GC time per switch window beyond a sham window's. ` +
      `Windows: a switch's from its promotion to 1 s after the take; a sham's as long after a promotion of a model the worker does not follow ` +
      `(the trainer's work, no switch), alternating with the switches; no promotion: the rest of the paced run. Goal ≤ ${GOAL_PAUSE_MS} ms: ` +
      `${r.kinds.map((k) => `${k.kind} ${k.pauseMs <= GOAL_PAUSE_MS ? 'met' : 'not met'}`).join(', ')}.`,
    '',
    `JSON: ${out}`,
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kinds: { type: 'string', default: SWITCH_KINDS.join(',') },
      'rate-fm': { type: 'string', default: '5000' },
      'rate-emerg': { type: 'string', default: '800' },
      'baseline-seconds': { type: 'string', default: '10' },
      switches: { type: 'string', default: '6' },
      'every-seconds': { type: 'string', default: '3' },
      batch: { type: 'string', default: String(DEFAULT_MAX_BATCH_MESSAGES) },
      out: { type: 'string', default: '.thaw/bench/release-switch.json' },
    },
  });
  const kinds = values.kinds.split(',').map((k) => k.trim());
  for (const k of kinds) if (!(SWITCH_KINDS as readonly string[]).includes(k)) throw new ConfigError('kinds', `unknown kind "${k}"; known: ${SWITCH_KINDS.join(', ')}`);
  const rates: Record<SwitchKind, number> = { fm: positiveOption('rate-fm', values['rate-fm'], false), emerg: positiveOption('rate-emerg', values['rate-emerg'], false) };
  const baselineS = positiveOption('baseline-seconds', values['baseline-seconds'], false);
  const switches = positiveOption('switches', values.switches);
  const everyS = positiveOption('every-seconds', values['every-seconds'], false);
  const batch = positiveOption('batch', values.batch);
  const out = resolve(ROOT, values.out);
  const { log, services, res, loadBefore, t0 } = startBenchRun('release-switch');
  try {
    const reports: KindReport[] = [];
    for (const kind of kinds as SwitchKind[]) {
      reports.push(await measureKind(kind, { services, res, rate: rates[kind], baselineS, switches, everyS, batch, log }));
      log.info('kind done', { kind, pauseMs: Math.round(reports[reports.length - 1]?.pauseMs ?? NaN) });
    }
    const report = { startedAt: new Date().toISOString(), loadBefore, loadAfter: loadavg(), wallMs: performance.now() - t0, kinds: reports };
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, JSON.stringify(report, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
    process.stdout.write(renderReport(report, out) + '\n');
  } finally {
    await res.cleanup(log);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`release-switch bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
