/**
 * What the HTTP layer costs per request, to choose it by measurement (issue 12: "fastify, or
 * node:http if you measure it faster"): `thaw serve`'s fastify app (serving/server.ts, routes.ts)
 * against the least any node:http server must do for the same routes (`minimalNodeHttp` below:
 * admission on the request line, read the body, JSON.parse, validate, score, writeHead/end; no
 * body limit, content-type or error handling, so it is a floor, not a product). Everything else is
 * the same: the pipeline, its states (in memory, no Redis: the HTTP layer's share is what is
 * measured), the requests (bench/serving/workload.ts), a closed-loop load generator in a child process.
 *
 * Two modes: `answer` (a started pipeline scores every request) and `refuse` (a pipeline that has
 * not started refuses every request before its body is read, as admission does under overload).
 * Reported: the server's CPU time per answered request (this process; the load generator is a
 * child) and answers per second, median of `--reps` interleaved runs.
 *
 *   node --import tsx bench/serving/http-cost.ts [--seconds 4] [--reps 5] [--connections 32] [--json]
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { FactorizationMachine } from '../../models/fm.js';
import { OverloadedError } from '../../serving/admission.js';
import { ScoringPipeline } from '../../serving/pipeline.js';
import { parseScoreRequest } from '../../serving/request.js';
import { errorBody } from '../../serving/routes.js';
import { fixedRelease, servingRelease } from '../../serving/release.js';
import { createScoringApp } from '../../serving/server.js';
import { MapStateSource } from '../../serving/state-source.js';
import type { LoadResult, LoadSpec } from './loadgen.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    reps: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    json: { type: 'boolean', default: false },
  },
});
const seconds = Number(args.seconds);
const reps = Number(args.reps);
const connections = Number(args.connections);

type Path = 'fastify (thaw serve)' | 'node:http, minimal';
type Mode = 'answer' | 'refuse';

interface Sample {
  cpuUsPerRequest: number;
  answeredPerSec: number;
}

const fm = FactorizationMachine.create({ buckets: 1 << 16, k: 8, seed: 5, initStd: 0.1, release: 'fm/http-cost' });
const release = servingRelease(fm, 'v1', Date.now(), undefined, { keyPrefix: 'http-cost', namespace: 'live', safeguard: 'item' });

const JSON_TYPE = 'application/json; charset=utf-8';

/** The floor of a node:http scoring server: what any must do per request, nothing more. */
function minimalNodeHttp(pipeline: ScoringPipeline): http.Server {
  const deadline = pipeline.config.defaultDeadlineMs;
  const answer = (res: http.ServerResponse, status: number, body: string): void => {
    res.writeHead(status, status === 503 ? { 'content-type': JSON_TYPE, 'retry-after': '1' } : { 'content-type': JSON_TYPE });
    res.end(body);
  };
  return http.createServer((req, res) => {
    const arrivedAt = performance.now();
    const refused = pipeline.refusal(arrivedAt, deadline);
    if (refused !== undefined) return answer(res, 503, errorBody(refused.code, null, refused.message, { reason: refused.reason }));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      pipeline.score(parseScoreRequest(JSON.parse(Buffer.concat(chunks).toString('utf8')), pipeline.config), arrivedAt, deadline).then(
        (body) => answer(res, 200, body),
        (err: unknown) => answer(res, err instanceof OverloadedError ? 503 : 500, '{}'),
      );
    });
  });
}

