/**
 * `npm run bench -- --only soak [--json] [-- --minutes N --rate EV_S --fault-every-s S]`: `thaw run item`
 * workers for N minutes (default 30) at a steady rate (default 13,000 events/s, half the spine's
 * fm-adagrad end to end in bench/README.md) with periodic faults, one every --fault-every-s, in turn:
 *   - worker: kill -9 of the "victim" worker, restarted at once (same name and spool directory);
 *   - redis: the Redis the workers write to is stopped and started again (scripts/services.sh);
 *   - clickhouse: the ClickHouse they log to is stopped for --clickhouse-down-s, then started.
 * Redis and ClickHouse are PRIVATE instances (scripts/services.sh on free ports, a directory of their
 * own); Kafka is the shared broker (own topic and group). A second worker, "steady", is never killed:
 * its resident memory and heap are sampled every --sample-every-s, with their least-squares slope in
 * MB per hour after the first fifth of the run (warm-up). After the stream both workers drain, then:
 * lost and doubled events in the de-duplicated prediction log, and every Redis state against an
 * uninterrupted reference run over the same events (bench/soak/reference.ts).
 *
 * Prints Markdown (or --json) and writes .thaw/bench/soak.json. Benchmarks never assert (bench/README.md).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { createClient } from '@clickhouse/client';
import { publishFm } from '../../cli/fm-release.js';
import { ConfigError, toError } from '../../lib/errors.js';
import { ReleaseStore } from '../../model-store/releases.js';
import type { StateScope } from '../../model-store/types.js';
import { FactorizationMachine } from '../../models/fm.js';
import { syntheticStream, type SyntheticOptions } from '../../sources/synthetic.js';
import { deleteTopics, ensureTopics, groupLag, topicOffsets, withAdmin } from '../../streams/admin.js';
import { kafkaFromEnv } from '../../streams/kafka.js';
import { EventProducer } from '../../streams/producer.js';
import { encodeLabelled } from '../../streams/serde.js';
import { PrivateServices } from '../../test/integration/consumers/private-services.js';
import { freePort } from '../../lib/free-port.js';
import { startThawRun, type ThawRunProcess } from '../failover/thaw-run.js';
import { heapMb, rssMb, sparkline, trendOf, type MemorySample, type MemoryTrend } from './memory.js';
import { checkLog, checkStates, streamingReference, type LogCheck, type StateCheck } from './reference.js';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    minutes: { type: 'string', default: '30' },
    rate: { type: 'string', default: '13000' },
    'fault-every-s': { type: 'string', default: '60' },
    'clickhouse-down-s': { type: 'string', default: '20' },
    'sample-every-s': { type: 'string', default: '5' },
    partitions: { type: 'string', default: '4' },
  },
});
function positive(key: string, raw: string | undefined): number {
  const v = Number(raw);
  if (!(Number.isFinite(v) && v > 0)) throw new ConfigError(key, `must be a number > 0, got ${raw}`);
  return v;
}
const MINUTES = positive('minutes', args.minutes);
const RATE = positive('rate', args.rate);
const FAULT_EVERY_S = positive('fault-every-s', args['fault-every-s']);
const CH_DOWN_S = positive('clickhouse-down-s', args['clickhouse-down-s']);
const SAMPLE_EVERY_S = positive('sample-every-s', args['sample-every-s']);
const PARTITIONS = Math.round(positive('partitions', args.partitions));
const SEED = 31;
const TOTAL = Math.ceil(RATE * MINUTES * 60);
const SOURCE: SyntheticOptions = { seed: SEED, events: TOTAL, users: 20_000, items: 5_000 };
const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
const model = (): FactorizationMachine => FactorizationMachine.create({ buckets: 16384, k: 4, seed: 7, initStd: 0.1 });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const say = (m: string): boolean => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');

type FaultKind = 'worker' | 'redis' | 'clickhouse';
interface Fault {
  kind: FaultKind;
  /** Seconds since the start. */
  atS: number;
  /** How long the process or service was gone (kill to restarted, stop to serving again). */
  downMs: number;
}
interface MinuteRow {
  minute: number;
  rssMb: number;
  heapMb: number | undefined;
  lag: number;
  faults: string;
}
interface Figures {
  minutes: number;
  rateAsked: number;
  rateProduced: number;
  produced: number;
  partitions: number;
  loadBefore: string;
  loadAfter: string;
  faults: Fault[];
  maxLag: number;
  drainS: number;
  memory: MemoryTrend;
  samples: MemorySample[];
  byMinute: MinuteRow[];
  log: LogCheck;
  states: StateCheck;
}

