/**
 * `npm run bench -- --only serving`: the scoring API (`thaw serve`) under open-loop load with real
 * Redis, beside the model stage alone, Redis MGET alone and a naive baseline server.
 *
 *   node --import tsx bench/serving/run.ts [--users 200000] [--items 100000] [--candidates 100]
 *        [--unseen 0.1] [--zipf 0.9] [--rates 500,1000,2000,4000] [--seconds 5] [--warmup 1]
 *        [--connections 32] [--saturation-seconds 5] [--overload 3] [--writes 2000] [--probes 30]
 *        [--servers thaw,thaw-2p,naive] [--profile DIR] [--node-flags '--trace-gc ...']
 *        [--json] [--out .thaw/bench/serving.json]
 *
 * Setup (untimed): an FM release (k 8, 262,144 buckets, `thaw train fm`'s sizes) is published to a
 * fresh release directory; fm-adagrad states of `--users` users and `--items` items are written to
 * Redis under a fresh key prefix (removed at the end). Workload: bench/serving/workload.ts (Zipf-
 * skewed users and candidates, `--unseen` of the ids never written). While a server runs, a writer
 * re-writes `--writes` states/s of entities drawn the same way (the workers' updates).
 *
 * Servers: `thaw` (one process), `thaw-2p` (`thaw serve --processes 2`: cli/serve-processes.ts's
 * supervisor, two server processes on one port), `naive`. `--profile DIR` writes a V8 CPU profile of
 * each server process (bench/serving/profile-summary.ts reads it); `--node-flags` are added to the
 * server processes' Node flags (e.g. `--trace-gc`).
 * Per server (each in its own process, bench/serving/server-proc.ts), after 4 s of unmeasured load at
 * 500 req/s (JIT, cache), the load generator (a child process, bench/serving/loadgen.ts) runs an open loop at each rate (exponential gaps, latency from
 * the intended send time) for `--seconds` after `--warmup`, then a closed loop of `--connections`
 * clients (saturation), then an open loop at `--overload` × its highest goodput so far (the issue's
 * overload rule, checked in a line under the table; 0 skips it). Per run: p50/p99/p99.9 of the answered requests, goodput (200 within the
 * 50 ms default deadline, per s), 503s, errors; the server's cache tiers (thaw), GC pauses,
 * event-loop delay, CPU of the server, of Redis (INFO cpu) and of the load generator.
 * Freshness (thaw): `--probes` times a cached item's state is re-written in Redis with a new count,
 * and the time until a served response shows that count is measured, under 1,000 req/s of load
 * (`freshnessProbes`). This is the serving half of "event produced → visible": the worker's half
 * (event produced → state in Redis) is the spine bench's paced latency.
 * Markdown on stdout, progress on stderr, JSON in --out (and on stdout with --json). Never asserts.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { entityKey } from '../../model-store/keys.js';
import { createRedis } from '../../model-store/redis.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { encodeState } from '../../model-store/state-codec.js';
import { fmStateSize } from '../../models/fm-entity.js';
import { FactorizationMachine } from '../../models/fm.js';
import { bundleFm } from '../../models/onnx/bundle.js';
import { servingRelease, type ServingRelease } from '../../serving/release.js';
import { markdownTable, positiveOption } from '../stats.js';
import { histogramQuantileMs, metricValue } from './prometheus-text.js';
import { ServerProcess, runLoad } from './processes.js';
import { redisCpuSeconds, startWriter, writeStates } from './redis-states.js';
import { SERVER_NAMES, cpuRow, f1, int, overloadLine, table, tunedLines, type OverloadCheck, type Row, type ServerName } from './report.js';
import { mgetAlone, modelAlone, type MgetAlone, type ModelAlone } from './alone.js';
import { cpuCosts } from './overload-bound.js';
import type { LoadSpec } from './loadgen.js';
import type { ServerSpec, ServerStats } from './server-proc.js';
import { tunedVsDefault, type TunedVsDefault } from './tuned.js';
import { requestBodies, rng, type Workload } from './workload.js';

const ROOT = resolve(import.meta.dirname, '../..');
const REDIS_URL = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';
const NAMESPACE = 'live';
const DEADLINE_MS = 50;
/** Unmeasured load at 500 req/s on a freshly started server before its first measured rate (s). */
const SERVER_WARMUP_SECONDS = 4;

