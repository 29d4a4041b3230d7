/**
 * `npm run bench -- --only retrieval-recommend [--json]`: the two-stage path POST /v1/recommend
 * (retrieve k, rank them with the scoring pipeline, answer the top n) over HTTP, with entity states
 * in real Redis, at a fixed open-loop rate; per stage (retrieve, state, rank, respond: the server's
 * own timings, serving/recommend-metrics.ts) and end to end, p50 and p99. Interleaved with it, at
 * the same rate, POST /v1/retrieve of the same k alone: the first stage's cost seen from the client.
 *
 *   node --import tsx bench/retrieval/recommend.ts [--items 20000] [--users 2000] [--k 100] [--n 10]
 *     [--rate 100] [--seconds 10] [--warmup-seconds 2] [--deadline-ms 50] [--json]
 *
 * Setup (untimed): an FM release (k 8) and a fresh dual encoder (dim 32); --items catalogue items
 * from random features, indexed with their features and sealed; every other item and every other
 * user with a stored state in Redis (a key prefix of this run, deleted at the end). Arrivals: one
 * exponential gap sequence fixed in advance; request i is /v1/recommend when i is even, else
 * /v1/retrieve; latency counts from its intended send time (no coordinated omission). Each
 * request carries `x-deadline-ms` (--deadline-ms, the server's default 50): the admission refuses (503)
 * what it predicts would miss it, and the answers are counted by status. The load
 * generator runs in the server's process (keep-alive node:http): its own work queues with the
 * server's, so end-to-end figures are an upper bound; the stage figures are the server's. Needs
 * Redis (THAW_REDIS_URL, default 127.0.0.1:16379).
 */
import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { entityKey } from '../../model-store/keys.js';
import { createRedis } from '../../model-store/redis.js';
import { encodeState } from '../../model-store/state-codec.js';
import { fmStateSize } from '../../models/fm-entity.js';
import { FactorizationMachine } from '../../models/fm.js';
import { AnnIndex } from '../../retrieval/index/ann-index.js';
import { DualEncoder } from '../../retrieval/towers.js';
import { ScoringPipeline } from '../../serving/pipeline.js';
import { RECOMMEND_STAGES, type RecommendStage } from '../../serving/recommend-metrics.js';
import { fixedRelease, servingRelease } from '../../serving/release.js';
import { RetrievalService } from '../../serving/retrieve.js';
import { startScoringServer } from '../../serving/server.js';
import { RedisStateSource } from '../../serving/state-source.js';
import { markdownTable, positiveOption, quantile } from '../stats.js';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '20000' },
    users: { type: 'string', default: '2000' },
    k: { type: 'string', default: '100' },
    n: { type: 'string', default: '10' },
    rate: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '10' },
    'warmup-seconds': { type: 'string', default: '2' },
    'deadline-ms': { type: 'string', default: '50' },
    json: { type: 'boolean', default: false },
  },
});
const ITEMS = positiveOption('items', values.items);
const USERS = positiveOption('users', values.users);
const K = positiveOption('k', values.k);
const N = positiveOption('n', values.n);
const RATE = positiveOption('rate', values.rate, false);
const SECONDS = positiveOption('seconds', values.seconds, false);
const WARMUP = positiveOption('warmup-seconds', values['warmup-seconds'], false);
const DEADLINE_MS = positiveOption('deadline-ms', values['deadline-ms']);
const REDIS = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';
const log = (phase: string, fields: Record<string, unknown> = {}): void => void process.stderr.write(JSON.stringify({ bench: 'retrieval-recommend', phase, ...fields }) + '\n');

const started = new Date();
const load0 = loadavg();
const prefix = `bench-recommend-${randomUUID().slice(0, 8)}`;
const featuresOf = (i: number): Record<string, string[]> => ({ genre: [`g${i % 50}`], title: [`w${i % 997}`, `v${(i * 31) % 1009}`] });

log('setup', { items: ITEMS, users: USERS, k: K, n: N, rate: RATE });
const encoder = new DualEncoder({ dim: 32, seed: 3 });
const service = new RetrievalService(encoder, new Set(), await AnnIndex.create({ dim: 32, initialCapacity: ITEMS + 1024 }));
for (let i = 0; i < ITEMS; i++) service.indexItem(`i${i}`, featuresOf(i), 'profile');
service.index.sealAll();
const fm = FactorizationMachine.create({ buckets: 1 << 16, k: 8, seed: 2, initStd: 0.1, release: 'fm/bench-recommend' });
const release = servingRelease(fm, 'bench', Date.now(), undefined, { keyPrefix: prefix, namespace: 'live', safeguard: 'off' });
const redis = createRedis({ url: REDIS });
const params = new Float32Array(fmStateSize(fm.k)).map((_, i) => Math.sin(i) / 10);
const state = encodeState({ count: 3, lastOffset: 2, lastEventMs: 1, params });
const batch = redis.pipeline();
for (let u = 0; u < USERS; u += 2) batch.set(entityKey(release.userPrefix, `u${u}`), state);
for (let i = 0; i < ITEMS; i += 2) batch.set(entityKey(release.itemPrefix, `i${i}`), state);
await batch.exec();