async function serve(path: Path, mode: Mode): Promise<{ url: string; close: () => Promise<void> }> {
  const pipeline = new ScoringPipeline({ source: new MapStateSource(new Map()), releases: fixedRelease(release), serving: { defaultDeadlineMs: 10_000 }, defaultMetrics: false });
  if (mode === 'answer') await pipeline.start();
  if (path === 'fastify (thaw serve)') {
    const app = createScoringApp(pipeline);
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    return {
      url: `${address}/v1/score`,
      close: async () => {
        await app.close();
        await pipeline.stop();
      },
    };
  }
  const server = minimalNodeHttp(pipeline);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/v1/score`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pipeline.stop();
    },
  };
}

function load(url: string): Promise<LoadResult> {
  const spec: LoadSpec = {
    url,
    mode: 'closed',
    rate: 0,
    connections,
    seconds,
    warmupSeconds: 1,
    deadlineMs: 10_000,
    workload: { users: 200_000, items: 100_000, candidates: 100, unseen: 0.1, zipf: 0.9, seed: 11 },
    bodies: 500,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/serving/loadgen.ts'), JSON.stringify(spec)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as LoadResult) : reject(new Error(`loadgen exited ${code}`))));
  });
}

async function sample(path: Path, mode: Mode): Promise<Sample> {
  const s = await serve(path, mode);
  try {
    // The CPU of this process over the whole load (warm-up included), per answer of the whole load.
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await load(s.url);
    const cpu = process.cpuUsage(cpu0);
    const elapsed = (performance.now() - t0) / 1000;
    const expected = mode === 'answer' ? r.ok : r.shed;
    if (expected === 0 || r.errors > 0) throw new Error(`${path} ${mode}: ${r.ok} answered, ${r.shed} refused, ${r.errors} errors`);
    const answered = r.ok + r.shed;
    // The warm-up's answers are not in r; scale them in by time (the same closed loop, the same rate).
    const all = answered * (elapsed / r.seconds);
    return { cpuUsPerRequest: (cpu.user + cpu.system) / all, answeredPerSec: answered / r.seconds };
  } finally {
    await s.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? Number.NaN;
}

const load0 = loadavg();
const samples = new Map<string, Sample[]>();
for (let rep = 0; rep < reps; rep++) {
  for (const mode of ['answer', 'refuse'] as const) {
    for (const path of (rep % 2 === 0 ? ['fastify (thaw serve)', 'node:http, minimal'] : ['node:http, minimal', 'fastify (thaw serve)']) as Path[]) {
      const key = `${mode}|${path}`;
      const s = await sample(path, mode);
      samples.set(key, [...(samples.get(key) ?? []), s]);
      process.stderr.write(`rep ${rep + 1}/${reps} ${mode} ${path}: ${s.cpuUsPerRequest.toFixed(1)} µs CPU/request, ${s.answeredPerSec.toFixed(0)}/s\n`);
    }
  }
}
const load1 = loadavg();
const rows = [...samples].map(([key, ss]) => {
  const [mode, path] = key.split('|') as [Mode, Path];
  return { mode, path, cpuUsPerRequest: median(ss.map((s) => s.cpuUsPerRequest)), answeredPerSec: median(ss.map((s) => s.answeredPerSec)) };
});
// The runs of one rep are back to back, so their difference cancels most of a shared machine's drift.
const paired = (['answer', 'refuse'] as const).map((mode) => {
  const a = samples.get(`${mode}|fastify (thaw serve)`) ?? [];
  const b = samples.get(`${mode}|node:http, minimal`) ?? [];
  return { mode, fastifyMinusMinimalCpuUs: median(a.map((x, i) => x.cpuUsPerRequest - (b[i]?.cpuUsPerRequest ?? Number.NaN))) };
});
if (args.json) {
  process.stdout.write(JSON.stringify({ seconds, reps, connections, loadavgBefore: load0, loadavgAfter: load1, rows, paired }) + '\n');
} else {
  const f = (x: number): string => x.toLocaleString('en-US', { maximumFractionDigits: 1 });
  process.stdout.write(`HTTP layer: closed loop, ${connections} connections, ${seconds} s × ${reps} interleaved runs (medians); 100 candidates per request, states in memory.\n`);
  process.stdout.write(`Load average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')}.\n\n`);
  process.stdout.write('| mode | server | server CPU µs / request | answers / s |\n|---|---|--:|--:|\n');
  for (const r of rows) process.stdout.write(`| ${r.mode} | ${r.path} | ${f(r.cpuUsPerRequest)} | ${f(r.answeredPerSec)} |\n`);
  process.stdout.write("\nfastify − minimal node:http, CPU µs per request (median of the reps' paired differences): ");
  process.stdout.write(paired.map((p) => `${p.mode} ${f(p.fastifyMinusMinimalCpuUs)}`).join(', ') + '\n');
}