const log = (msg: string, fields: Record<string, unknown> = {}): void => {
  process.stderr.write(JSON.stringify({ t: new Date().toISOString(), bench: 'serving', msg, ...fields }) + '\n');
};

interface Freshness {
  probes: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

async function measure(server: ServerProcess, kind: ServerName, load: string, redis: Redis, spec: LoadSpec): Promise<Row> {
  const s0 = await server.stats();
  const r0 = await redisCpuSeconds(redis);
  const t0 = performance.now();
  const result = await runLoad(spec);
  const wall = (performance.now() - t0) / 1000;
  const s1 = await server.stats();
  const r1 = await redisCpuSeconds(redis);
  const tier = (t: string, s: ServerStats): number => metricValue(s.metrics, `thaw_serve_state_reads_total{tier="${t}"}`);
  const shed = (reason: string): number => metricValue(s1.metrics, `thaw_serve_shed_total{reason="${reason}"}`) - metricValue(s0.metrics, `thaw_serve_shed_total{reason="${reason}"}`);
  const isThaw = kind !== 'naive';
  const row: Row = {
    server: kind,
    load,
    result,
    cpuServerPct: (100 * (s1.cpuUserMs + s1.cpuSystemMs - s0.cpuUserMs - s0.cpuSystemMs)) / 1000 / wall,
    cpuRedisPct: (100 * (r1 - r0)) / wall,
    cpuLoadgenPct: (100 * (result.cpuUserMs + result.cpuSystemMs)) / 1000 / result.seconds,
    gcMs: s1.gcMs - s0.gcMs,
    gcMaxMs: s1.gcMaxMs,
    loopP99: s1.loopP99,
    serverP99Ms: isThaw ? histogramQuantileMs(s0.metrics, s1.metrics, 'thaw_serve_request_seconds', 0.99) : undefined,
    shedReasons: isThaw ? { deadline: shed('deadline'), late: shed('late'), queueFull: shed('queue-full') } : undefined,
    tiers: isThaw ? { cache: tier('cache', s1) - tier('cache', s0), store: tier('store', s1) - tier('store', s0), unavailable: tier('unavailable', s1) - tier('unavailable', s0) } : undefined,
  };
  log('run done', { server: kind, load, ok: result.ok, shed: result.shed, p99: result.p99 });
  return row;
}

/**
 * Freshness of served states: per probe, an item (ids `probe<n>`, which the writer never touches)
 * is scored once (so the server's cache holds it, as it holds every hot item), then after a random
 * 0-1 s its state is re-written in Redis with a new count, then it is scored every 2 ms until a
 * response shows that count: the time from the write to the first response showing it.
 */
async function freshnessProbes(address: string, redis: Redis, release: ServingRelease, k: number, probes: number): Promise<Freshness> {
  const lat: number[] = [];
  const rand = rng(99);
  const params = new Float32Array(fmStateSize(k)).fill(0.01);
  const score = async (itemId: string): Promise<number | undefined> => {
    const body = JSON.stringify({ user: { id: 'u0' }, candidates: [{ id: itemId }] });
    const res = await fetch(`${address}/v1/score`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-deadline-ms': '2000' } });
    const out = (await res.json()) as { scores?: { events: number | null }[] };
    return out.scores?.[0]?.events ?? undefined;
  };
  for (let p = 0; p < probes; p++) {
    const itemId = `probe${p % 10}`;
    await redis.set(entityKey(release.itemPrefix, itemId), encodeState({ count: 1, lastOffset: 1, lastEventMs: Date.now(), params }));
    await score(itemId);
    await new Promise((r) => setTimeout(r, rand() * 1000));
    const count = 1_000_000 + p;
    await redis.set(entityKey(release.itemPrefix, itemId), encodeState({ count, lastOffset: 3, lastEventMs: Date.now(), params }));
    const written = performance.now();
    while ((await score(itemId)) !== count && performance.now() - written < 10_000) await new Promise((r) => setTimeout(r, 2));
    lat.push(performance.now() - written);
  }
  lat.sort((a, b) => a - b);
  const at = (q: number): number => lat[Math.min(lat.length - 1, Math.ceil(q * lat.length) - 1)] ?? Number.NaN;
  return { probes, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: lat[lat.length - 1] ?? Number.NaN };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '200000' },
      items: { type: 'string', default: '100000' },
      candidates: { type: 'string', default: '100' },
      unseen: { type: 'string', default: '0.1' },
      zipf: { type: 'string', default: '0.9' },
      rates: { type: 'string', default: '500,1000,2000,4000' },
      seconds: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      connections: { type: 'string', default: '32' },
      'saturation-seconds': { type: 'string', default: '5' },
      writes: { type: 'string', default: '2000' },
      probes: { type: 'string', default: '30' },
      overload: { type: 'string', default: '3' },
      'tune-rate': { type: 'string', default: '2000' },
      'tune-seconds': { type: 'string', default: '3' },
      servers: { type: 'string', default: 'thaw,thaw-2p,naive' },
      profile: { type: 'string' },
      'node-flags': { type: 'string', default: '' },
      json: { type: 'boolean', default: false },
      out: { type: 'string', default: '.thaw/bench/serving.json' },
    },
  });
  const k = 8;
  const workload: Workload = {
    users: positiveOption('users', values.users),
    items: positiveOption('items', values.items),
    candidates: positiveOption('candidates', values.candidates),
    unseen: Number(values.unseen),
    zipf: positiveOption('zipf', values.zipf, false),
    seed: 11,
  };
  const rates = values.rates.split(',').map((r) => positiveOption('rates', r, false));
  const seconds = positiveOption('seconds', values.seconds, false);
  const warmup = Number(values.warmup);
  const servers = values.servers.split(',').map((name): ServerName => {
    const known = SERVER_NAMES.find((n) => n === name);
    if (known === undefined) throw new Error(`--servers: unknown server ${JSON.stringify(name)} (known: ${SERVER_NAMES.join(', ')})`);
    return known;
  });
  const nodeFlags = values['node-flags'].split(/\s+/).filter((f) => f !== '');
  const loadBefore = loadavg();
  const t0 = performance.now();
  const prefix = `bs${randomBytes(5).toString('hex')}`;
  const releaseRoot = await mkdtemp(join(tmpdir(), 'thaw-bench-serving-'));
  const redis = createRedis({ url: REDIS_URL });
  const cleanup = async (): Promise<void> => {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
    await rm(releaseRoot, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  try {
    // The release and the states.
    const fm = FactorizationMachine.create({ buckets: 262_144, k, seed: 5, initStd: 0.05 });
    const store = new ReleaseStore({ root: releaseRoot });
    const bundle = bundleFm(fm);
    const manifest = await store.publish({ model: 'fm', architecture: bundle.architecture, files: bundle.files });
    await store.promote('fm', manifest.version);
    const release = servingRelease(fm, manifest.version, manifest.createdAtMs, undefined, { keyPrefix: prefix, namespace: NAMESPACE, safeguard: 'item' });
    log('writing states', { users: workload.users, items: workload.items });
    await writeStates(redis, release, workload, k);
    const bodies = requestBodies(workload, 2048);

    // Beside: the model stage alone, MGET alone.
    log('model stage alone');
    const model: ModelAlone = modelAlone(release, bodies, 64, 2);
    log('mget alone');
    const mget: MgetAlone[] = [await mgetAlone(redis, release, bodies, 1, 2), await mgetAlone(redis, release, bodies, 16, 2)];

    const rows: Row[] = [];
    const overloadChecks: OverloadCheck[] = [];
    let freshness: Freshness | undefined;
    const serving = { maxCandidates: 1000, safeguard: 'item' as const, safeguardPartitions: 1 };
    for (const kind of servers) {
      const spec: ServerSpec = { kind: kind === 'naive' ? 'naive' : 'thaw', processes: kind === 'thaw-2p' ? 2 : 1, redisUrl: REDIS_URL, releaseRoot, keyPrefix: prefix, namespace: NAMESPACE, serving };
      const server = await ServerProcess.start(spec, values.profile, nodeFlags);
      const stopWriter = startWriter(redis, release, workload, k, Number(values.writes));
      try {
        const base: Omit<LoadSpec, 'mode' | 'rate' | 'connections' | 'seconds'> = { url: `${server.address}/v1/score`, warmupSeconds: warmup, deadlineMs: DEADLINE_MS, workload, bodies: 2048 };
        // A cold server (JIT, empty cache) is slow for its first seconds: warm it before the first measured rate.
        log('warming the server', { server: kind, seconds: SERVER_WARMUP_SECONDS });
        await runLoad({ ...base, mode: 'open', rate: 500, connections: 0, seconds: SERVER_WARMUP_SECONDS, warmupSeconds: 0 });
        for (const rate of rates) rows.push(await measure(server, kind, `open ${int(rate)}/s`, redis, { ...base, mode: 'open', rate, connections: 0, seconds }));
        const conns = positiveOption('connections', values.connections);
        const closed = await measure(server, kind, `closed ${conns} conns`, redis, {
          ...base,
          mode: 'closed',
          rate: 0,
          connections: conns,
          seconds: positiveOption('saturation-seconds', values['saturation-seconds'], false),
        });
        rows.push(closed);
        // The overload rule at `--overload` × capacity: capacity is the highest goodput this
        // server reached in the run (open or closed loop; a closed loop of 32 clients moves in lockstep
        // and can stay below what the open loop shows).
        const overload = Number(values.overload);
        const capacity = Math.max(...rows.filter((r) => r.server === kind).map((r) => r.result.goodputPerSec));
        if (overload > 0 && capacity > 0) {
          const rate = Math.round(overload * capacity);
          const row = await measure(server, kind, `open ${overload}× cap. ${int(rate)}/s`, redis, { ...base, mode: 'open', rate, connections: 0, seconds });
          rows.push(row);
          const lowest = rows.find((r) => r.server === kind && r.load.startsWith('open '));
          if (lowest !== undefined)
            overloadChecks.push({
              server: kind,
              factor: overload,
              capacity,
              rate,
              unloadedP99: lowest.result.p99,
              unloadedLoad: lowest.load,
              p99: row.result.p99,
              goodput: row.result.goodputPerSec,
              cpuCost: kind === 'thaw' ? cpuCosts(cpuRow(closed), cpuRow(row)) : undefined,
            });
        }
        if (kind === 'thaw' && Number(values.probes) > 0) {
          log('freshness probes under 1,000 req/s');
          const background = runLoad({ ...base, mode: 'open', rate: 1000, connections: 0, seconds: Math.ceil(Number(values.probes) * 1.6) + 5, warmupSeconds: 0 });
          freshness = await freshnessProbes(server.address, redis, release, k, Number(values.probes));
          // The background load runs its fixed time; wait for it so it does not overlap the next server.
          await background;
        }
      } finally {
        await stopWriter();
        await server.stop();
      }
    }

    // Tuned vs default (the resource manager): tune on seed A in-process, run both on seed B over HTTP.
    let tuned: TunedVsDefault | undefined;
    const tuneRate = Number(values['tune-rate']);
    if (tuneRate > 0) {
      tuned = await tunedVsDefault({
        release,
        redisUrl: REDIS_URL,
        workload,
        serving,
        rate: tuneRate,
        tuneSeconds: positiveOption('tune-seconds', values['tune-seconds'], false),
        deadlineMs: DEADLINE_MS,
        log,
        runServer: async (settings, w) => {
          const server = await ServerProcess.start(
            { kind: 'thaw', processes: 1, redisUrl: REDIS_URL, releaseRoot, keyPrefix: prefix, namespace: NAMESPACE, serving: { ...serving, ...settings } },
            undefined,
            nodeFlags,
          );
          const stopWriter = startWriter(redis, release, workload, k, Number(values.writes));
          try {
            const base = { url: `${server.address}/v1/score`, deadlineMs: DEADLINE_MS, bodies: 2048, connections: 0, mode: 'open' as const };
            await runLoad({ ...base, workload: w, rate: 500, seconds: SERVER_WARMUP_SECONDS, warmupSeconds: 0 });
            return await runLoad({ ...base, workload: w, rate: tuneRate, seconds, warmupSeconds: warmup });
          } finally {
            await stopWriter();
            await server.stop();
          }
        },
      });
    }

    const report = {
      startedAt: new Date().toISOString(),
      cpus: cpus().length,
      loadBefore,
      loadAfter: loadavg(),
      wallSec: (performance.now() - t0) / 1000,
      workload,
      k,
      deadlineMs: DEADLINE_MS,
      model,
      mget,
      rows,
      overloadChecks,
      freshness,
      tuned,
    };
    const lines = [
      `## serving: thaw serve under open-loop load (${workload.candidates} candidates per request, real Redis)`,
      '',
      `${int(workload.users)} users and ${int(workload.items)} items in Redis (fm-adagrad states, k ${k}); Zipf ${workload.zipf} users and candidates, ${Math.round(workload.unseen * 100)} % unseen ids; ${int(Number(values.writes))} state writes/s meanwhile. Open loop: ${seconds} s per rate after ${warmup} s of warm-up, latency from the intended send; closed loop: ${values.connections} clients. Goodput: 200 within ${DEADLINE_MS} ms, per s. Load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${report.loadAfter.map((x) => x.toFixed(2)).join(' ')} (${report.cpus} cores${loadBefore[0] !== undefined && loadBefore[0] > 2 ? ', shared and loaded' : ''}).`,
      '',
      table(rows),
      '',
      ...(overloadChecks.length === 0
        ? []
        : ['Overload (issue 12: at 3× capacity, admitted p99 within 4× the unloaded p99 and goodput ≥ 90 % of capacity):', '', ...overloadChecks.map(overloadLine), '']),
      ...(tuned === undefined ? [] : tunedLines(tuned)),
      'Beside it, from the same run:',
      '',
      markdownTable(
        ['piece', 'measure', 'value'],
        [
          ['model stage alone', `FM kernel + safeguard, batches of ${model.batch} requests`, `${f1(model.kernelUsPerRequest)} µs/request (${int(model.scoresPerSec)} scores/s)`],
          ['model stage alone', '+ the JSON response body', `${f1(model.withBodyUsPerRequest)} µs/request`],
          ...mget.map((m): string[] => ['Redis MGET alone', `${int(m.keysPerCall)} keys per call, sequential`, `p50 ${f1(m.p50Ms)} ms, p99 ${f1(m.p99Ms)} ms (${int(m.keysPerSec)} keys/s)`]),
          ...(freshness === undefined
            ? []
            : [
                [
                  'freshness (thaw)',
                  `state re-written in Redis → visible in a response, under 1,000 req/s, ${freshness.probes} probes`,
                  `p50 ${int(freshness.p50Ms)} ms, p99 ${int(freshness.p99Ms)} ms, max ${int(freshness.maxMs)} ms`,
                ],
              ]),
        ],
      ),
      '',
    ];
    const outPath = resolve(ROOT, values.out);
    await mkdir(dirname(outPath), { recursive: true });
    await writeFile(outPath, JSON.stringify(report, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
    process.stdout.write(values.json ? JSON.stringify(report) + '\n' : lines.join('\n') + `\nJSON: ${outPath}\n`);
  } finally {
    await cleanup();
    redis.disconnect();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench serving failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