const stages = new Map<RecommendStage, number[]>(RECOMMEND_STAGES.map((s) => [s, []]));
let measuring = false;
const pipeline = new ScoringPipeline({ source: new RedisStateSource({ url: REDIS }), releases: fixedRelease(release), serving: { safeguard: 'off' }, defaultMetrics: false });
const server = await startScoringServer(pipeline, {
  retrieval: { service, limits: { maxK: 1000, maxHistory: 100 } },
  onRecommendStage: (stage, ms) => {
    if (measuring) stages.get(stage)?.push(ms);
  },
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const url = new URL(server.address);
function post(path: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-deadline-ms': String(DEADLINE_MS) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Open loop: arrivals at 2 × RATE (alternating routes) with exponential gaps, for `seconds`. */
async function load(seconds: number): Promise<{ recommend: number[]; retrieve: number[]; errors: number; statuses: Record<string, number> }> {
  const out = { recommend: [] as number[], retrieve: [] as number[], errors: 0, statuses: {} as Record<string, number> };
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) + 0.5) / 2147483648;
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  let at = 0;
  for (let i = 0; at < seconds * 1000; i++) {
    at += (-Math.log(rand()) * 1000) / (2 * RATE);
    const due = t0 + at;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const user = { id: `u${(i * 7919) % USERS}`, features: { age: [`${i % 60}`] }, history: [`i${(i * 31) % ITEMS}`] };
    const recommend = i % 2 === 0;
    const body = JSON.stringify(recommend ? { user, k: K, n: N } : { user, k: K });
    pending.push(
      post(recommend ? '/v1/recommend' : '/v1/retrieve', body).then(
        (status) => {
          const key = `${recommend ? 'recommend' : 'retrieve'} ${status}`;
          out.statuses[key] = (out.statuses[key] ?? 0) + 1;
          if (status !== 200) out.errors++;
          else (recommend ? out.recommend : out.retrieve).push(performance.now() - due);
        },
        () => void out.errors++,
      ),
    );
  }
  await Promise.all(pending);
  return out;
}

log('warmup', { seconds: WARMUP });
await load(WARMUP);
measuring = true;
log('measure', { seconds: SECONDS });
const measured = await load(SECONDS);
measuring = false;
const load1 = loadavg();

const pct = (xs: readonly number[]): { p50: number; p99: number; count: number } => ({ p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), count: xs.length });
const figures = {
  started: started.toISOString(),
  loadavg: { before: load0[0], after: load1[0] },
  items: ITEMS,
  users: USERS,
  k: K,
  n: N,
  ratePerRoute: RATE,
  deadlineMs: DEADLINE_MS,
  seconds: SECONDS,
  errors: measured.errors,
  statuses: measured.statuses,
  stages: Object.fromEntries(RECOMMEND_STAGES.map((s) => [s, pct(stages.get(s) ?? [])])),
  endToEnd: { recommend: pct(measured.recommend), retrieve: pct(measured.retrieve) },
};
const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
if (values.json) process.stdout.write(JSON.stringify(figures) + '\n');
else {
  process.stdout.write(
    `## POST /v1/recommend: ${ITEMS} items (dim 32), k ${K}, n ${N}, ${RATE}/s open loop (and /v1/retrieve interleaved at ${RATE}/s), deadline ${DEADLINE_MS} ms, ${SECONDS} s; ${started.toISOString()}, load average ${load0[0]?.toFixed(2)} → ${load1[0]?.toFixed(2)}; answers by route and status ${JSON.stringify(measured.statuses)}\n\n`,
  );
  const rows: (string | number)[][] = RECOMMEND_STAGES.map((s) => {
    const p = figures.stages[s] ?? { p50: NaN, p99: NaN, count: 0 };
    return [`stage ${s} (server)`, String(p.count), ms(p.p50), ms(p.p99)];
  });
  rows.push(['recommend end to end (client)', String(figures.endToEnd.recommend.count), ms(figures.endToEnd.recommend.p50), ms(figures.endToEnd.recommend.p99)]);
  rows.push(['retrieve alone end to end (client)', String(figures.endToEnd.retrieve.count), ms(figures.endToEnd.retrieve.p50), ms(figures.endToEnd.retrieve.p99)]);
  process.stdout.write(markdownTable(['', 'requests', 'p50 ms', 'p99 ms'], rows) + '\n');
}
mkdirSync('.thaw/bench', { recursive: true });
writeFileSync('.thaw/bench/retrieval-recommend.json', JSON.stringify(figures, null, 2));

agent.destroy();
await server.stop();
const keys = await redis.keys(`${prefix}:*`);
for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
redis.disconnect();
