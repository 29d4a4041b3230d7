/**
 * The serving bench's load generator, run as a child process (its own thread and heap, so its work
 * does not queue behind the server's). Prints one JSON result on stdout.
 *
 *   open   (open loop) arrivals at `rate` per second with exponential gaps, fixed in advance: a
 *          request is due at its intended time whether or not earlier ones were answered, and its
 *          latency counts from that intended time, so queueing in the client and in the server
 *          both count (no coordinated omission; autocannon's -R is not this: it bursts at the start
 *          of each second). The lag between intended and actual send is reported separately.
 *   closed (closed loop, saturation) `connections` clients, each sending its next request when the
 *          previous one is answered; latency from send.
 *
 * Requests go over keep-alive node:http connections (no fetch: its per-request cost would load
 * the generator more than the server).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { requestBodies, rng, type Workload } from './workload.js';

export interface LoadSpec {
  url: string;
  mode: 'open' | 'closed';
  /** Open loop: arrivals per second. */
  rate: number;
  /** Closed loop: concurrent clients. */
  connections: number;
  seconds: number;
  /** Untimed load before the measured part, at the same rate/concurrency. */
  warmupSeconds: number;
  /** A response slower than this (from intended send) does not count as goodput (ms). */
  deadlineMs: number;
  workload: Workload;
  /** Distinct request bodies cycled through. */
  bodies: number;
}

export interface LoadResult {
  mode: 'open' | 'closed';
  offeredPerSec: number;
  seconds: number;
  sent: number;
  ok: number;
  shed: number;
  errors: number;
  /** Answered with 200 within `deadlineMs`, per second. */
  goodputPerSec: number;
  okPerSec: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** p99 of (actual send − intended send) in the open loop (ms): the generator's own lag. */
  sendLagP99: number;
  cpuUserMs: number;
  cpuSystemMs: number;
}

function q(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN;
}

async function run(spec: LoadSpec): Promise<LoadResult> {
  const url = new URL(spec.url);
  const bodies = requestBodies(spec.workload, spec.bodies);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });
  const lat: number[] = [];
  const lags: number[] = [];
  let sent = 0;
  let ok = 0;
  let shed = 0;
  let errors = 0;
  let good = 0;
  let outstanding = 0;
  let measuring = false;
  let next = 0;
  const send = (intended: number, done: () => void): void => {
    const body = bodies[next++ % bodies.length] as Buffer;
    const counted = measuring;
    if (counted) {
      sent++;
      lags.push(performance.now() - intended);
    }
    outstanding++;
    const req = http.request(
      { agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => {
          outstanding--;
          if (counted) {
            const ms = performance.now() - intended;
            if (res.statusCode === 200) {
              ok++;
              lat.push(ms);
              if (ms <= spec.deadlineMs) good++;
            } else if (res.statusCode === 503) shed++;
            else errors++;
          }
          done();
        });
      },
    );
    req.on('error', () => {
      outstanding--;
      if (counted) errors++;
      done();
    });
    req.end(body);
  };

  const phase = (seconds: number): Promise<void> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const end = t0 + seconds * 1000;
      if (spec.mode === 'open') {
        const rand = rng(spec.workload.seed + 17);
        let due = t0;
        const pump = (): void => {
          const now = performance.now();
          while (due <= now && due < end) {
            send(due, () => undefined);
            due += (-Math.log(1 - rand()) * 1000) / spec.rate;
          }
          if (due < end) setTimeout(pump, Math.max(0, due - performance.now() - 0.3));
          else resolve();
        };
        pump();
      } else {
        let running = spec.connections;
        const loop = (): void => {
          if (performance.now() >= end) {
            if (--running === 0) resolve();
            return;
          }
          send(performance.now(), loop);
        };
        for (let c = 0; c < spec.connections; c++) loop();
      }
    });

  if (spec.warmupSeconds > 0) await phase(spec.warmupSeconds);
  while (outstanding > 0) await new Promise((r) => setTimeout(r, 5));
  measuring = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await phase(spec.seconds);
  const drainUntil = performance.now() + 10_000;
  while (outstanding > 0 && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 2));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  agent.destroy();
  const sorted = Float64Array.from(lat).sort();
  const lagSorted = Float64Array.from(lags).sort();
  return {
    mode: spec.mode,
    offeredPerSec: spec.mode === 'open' ? spec.rate : sent / spec.seconds,
    seconds: elapsed,
    sent,
    ok,
    shed,
    errors: errors + outstanding,
    goodputPerSec: good / spec.seconds,
    okPerSec: ok / spec.seconds,
    p50: q(sorted, 0.5),
    p99: q(sorted, 0.99),
    p999: q(sorted, 0.999),
    max: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] ?? Number.NaN),
    sendLagP99: q(lagSorted, 0.99),
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
  };
}

const arg = process.argv[2];
if (arg === undefined) {
  process.stderr.write('usage: loadgen.ts <LoadSpec JSON>\n');
  process.exit(2);
}
run(JSON.parse(arg) as LoadSpec).then(
  (r) => process.stdout.write(JSON.stringify(r) + '\n'),
  (err: unknown) => {
    process.stderr.write(`loadgen failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