async function main(): Promise<void> {
  const id = randomUUID().replace(/-/g, '').slice(0, 10);
  const topic = `thaw-bench-soak-${id}`;
  const group = topic;
  const table = `bench_soak_${id}`;
  const prefix = `bs${id}`;
  const dir = mkdtempSync(join(tmpdir(), 'thaw-soak-'));
  const kafka = kafkaFromEnv();
  const loadBefore = load();
  say(`${MINUTES} min at ${RATE} events/s (${TOTAL} events), a fault every ${FAULT_EVERY_S} s; private Redis and ClickHouse starting`);
  const svc = await PrivateServices.up(['redis', 'clickhouse']);
  const workers: ThawRunProcess[] = [];
  try {
    await ensureTopics(kafka, [{ topic, partitions: PARTITIONS, config: { 'retention.ms': '-1' } }]);
    await publishFm(new ReleaseStore({ root: join(dir, 'releases') }), 'fm', model());
    const steadyPort = await freePort();
    const start = (name: string, metricsPort = 0): ThawRunProcess => {
      const w = startThawRun({ name, brokers: kafka.brokers, redisUrl: svc.redisUrl, redisPrefix: prefix, clickhouseUrl: svc.clickhouseUrl, table, topic, group, dir, maxBatch: 5000, metricsPort });
      workers.push(w);
      return w;
    };
    const steady = start('steady', steadyPort);
    let victim = start('victim');

    const t0 = Date.now();
    const endAt = t0 + MINUTES * 60_000;
    const sinceS = (): number => (Date.now() - t0) / 1000;

    // The stream: RATE events/s by the wall clock, sent in slices of at most a second's worth.
    const producer = new EventProducer({ kafka });
    await producer.connect();
    let produced = 0;
    const producing = (async () => {
      const events = syntheticStream(SOURCE).events();
      while (produced < TOTAL) {
        const due = Math.min(TOTAL, Math.floor(((Date.now() - t0) / 1000) * RATE));
        if (due <= produced) {
          await sleep(20);
          continue;
        }
        const n = Math.min(due - produced, Math.ceil(RATE));
        const msgs = [];
        for (let i = 0; i < n; i++) {
          const next = events.next();
          if (next.done === true) break;
          msgs.push({ key: next.value.itemId, value: encodeLabelled(next.value), timestampMs: next.value.timeMs });
        }
        await producer.send(topic, msgs);
        produced += msgs.length;
      }
    })();
    let producerFailed: unknown;
    producing.catch((err: unknown) => (producerFailed = err));

    // Memory and lag, sampled; faults, in turn, none in the last period (a clean end).
    const samples: MemorySample[] = [];
    const lags: { t: number; lag: number }[] = [];
    const faults: Fault[] = [];
    const kinds: FaultKind[] = ['worker', 'redis', 'clickhouse'];
    let nextFaultAt = t0 + FAULT_EVERY_S * 1000;
    let nextSampleAt = t0;
    const lagNow = (): Promise<number> => withAdmin(kafka, (admin) => groupLag(admin, group, [topic])).catch(() => -1);
    const sample = async (): Promise<void> => {
      const pid = steady.child.pid;
      const rss = pid === undefined ? undefined : await rssMb(pid);
      if (rss !== undefined) samples.push({ t: sinceS(), rssMb: rss, heapMb: await heapMb(steadyPort) });
      lags.push({ t: sinceS(), lag: await lagNow() });
    };
    const fault = async (kind: FaultKind): Promise<void> => {
      const at = Date.now();
      if (kind === 'worker') {
        victim.child.kill('SIGKILL');
        await victim.exited;
        victim = start('victim');
      } else if (kind === 'redis') {
        await svc.sh('stop', 'redis');
        await svc.sh('start', 'redis');
      } else {
        await svc.sh('stop', 'clickhouse');
        await sleep(CH_DOWN_S * 1000);
        await svc.sh('start', 'clickhouse');
      }
      faults.push({ kind, atS: (at - t0) / 1000, downMs: Date.now() - at });
      say(`fault ${faults.length}: ${kind} (${((Date.now() - at) / 1000).toFixed(1)} s); produced ${produced}`);
    };
    // A fault runs beside the sampling (a ClickHouse stop and start alone takes ~40-60 s here), one at a time.
    let faulting: Promise<void> | undefined;
    let faultFailed: unknown;
    while (Date.now() < endAt && producerFailed === undefined && faultFailed === undefined) {
      if (!steady.alive()) throw new Error(`the steady worker exited:\n${steady.stderr().slice(-4000)}`);
      if (Date.now() >= nextSampleAt) {
        nextSampleAt += SAMPLE_EVERY_S * 1000;
        await sample();
      }
      if (faulting === undefined && Date.now() >= nextFaultAt && nextFaultAt + FAULT_EVERY_S * 1000 <= endAt) {
        faulting = fault(kinds[faults.length % kinds.length] ?? 'worker').then<void, void>(
          () => {
            // The next one a period after this one ended.
            nextFaultAt = Date.now() + FAULT_EVERY_S * 1000;
            faulting = undefined;
          },
          (err: unknown) => {
            faultFailed = err;
          },
        );
      }
      await sleep(200);
    }
    await faulting;
    if (faultFailed !== undefined) throw toError(faultFailed);
    await producing;
    await producer.close();
    const rateProduced = produced / ((Date.now() - t0) / 1000);
    say(`stream done: ${produced} events (${rateProduced.toFixed(0)}/s); draining`);

    // Drain: the group commits the topic's end, the workers stop on SIGTERM (spools flushed).
    const drainStart = Date.now();
    const ends = await withAdmin(kafka, (admin) => topicOffsets(admin, topic));
    const drainBy = drainStart + 15 * 60_000;
    for (;;) {
      const c = await withAdmin(kafka, async (admin) => {
        const [o] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
        return new Map((o?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      }).catch(() => undefined);
      if (c !== undefined && ends.every((e) => (c.get(e.partition) ?? -1) >= e.high)) break;
      if (Date.now() > drainBy) throw new Error(`the group did not reach the topic's end in 15 min; steady's log ends:\n${steady.stderr().slice(-4000)}`);
      if (Date.now() >= nextSampleAt) {
        nextSampleAt += SAMPLE_EVERY_S * 1000;
        await sample();
      }
      await sleep(500);
    }
    const drainS = (Date.now() - drainStart) / 1000;
    for (const w of [steady, victim]) w.child.kill('SIGTERM');
    const exits = await Promise.all([steady.exited, victim.exited]);
    say(`drained in ${drainS.toFixed(1)} s; workers exited ${exits.join(', ')}; reference run`);

    const ref = await streamingReference(syntheticStream(SOURCE).events(), scope, model(), PARTITIONS);
    const ch = createClient({ url: svc.clickhouseUrl, request_timeout: 300_000, clickhouse_settings: { send_progress_in_http_headers: 1, http_headers_progress_interval_ms: '10000' } });
    let log: LogCheck;
    try {
      log = await checkLog(ch, table, scope.namespace, SEED, produced, ref);
    } finally {
      await ch.close();
    }
    const states = await checkStates(svc.redisUrl, prefix, scope, ref);
    const durationS = MINUTES * 60;
    const byMinute: MinuteRow[] = [];
    for (let m = 0; m * 60 < Math.max(durationS, sinceS()); m++) {
      const inMinute = <T extends { t: number }>(xs: readonly T[]): T[] => xs.filter((x) => x.t >= m * 60 && x.t < (m + 1) * 60);
      const last = inMinute(samples).pop();
      if (last === undefined) continue;
      byMinute.push({
        minute: m + 1,
        rssMb: last.rssMb,
        heapMb: last.heapMb,
        lag: Math.max(0, ...inMinute(lags).map((l) => l.lag)),
        faults: faults
          .filter((f) => f.atS >= m * 60 && f.atS < (m + 1) * 60)
          .map((f) => f.kind)
          .join(' '),
      });
    }
    const figures: Figures = {
      minutes: MINUTES,
      rateAsked: RATE,
      rateProduced,
      produced,
      partitions: PARTITIONS,
      loadBefore,
      loadAfter: load(),
      faults,
      maxLag: Math.max(0, ...lags.map((l) => l.lag)),
      drainS,
      memory: trendOf(
        samples.filter((s) => s.t <= durationS),
        durationS,
      ),
      samples,
      byMinute,
      log,
      states,
    };
    mkdirSync('.thaw/bench', { recursive: true });
    writeFileSync('.thaw/bench/soak.json', JSON.stringify(figures, null, 2));
    process.stdout.write(args.json ? `${JSON.stringify(figures, null, 2)}\n` : report(figures));
  } finally {
    for (const w of workers) if (w.alive()) w.child.kill('SIGKILL');
    await deleteTopics(kafka, [topic]).catch(() => undefined);
    await svc.down().catch((err: unknown) => say(`private services down failed: ${String(err)}`));
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(f: Figures): string {
  const mb = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(1));
  const count = (k: FaultKind): number => f.faults.filter((x) => x.kind === k).length;
  const downOf = (k: FaultKind): string => {
    const d = f.faults.filter((x) => x.kind === k).map((x) => x.downMs / 1000);
    return d.length === 0 ? '-' : `${Math.min(...d).toFixed(1)}–${Math.max(...d).toFixed(1)} s`;
  };
  const m = f.memory;
  return [
    `soak: ${f.minutes} min, ${f.produced.toLocaleString('en')} events at ${f.rateProduced.toFixed(0)} events/s (asked ${f.rateAsked}), ${f.partitions} partitions, 2 \`thaw run item\` workers (fm-adagrad); load average before ${f.loadBefore}, after ${f.loadAfter}`,
    '',
    '| measure | value |',
    '|---|--:|',
    `| faults: worker kill -9 + restart | ${count('worker')} (down ${downOf('worker')}) |`,
    `| faults: Redis stop + start | ${count('redis')} (down ${downOf('redis')}) |`,
    `| faults: ClickHouse stop + start | ${count('clickhouse')} (down ${downOf('clickhouse')}) |`,
    `| largest consumer lag sampled (events) | ${f.maxLag.toLocaleString('en')} |`,
    `| drain after the stream ended | ${f.drainS.toFixed(1)} s |`,
    `| events with a prediction / produced | ${f.log.events.toLocaleString('en')} / ${f.produced.toLocaleString('en')} |`,
    `| **lost** / **doubled** (rows disagreeing: applied twice) | **${f.log.lost}** / **${f.log.doubled}** |`,
    `| events with duplicate rows (agreeing, hidden by de-duplication) | ${f.log.duplicated.toLocaleString('en')} |`,
    `| unexpected event ids | ${f.log.unexpected} |`,
    `| sum of prior counts − reference / \\|sum of scores − reference\\| | ${f.log.priorCountDiff} / ${f.log.scoreSumDiff.toExponential(2)} |`,
    `| Redis states equal to the reference run (1e-6) | ${f.states.entities - f.states.differing - f.states.missing} / ${f.states.entities} (missing ${f.states.missing}, max param diff ${f.states.maxParamDiff.toExponential(2)}) |`,
    `| state counts sum / produced | ${f.states.countSum.toLocaleString('en')} / ${f.produced.toLocaleString('en')} |`,
    `| steady worker RSS first / last / max | ${mb(m.rssFirstMb)} / ${mb(m.rssLastMb)} / ${mb(m.rssMaxMb)} MB |`,
    `| **RSS slope** (least squares, from ${m.fromS.toFixed(0)} s) | **${mb(m.rssSlopeMbPerHour)} MB/h** |`,
    `| heap used last / max | ${mb(m.heapLastMb)} / ${mb(m.heapMaxMb)} MB |`,
    `| **heap slope** (least squares, from ${m.fromS.toFixed(0)} s) | **${mb(m.heapSlopeMbPerHour)} MB/h** |`,
    '',
    `RSS  ${sparkline(f.samples.map((s) => s.rssMb))}  ${mb(Math.min(...f.samples.map((s) => s.rssMb)))}–${mb(m.rssMaxMb)} MB`,
    `heap ${sparkline(f.samples.flatMap((s) => (s.heapMb === undefined ? [] : [s.heapMb])))}  ${mb(Math.min(...f.samples.flatMap((s) => (s.heapMb === undefined ? [] : [s.heapMb]))))}–${mb(m.heapMaxMb)} MB`,
    '',
    '| minute | steady RSS MB | heap MB | max lag | faults |',
    '|--:|--:|--:|--:|---|',
    ...f.byMinute.map((r) => `| ${r.minute} | ${mb(r.rssMb)} | ${mb(r.heapMb)} | ${r.lag.toLocaleString('en')} | ${r.faults} |`),
    '',
  ].join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`soak bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
