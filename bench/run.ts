/**
 * `npm run bench`: runs the registered benchmarks one after another, each in its own Node process
 * (a bench's heap, JIT state and open clients never skew the next one).
 *
 *   npm run bench                                   every benchmark, in the order below
 *   npm run bench -- --only spine                   one (or a comma list: --only spine,peer-vw)
 *   npm run bench -- --only spine -- --events 100000  arguments after a second `--` go to each selected bench
 *   npm run bench -- --only spine --json            the bench's raw figures as JSON on stdout (benches marked `json`)
 *   npm run bench -- --list                         names and what each measures
 *
 * Benchmarks print (Markdown on stdout, progress on stderr) and write JSON under .thaw/bench/; they
 * never assert. Exit code 1 if any selected bench failed (the others still run). See bench/README.md.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../lib/errors.js';
import { at } from '../lib/at.js';

const ROOT = resolve(import.meta.dirname, '..');

export interface BenchEntry {
  name: string;
  /** Entry script, relative to the repository root. */
  script: string;
  summary: string;
  /** Accepts `--json` (prints its raw figures as JSON on stdout instead of Markdown). */
  json?: boolean;
}

/** The registry: add a line here to make a new bench part of `npm run bench`. */
export const BENCHES: readonly BenchEntry[] = [
  {
    name: 'spine',
    script: 'bench/spine/run.ts',
    summary: "each adapter's worker end to end on real Kafka/Redis/ClickHouse vs the ceiling of each piece (same code path, concurrency, chunks); latency of every event at 25/50/75 % load",
    json: true,
  },
  {
    name: 'spine-threads',
    script: 'bench/spine/threads.ts',
    summary: 'thaw run --threads N: end to end and every spine ceiling run by the same N worker threads (default 1 and 2, interleaved), fm-adagrad and emerg',
  },
  {
    name: 'peer-vw',
    script: 'bench/peer-vw/run.ts',
    summary: 'thaw eval --protocol stream --peer vw,counts on MovieLens-100K: Thaw adapters beside Vowpal Wabbit and running rates (AUC/log loss by warm-up bucket)',
  },
  {
    name: 'stream-peers',
    script: 'bench/peer-vw/stream-peers.ts',
    summary: 'the peers of thaw eval --protocol stream (vw, counts) on MovieLens-100K: settings chosen on the first 20 %, AUC/log loss by warm-up bucket',
  },
  { name: 'models', script: 'bench/models/run.ts', summary: 'training examples/s per TF.js backend; adaptation events/s and entities/s per model beside ONNX forward-only rows/s' },
  { name: 'state', script: 'bench/state/run.ts', summary: 'Redis bytes per entity state for every adapter (MEMORY USAGE, INFO delta), entities per GiB, cost of the maxEntities index' },
  {
    name: 'state-cluster',
    script: 'bench/state/cluster.ts',
    summary: "the worker's store path (read, CAS write with progress) on a single Redis vs a 3-master Redis Cluster, same workload, same run: entities/s, latency per batch, round trips per node",
    json: true,
  },
  {
    name: 'online',
    script: 'bench/online/run.ts',
    summary: 'online trainer: prequential AUC with the shared FM frozen vs refreshed on a drifting stream; offline vs online meta stage (fixed-adaptive on ML-100K users, EmerG on ML-100K items)',
  },
  {
    name: 'online-speed',
    script: 'bench/online-speed/run.ts',
    summary: 'events/s of each online learner (fm, emerg, fixed-adaptive) alone and as OnlineTrainer through Kafka, beside the worker that runs on its releases (adapt alone, end to end)',
  },
  {
    name: 'release-switch',
    script: 'bench/release-switch/run.ts',
    summary: 'the pause a release switch causes on a running item worker (fm ~28 MB of files, emerg): watcher blocking, cold adapter, GC, latency at switches vs sham promotions',
  },
  {
    name: 'serving',
    script: 'bench/serving/run.ts',
    summary:
      'thaw serve on 1 and 2 processes under open-loop load (100 candidates, real Redis), saturation and 3× capacity, vs a naive one-MGET-per-request server; model stage and MGET alone; freshness',
  },
  {
    name: 'ch-shards',
    script: 'bench/ch-shards/run.ts',
    summary: 'the prediction log on 1 ClickHouse node vs 2 shards behind a Distributed table: insert rows/s through the sink, curve and distinct-count query time, rows per shard',
    json: true,
  },
  {
    name: 'failover',
    script: 'bench/failover/run.ts',
    summary: 'kill -9 on a private 3-node KRaft cluster: a thaw run worker (time until the survivor resumes its partitions), a broker (produce and consume stalls, lost and doubled events)',
    json: true,
  },
  {
    name: 'soak',
    script: 'bench/soak/run.ts',
    summary:
      'thaw run workers for --minutes (default 30) at half the end-to-end rate with a fault every minute (worker kill -9, private Redis restart, private ClickHouse stop): RSS and heap slope (MB/h), lost and doubled events, states vs a reference run',
    json: true,
  },
  {
    name: 'lru',
    script: 'bench/lru/run.ts',
    summary: "the LRU of the worker's cache tier: a Map re-inserted on every hit (Thaw's before) vs lru-cache, Zipf-skewed get+set, capacity below the id space: operations/s",
    json: true,
  },
  {
    name: 'distill',
    script: 'bench/distill/run.ts',
    summary:
      'EDL-Dist on MovieLens-100K and real Kafka: student training events/s with online distillation (teacher in the loop) vs 1 and 2 teacher processes, and one killed with -9; soft labels expected/written/duplicated; prequential AUC of teacher, student with and without KD by bucket',
    json: true,
  },
  {
    name: 'retrieval',
    script: 'bench/retrieval/run.ts',
    summary:
      'the ANN index (retrieval/index): graph build rate, search p50/p99/p99.9 and recall@100 vs exact at several ef over 10^6 clustered vectors (dim 64), exact scan of growing segments, inserts/s while searches run and the sealer seals, sealing throughput',
    json: true,
  },
  {
    name: 'retrieval-freshness',
    script: 'bench/retrieval/freshness.ts',
    summary: 'produce → retrievable latency (p50/p99) of brand-new items: profiles on Kafka, the thaw serve --retrieval indexer, POST /v1/retrieve over HTTP',
    json: true,
  },
  {
    name: 'retrieval-recommend',
    script: 'bench/retrieval/recommend.ts',
    summary:
      'the two-stage path POST /v1/recommend over HTTP with states in Redis at a fixed open-loop rate: p50/p99 per stage (retrieve, state, rank, respond) and end to end, with /v1/retrieve alone interleaved',
    json: true,
  },
  {
    name: 'curves',
    script: 'bench/curves/run.ts',
    summary: 'warm-up curves (AUC by prior interactions) of every adapter and its none baseline per side, from ClickHouse: ML-100K through Kafka, a 10M-event synthetic stream (prefixes)',
  },
];

