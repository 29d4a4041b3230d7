/**
 * `npm run bench -- --only ch-shards`: the prediction log on one ClickHouse node against 2 shards
 * behind a Distributed table (analytics/cluster.ts), both on this machine.
 *
 *   node --import tsx bench/ch-shards/run.ts [--rows 1000000] [--batch 50000] [--entities 20000]
 *        [--queries 3] [--json] [--out .thaw/bench/ch-shards.json]
 *
 * The same rows (a tenth of them redelivered) go through ClickHouseSink to the shared single node
 * (THAW_CLICKHOUSE_URL, a database of its own) and to a private 2-shard instance started with
 * `scripts/services.sh up clickhouse-shards` on free ports (stopped at the end); writes of --batch
 * rows, one at a time, as a worker's group commit sends them. Then the warm-up curve query and the
 * de-duplicated count, each --queries times (median). Entities are drawn with a power law, so the
 * shards' row counts show the skew a hot entity causes. Both setups share this machine's cores: the
 * figures are the cost of the Distributed path, not the gain of more hardware. Never asserts.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ClickHouseSink } from '../../analytics/clickhouse-sink.js';
import { queryCurves } from '../../analytics/curves.js';
import { countRows } from '../../analytics/namespaces.js';
import type { PredictionRow } from '../../analytics/types.js';
import { PrivateShards } from '../../test/integration/analytics/private-shards.js';
import { markdownTable, positiveOption, quantile } from '../stats.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SINGLE_URL = process.env.THAW_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123';

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rows(n: number, entities: number): PredictionRow[] {
  const r = rng(7);
  const t0 = Date.UTC(2026, 0, 1);
  const out: PredictionRow[] = [];
  for (let i = 0; i < n; i++) {
    const side = i % 2 === 0 ? 'item' : 'user';
    const label: 0 | 1 = r() < 0.3 ? 1 : 0;
    out.push({
      eventId: `ev-${i}`,
      eventTimeMs: t0 + i * 1000,
      side,
      entityId: `${side}-${Math.floor(r() ** 3 * entities)}`, // power law: a few hot entities
      priorCount: Math.floor(r() ** 2 * 80),
      score: Math.fround(Math.min(0.99, Math.max(0.01, 0.3 + (label - 0.3) * 0.2 + (r() - 0.5) * 0.5))),
      label,
      adapter: i % 4 < 2 ? 'fm-adagrad' : 'none',
      release: 'r1',
      namespace: 'live',
    });
  }
  return out;
}

interface Result {
  setup: string;
  insertRowsPerS: number;
  curvesMs: number;
  countDistinctMs: number;
  distinct: number;
  curveRows: number;
  shardRows?: number[];
}

async function measure(setup: string, sink: ClickHouseSink, data: readonly PredictionRow[], batch: number, queries: number): Promise<Result> {
  await sink.ensureSchema();
  const t0 = performance.now();
  for (let i = 0; i < data.length; i += batch) await sink.write(data.slice(i, i + batch));
  await sink.flush();
  const insertRowsPerS = data.length / ((performance.now() - t0) / 1000);
  const curveTimes: number[] = [];
  const countTimes: number[] = [];
  let curveRows = 0;
  let distinct = 0;
  for (let q = 0; q < queries; q++) {
    let t = performance.now();
    curveRows = (await queryCurves(sink, {})).length;
    curveTimes.push(performance.now() - t);
    t = performance.now();
    distinct = await countRows(sink, { distinct: true });
    countTimes.push(performance.now() - t);
  }
  process.stderr.write(`[ch-shards] ${setup}: ${Math.round(insertRowsPerS)} rows/s\n`);
  return { setup, insertRowsPerS, curvesMs: quantile(curveTimes, 0.5), countDistinctMs: quantile(countTimes, 0.5), distinct, curveRows };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '1000000' },
      batch: { type: 'string', default: '50000' },
      entities: { type: 'string', default: '20000' },
      queries: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
      out: { type: 'string', default: '.thaw/bench/ch-shards.json' },
    },
  });
  const n = positiveOption('rows', values.rows);
  const batch = positiveOption('batch', values.batch);
  const queries = positiveOption('queries', values.queries);
  const base = rows(n, positiveOption('entities', values.entities));
  const data = [...base, ...base.filter((_, i) => i % 10 === 0)]; // a tenth redelivered
  const loadBefore = loadavg();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const database = `thaw_bench_${randomUUID().replace(/-/g, '')}`;
  const spool = await mkdtemp(join(tmpdir(), 'thaw-bench-spool-'));
  process.stderr.write('[ch-shards] starting 2 private shards\n');
  const shards = await PrivateShards.up('thaw_bench_shards');
  const single = new ClickHouseSink({ url: SINGLE_URL, database, table: 'predictions', spoolDir: join(spool, 'single') });
  const sharded = new ClickHouseSink({
    url: shards.shardUrls[0] ?? '',
    database,
    table: 'predictions',
    spoolDir: join(spool, 'sharded'),
    cluster: { name: shards.cluster, shardUrls: shards.shardUrls },
  });
  const results: Result[] = [];
  try {
    results.push(await measure('1 node', single, data, batch, queries));
    const r = await measure('2 shards (Distributed, sync inserts)', sharded, data, batch, queries);
    r.shardRows = [];
    for (const s of sharded.shards ?? []) r.shardRows.push(Number((await s.query(`SELECT count() AS c FROM ${database}.predictions_local`))[0]?.c ?? 0));
    results.push(r);
  } finally {
    await single.command(`DROP DATABASE IF EXISTS ${database}`).catch(() => undefined);
    await Promise.all([single.close(), sharded.close()]);
    await shards.down();
    await rm(spool, { recursive: true, force: true });
  }
  const report = {
    startedAt,
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadavg(),
    wallSeconds: (performance.now() - t0) / 1000,
    rows: data.length,
    distinctRows: n,
    batch,
    results,
  };
  const out = resolve(ROOT, values.out);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(report, null, 2));
  if (values.json) {
    process.stdout.write(JSON.stringify(report) + '\n');
    return;
  }
  const la = (l: number[]): string => l.map((x) => x.toFixed(2)).join(', ');
  process.stdout.write(
    `\`npm run bench -- --only ch-shards\`, ${startedAt.slice(0, 16).replace('T', ' ')} UTC; load average before ${la(loadBefore)}, after ${la(report.loadAverageAfter)}; ` +
      `wall ${Math.round(report.wallSeconds)} s; ${data.length.toLocaleString('en-US')} rows (${n.toLocaleString('en-US')} distinct), writes of ${batch.toLocaleString('en-US')}\n\n`,
  );
  process.stdout.write(
    markdownTable(
      ['setup', 'insert rows/s', 'curves ms (median)', 'distinct count ms (median)', 'distinct rows', 'rows per shard'],
      results.map((r) => [r.setup, r.insertRowsPerS, r.curvesMs, r.countDistinctMs, r.distinct, r.shardRows?.map((x) => x.toLocaleString('en-US')).join(' / ') ?? '-']),
    ) + '\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`[ch-shards] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
