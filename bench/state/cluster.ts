/**
 * `npm run bench -- --only state-cluster`: the worker's Redis path on a single Redis versus a
 * 3-master Redis Cluster, same workload, same run.
 *
 *   node --import tsx bench/state/cluster.ts [--entities 60000] [--batch 1000] [--passes 3] [--concurrency 1,4] [--cluster-url URL] [--json]
 *
 * Workload (per target and concurrency): `entities` fm-adagrad-sized states (bench/state/sizes.ts)
 * in batches of `batch`, as the worker's micro-batches hit the store: one getMany, then one
 * putManyScoped with the partition's progress, `passes` times over every entity (the first pass
 * creates them). `concurrency` batches are in flight at once (the worker's partitions in parallel).
 * Reported: entities/s of the read, of the write and of the whole cycle, the cycle's latency per
 * batch (p50/p99), and round trips per batch (per node on the cluster: the store's callsByNode).
 *
 * Single Redis: THAW_REDIS_URL (the shared service). Cluster: `--cluster-url` (a seed node, e.g. of
 * `scripts/services.sh up redis-cluster`), else a private 3-master cluster started with
 * scripts/services.sh on free ports and stopped at the end. Both run on this machine: the cluster's
 * 3 redis-server processes share its cores with the bench. Keys are removed at the end. Never asserts.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import { dropNamespace } from '../../model-store/namespaces.js';
import { RedisEntityStore } from '../../model-store/redis-store.js';
import { createRedis } from '../../model-store/redis.js';
import type { EntityState, StateScope } from '../../model-store/types.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { markdownTable, positiveOption, quantile } from '../stats.js';
import { adapterSizes } from './sizes.js';
import { freePorts } from '../../lib/free-port.js';

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

interface Target {
  name: string;
  url: string;
  cluster: boolean;
}

interface Row {
  target: string;
  concurrency: number;
  readPerSec: number;
  writePerSec: number;
  cyclePerSec: number;
  cycleP50Ms: number;
  cycleP99Ms: number;
  callsPerBatch: string;
}

/** A private cluster through scripts/services.sh; `stop` tears it down. */
async function privateCluster(): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'thaw-bench-cluster-'));
  const ports = await freePorts(6);
  const env = { ...process.env, THAW_SERVICES_DIR: dir, THAW_REDIS_CLUSTER_PORT: ports.slice(0, 3).join(','), THAW_REDIS_CLUSTER_BUS_PORTS: ports.slice(3).join(',') };
  const sh = (cmd: string): Promise<unknown> => run('bash', [join(ROOT, 'scripts/services.sh'), cmd, 'redis-cluster'], { env, timeout: 150_000 });
  await sh('up');
  return {
    url: `redis://127.0.0.1:${ports[0] ?? 0}`,
    stop: async () => {
      await sh('down');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function stateOf(offset: number, floats: number): EntityState {
  const params = new Float32Array(floats);
  for (let i = 0; i < floats; i++) params[i] = Math.sin(offset + i);
  return { count: offset + 1, lastOffset: offset, lastEventMs: 1_700_000_000_000 + offset, params };
}

async function measure(target: Target, prefix: string, floats: number, entities: number, batch: number, passes: number, concurrency: number): Promise<Row> {
  const store = new RedisEntityStore({ redis: { url: target.url, cluster: target.cluster }, keyPrefix: prefix, ttlSeconds: 3600 });
  const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };
  const ids = Array.from({ length: entities }, (_, i) => `item-${i}`);
  let readMs = 0;
  let writeMs = 0;
  const cycles: number[] = [];
  let batches = 0;
  try {
    await store.ping();
    await store.getMany(scope, ids.slice(0, 10)); // connects (the cluster learns its slot map)
    store.callsByNode.clear();
    const started = performance.now();
    for (let pass = 0; pass < passes; pass++) {
      const chunks: string[][] = [];
      for (let at = 0; at < entities; at += batch) chunks.push(ids.slice(at, at + batch));
      let next = 0;
      const lane = async (partition: number): Promise<void> => {
        for (let c = next++; c < chunks.length; c = next++) {
          const chunk = chunks[c] ?? [];
          const offset = pass * entities + c * batch + chunk.length - 1;
          const t0 = performance.now();
          await store.getMany(scope, chunk);
          const t1 = performance.now();
          await store.putManyScoped([{ scope, entries: chunk.map((entityId) => ({ entityId, state: stateOf(offset, floats) })) }], { scope, topic: 'bench', partition, offset });
          const t2 = performance.now();
          readMs += t1 - t0;
          writeMs += t2 - t1;
          cycles.push(t2 - t0);
          batches++;
        }
      };
      await Promise.all(Array.from({ length: concurrency }, (_, p) => lane(p)));
    }
    const wall = performance.now() - started;
    const total = entities * passes;
    const calls = [...store.callsByNode.values()].map((n) => (n / batches).toFixed(2));
    return {
      target: target.name,
      concurrency,
      // Read and write shares of the wall time, each as if alone (their sum is the cycle's).
      readPerSec: total / ((wall * readMs) / (readMs + writeMs) / 1000),
      writePerSec: total / ((wall * writeMs) / (readMs + writeMs) / 1000),
      cyclePerSec: total / (wall / 1000),
      cycleP50Ms: quantile(cycles, 0.5),
      cycleP99Ms: quantile(cycles, 0.99),
      callsPerBatch: target.cluster ? `${calls.join(' / ')} per node (a read pipeline, a script)` : '2 (MGET, EVALSHA)',
    };
  } finally {
    const client = createRedis({ url: target.url, cluster: target.cluster });
    try {
      await dropNamespace(client, prefix, 'live', { force: true });
    } finally {
      client.disconnect();
      await store.close();
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      entities: { type: 'string', default: '60000' },
      batch: { type: 'string', default: '1000' },
      passes: { type: 'string', default: '3' },
      concurrency: { type: 'string', default: '1,4' },
      'cluster-url': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const entities = positiveOption('entities', values.entities);
  const batch = positiveOption('batch', values.batch);
  const passes = positiveOption('passes', values.passes);
  const concurrencies = values.concurrency.split(',').map((c) => positiveOption('concurrency', c.trim()));
  const fm = adapterSizes([...syntheticStream({ events: 5000 }).events()]).find((s) => s.adapter === 'fm-adagrad' && s.recent === undefined);
  if (fm === undefined) throw new Error('adapterSizes lists no fm-adagrad state without recent views');

  const seedUrl = values['cluster-url'];
  const own = seedUrl === undefined ? await privateCluster() : undefined;
  const targets: Target[] = [
    { name: 'single Redis', url: process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379', cluster: false },
    { name: '3-master cluster', url: seedUrl ?? own?.url ?? '', cluster: true },
  ];
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');
  const rows: Row[] = [];
  try {
    const runId = randomBytes(3).toString('hex');
    // Interleaved per concurrency, so both targets see the same machine state.
    for (const concurrency of concurrencies) {
      for (const t of targets) {
        process.stderr.write(`state-cluster: ${t.name}, concurrency ${concurrency}\n`);
        rows.push(await measure(t, `bc${runId}${rows.length}`, fm.floats, entities, batch, passes, concurrency));
      }
    }
  } finally {
    await own?.stop();
  }
  if (values.json) {
    process.stdout.write(JSON.stringify({ entities, batch, passes, floats: fm.floats, loadBefore: load, rows }, null, 2) + '\n');
    return;
  }
  const lines = [
    `#### Worker store path, single Redis vs 3-master Redis Cluster: ${entities.toLocaleString('en-US')} fm-adagrad states (${fm.floats} floats), batches of ${batch}, ${passes} passes (read, then CAS write with progress)`,
    '',
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, load average before ${load}; all Redis processes on this machine's 2 cores.`,
    '',
    markdownTable(
      ['target', 'batches in flight', 'read entities/s', 'write entities/s', 'read+write entities/s', 'cycle p50 ms', 'cycle p99 ms', 'round trips per batch'],
      rows.map((r) => [
        r.target,
        String(r.concurrency),
        Math.round(r.readPerSec).toLocaleString('en-US'),
        Math.round(r.writePerSec).toLocaleString('en-US'),
        Math.round(r.cyclePerSec).toLocaleString('en-US'),
        r.cycleP50Ms.toFixed(1),
        r.cycleP99Ms.toFixed(1),
        r.callsPerBatch,
      ]),
    ),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`state-cluster bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