export interface BenchPlan {
  list: boolean;
  selected: BenchEntry[];
  /** Forwarded to every selected bench (`--json` first when asked). */
  passThrough: string[];
}

/** Parses `[--only a,b] [--list] [-- bench args...]`; throws ConfigError naming the key. */
export function parseBenchArgs(argv: readonly string[], benches: readonly BenchEntry[] = BENCHES): BenchPlan {
  const sep = argv.indexOf('--');
  const own = sep < 0 ? argv : argv.slice(0, sep);
  const passThrough = sep < 0 ? [] : argv.slice(sep + 1);
  let list = false;
  let json = false;
  let only: string[] | undefined;
  for (let i = 0; i < own.length; i++) {
    const a = at(own, i);
    if (a === '--list') list = true;
    else if (a === '--json') json = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const v = a === '--only' ? own[++i] : a.slice('--only='.length);
      if (v === undefined || v === '') throw new ConfigError('only', `needs a bench name (${benches.map((b) => b.name).join(', ')})`);
      only = v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    } else throw new ConfigError(a, `unknown option; bench arguments go after a second "--" (npm run bench -- --only spine -- --events 100000)`);
  }
  const selected =
    only === undefined
      ? [...benches]
      : only.map((n) => {
          const b = benches.find((x) => x.name === n);
          if (b === undefined) throw new ConfigError('only', `unknown bench "${n}"; known: ${benches.map((x) => x.name).join(', ')}`);
          return b;
        });
  if (json) {
    const without = selected.filter((b) => b.json !== true).map((b) => b.name);
    if (without.length > 0) throw new ConfigError('json', `not offered by ${without.join(', ')} (select benches that print JSON with --only)`);
  }
  return { list, selected, passThrough: json ? ['--json', ...passThrough] : passThrough };
}

function runOne(b: BenchEntry, args: readonly string[]): Promise<number> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, ['--import', 'tsx', resolve(ROOT, b.script), ...args], { cwd: ROOT, stdio: 'inherit' });
    child.on('error', (err) => {
      process.stderr.write(`bench ${b.name}: could not start: ${err.message}\n`);
      resolvePromise(1);
    });
    child.on('exit', (code, signal) => resolvePromise(code ?? (signal === null ? 1 : 128)));
  });
}

async function main(): Promise<void> {
  const plan = parseBenchArgs(process.argv.slice(2));
  if (plan.list) {
    for (const b of BENCHES) process.stdout.write(`${b.name.padEnd(10)} ${b.script.padEnd(24)} ${b.summary}\n`);
    return;
  }
  const failed: string[] = [];
  for (const b of plan.selected) {
    if (!existsSync(resolve(ROOT, b.script))) {
      process.stderr.write(`bench ${b.name}: ${b.script} does not exist, skipped\n`);
      failed.push(b.name);
      continue;
    }
    process.stderr.write(`\n=== bench ${b.name} (${b.script}) ===\n`);
    const code = await runOne(b, plan.passThrough);
    if (code !== 0) failed.push(b.name);
  }
  if (failed.length > 0) {
    process.stderr.write(`benches failed: ${failed.join(', ')}\n`);
    process.exitCode = 1;
  }
}

// Run only as an entry point, so a test can import parseBenchArgs.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
