/**
 * A server of the serving bench in its own process: `thaw` (the scoring pipeline as `thaw serve`
 * assembles it: release follower, Redis state source, startScoringServer) or `naive` (naive.ts).
 * With `processes` > 1 (thaw only) this process is the primary of `thaw serve --processes N`: it runs
 * cli/serve-processes.ts's supervisor (node:cluster, one port, round-robin), and each forked server
 * process runs this same file as one server.
 * Talks to the bench over IPC: sends `{ type: 'ready', address }`; answers `{ type: 'stats' }` with
 * its cumulative CPU time, GC pauses, event-loop delay and (thaw) its Prometheus text, summed over
 * its server processes; exits on `{ type: 'stop' }`.
 */
import cluster from 'node:cluster';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { silentLogger } from '../../lib/log.js';
import { ReleaseStore } from '../../model-store/releases.js';
import { createRedis } from '../../model-store/redis.js';
import { ScoringPipeline } from '../../serving/pipeline.js';
import type { ServingOptions } from '../../serving/options.js';
import { followReleases } from '../../serving/release.js';
import { startScoringServer } from '../../serving/server.js';
import { RedisStateSource } from '../../serving/state-source.js';
import { isServerProcess, serverProcessSignal, superviseServerProcesses } from '../../cli/serve-processes.js';
import { createNaiveApp } from './naive.js';

export interface ServerSpec {
  kind: 'thaw' | 'naive';
  /** Server processes on one port (thaw only; `thaw serve --processes`). @default 1 */
  processes?: number;
  redisUrl: string;
  releaseRoot: string;
  keyPrefix: string;
  namespace: string;
  serving: ServingOptions;
}

export interface ServerStats {
  cpuUserMs: number;
  cpuSystemMs: number;
  gcCount: number;
  gcMs: number;
  gcMaxMs: number;
  /** Event-loop delay since the last stats call (ms; the largest over the processes). */
  loopP99: number;
  loopMax: number;
  /** The Prometheus text of each server process. */
  metrics: string[];
}

/** GC pauses and event-loop delay of this process, and a stats snapshot (resets the maxima). */
function processStats(): () => Promise<Omit<ServerStats, 'metrics'>> {
  let gcCount = 0;
  let gcMs = 0;
  let gcMaxMs = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcCount++;
      gcMs += e.duration;
      gcMaxMs = Math.max(gcMaxMs, e.duration);
    }
  }).observe({ entryTypes: ['gc'] });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  return () => {
    const cpu = process.cpuUsage();
    const stats = { cpuUserMs: cpu.user / 1000, cpuSystemMs: cpu.system / 1000, gcCount, gcMs, gcMaxMs, loopP99: loop.percentile(99) / 1e6, loopMax: loop.max / 1e6 };
    gcMaxMs = 0;
    loop.reset();
    return Promise.resolve(stats);
  };
}

/** One server (a standalone one, or one of `processes`): serves until stopped. */
async function serveOne(spec: ServerSpec, onReady: (address: string) => void, stopSignal: AbortSignal | undefined): Promise<{ stop: () => Promise<void>; metrics: () => Promise<string> }> {
  const releases = await followReleases({
    store: new ReleaseStore({ root: spec.releaseRoot }),
    keyPrefix: spec.keyPrefix,
    namespace: spec.namespace,
    safeguard: spec.serving.safeguard ?? 'item',
    pollIntervalMs: 600_000,
  });
  if (spec.kind === 'thaw') {
    const pipeline = new ScoringPipeline({ source: new RedisStateSource({ url: spec.redisUrl }), releases, serving: spec.serving });
    const server = await startScoringServer(pipeline, { port: 0 });
    stopSignal?.addEventListener('abort', () => void server.stop().finally(() => process.exit(0)), { once: true });
    onReady(server.address);
    return { stop: () => server.stop(), metrics: () => pipeline.metrics.registry.metrics() };
  }
  const redis = createRedis({ url: spec.redisUrl });
  await redis.ping();
  const app = createNaiveApp(redis, releases.current(), spec.serving.maxCandidates ?? 1000);
  onReady(await app.listen({ host: '127.0.0.1', port: 0 }));
  return {
    stop: async () => {
      await app.close();
      await releases.stop();
      redis.disconnect();
    },
    metrics: () => Promise.resolve(''),
  };
}

