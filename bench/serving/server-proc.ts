/**
 * A server of the serving bench in its own process: `thaw` (the scoring pipeline as `thaw serve`
 * assembles it: release follower, Redis state source, startScoringServer) or `naive` (naive.ts).
 * Talks to the bench over IPC: sends `{ type: 'ready', address }`; answers `{ type: 'stats' }` with
 * its cumulative CPU time, GC pauses, event-loop delay and (thaw) its Prometheus text; exits on
 * `{ type: 'stop' }`.
 */
import { monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { ReleaseStore } from '../../model-store/releases.js';
import { createRedis } from '../../model-store/redis.js';
import { ScoringPipeline } from '../../serving/pipeline.js';
import type { ServingOptions } from '../../serving/options.js';
import { followReleases } from '../../serving/release.js';
import { startScoringServer } from '../../serving/server.js';
import { RedisStateSource } from '../../serving/state-source.js';
import { createNaiveApp } from './naive.js';

export interface ServerSpec {
  kind: 'thaw' | 'naive';
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
  /** Event-loop delay since the last stats call (ms). */
  loopP99: number;
  loopMax: number;
  metrics: string;
}

async function main(spec: ServerSpec): Promise<void> {
  let gcCount = 0;
  let gcMs = 0;
  let gcMaxMs = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries() as PerformanceEntry[]) {
      gcCount++;
      gcMs += e.duration;
      gcMaxMs = Math.max(gcMaxMs, e.duration);
    }
  }).observe({ entryTypes: ['gc'] });
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();

  const releases = await followReleases({ store: new ReleaseStore({ root: spec.releaseRoot }), keyPrefix: spec.keyPrefix, namespace: spec.namespace, safeguard: spec.serving.safeguard ?? 'item', pollIntervalMs: 600_000 });
  let address: string;
  let stop: () => Promise<void>;
  let metrics: () => Promise<string> = () => Promise.resolve('');
  if (spec.kind === 'thaw') {
    const pipeline = new ScoringPipeline({ source: new RedisStateSource({ url: spec.redisUrl }), releases, serving: spec.serving });
    const server = await startScoringServer(pipeline, { port: 0 });
    address = server.address;
    stop = () => server.stop();
    metrics = () => pipeline.metrics.registry.metrics();
  } else {
    const redis = createRedis({ url: spec.redisUrl });
    await redis.ping();
    const app = createNaiveApp(redis, releases.current(), spec.serving.maxCandidates ?? 1000);
    address = await app.listen({ host: '127.0.0.1', port: 0 });
    stop = async () => {
      await app.close();
      await releases.stop();
      redis.disconnect();
    };
  }
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'stats') {
      const cpu = process.cpuUsage();
      void metrics().then((text) => {
        const stats: ServerStats = { cpuUserMs: cpu.user / 1000, cpuSystemMs: cpu.system / 1000, gcCount, gcMs, gcMaxMs, loopP99: loop.percentile(99) / 1e6, loopMax: loop.max / 1e6, metrics: text };
        gcMaxMs = 0;
        loop.reset();
        process.send?.({ type: 'stats', stats });
      });
    } else if (msg.type === 'stop') {
      void stop().finally(() => process.exit(0));
    }
  });
  process.send?.({ type: 'ready', address });
}

const arg = process.argv[2];
if (arg === undefined) {
  process.stderr.write('usage: server-proc.ts <ServerSpec JSON>\n');
  process.exit(2);
}
main(JSON.parse(arg) as ServerSpec).catch((err: unknown) => {
  process.stderr.write(`server failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