/** The standalone server or one server process of several: answers stats and stop over IPC. */
async function server(spec: ServerSpec): Promise<void> {
  const stats = processStats();
  const inCluster = isServerProcess();
  const stopSignal = inCluster ? serverProcessSignal(new AbortController().signal) : undefined;
  const one = await serveOne(spec, (address) => (inCluster ? undefined : process.send?.({ type: 'ready', address })), stopSignal);
  process.on('message', (msg: { type?: string }) => {
    if (msg.type === 'stats') {
      void Promise.all([stats(), one.metrics()]).then(([s, text]) => process.send?.({ type: 'stats', stats: { ...s, metrics: [text] } }));
    } else if (msg.type === 'stop') {
      void one.stop().finally(() => process.exit(0));
    }
  });
}

/** The primary of `processes` server processes: cli/serve-processes.ts's supervisor, stats summed. */
async function primary(spec: ServerSpec, processes: number): Promise<void> {
  const own = processStats();
  const ac = new AbortController();
  const listening = new Promise<string>((resolve) => {
    const stdout = { write: (s: string): boolean => (/listening on (\S+)/.test(s) ? (resolve(/listening on (\S+)/.exec(s)?.[1] ?? ''), true) : true) };
    const ctx = { stdout, stderr: process.stderr, logger: silentLogger, signal: ac.signal, env: process.env };
    void superviseServerProcesses(processes, ctx, silentLogger).then((code) => process.exit(code));
  });
  const address = await listening;
  const ask = (): Promise<ServerStats[]> =>
    Promise.all(
      Object.values(cluster.workers ?? {}).map(
        (w) =>
          new Promise<ServerStats>((resolve) => {
            if (w === undefined) return;
            const onMessage = (m: { type?: string; stats?: ServerStats }): void => {
              if (m.type !== 'stats' || m.stats === undefined) return;
              w.off('message', onMessage);
              resolve(m.stats);
            };
            w.on('message', onMessage);
            w.send({ type: 'stats' });
          }),
      ),
    );
  process.on('message', (msg: { type?: string }) => {
    if (msg.type === 'stats') {
      void Promise.all([own(), ask()]).then(([p, workers]) => {
        const sum = (f: (s: Omit<ServerStats, 'metrics'>) => number): number => workers.reduce((a, s) => a + f(s), f(p));
        const max = (f: (s: Omit<ServerStats, 'metrics'>) => number): number => workers.reduce((a, s) => Math.max(a, f(s)), 0);
        const stats: ServerStats = {
          cpuUserMs: sum((s) => s.cpuUserMs),
          cpuSystemMs: sum((s) => s.cpuSystemMs),
          gcCount: sum((s) => s.gcCount),
          gcMs: sum((s) => s.gcMs),
          gcMaxMs: max((s) => s.gcMaxMs),
          loopP99: max((s) => s.loopP99),
          loopMax: max((s) => s.loopMax),
          metrics: workers.flatMap((s) => s.metrics),
        };
        process.send?.({ type: 'stats', stats });
      });
    } else if (msg.type === 'stop') {
      ac.abort();
    }
  });
  process.send?.({ type: 'ready', address });
}

const arg = process.argv[2];
if (arg === undefined) {
  process.stderr.write('usage: server-proc.ts <ServerSpec JSON>\n');
  process.exit(2);
}
const spec = JSON.parse(arg) as ServerSpec;
const processes = spec.processes ?? 1;
(processes > 1 && spec.kind === 'thaw' && cluster.isPrimary ? primary(spec, processes) : server(spec)).catch((err: unknown) => {
  process.stderr.write(`server failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
