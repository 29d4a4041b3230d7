/**
 * Spine at N threads (issue 13, "use both cores"): for each adapter and each thread count, the
 * worker end to end AND every ceiling of the spine bench run by the same N worker threads in one
 * process, so end to end can never exceed a ceiling measured at its own parallelism (checked,
 * printed). Thread counts are interleaved within a round (1, 2, 1, 2 ... with --rounds 2), since the
 * machine is shared and its load drifts.
 *
 *   node --import tsx bench/spine/threads.ts [--events 100000] [--batch 5000] [--adapters fm-adagrad,emerg]
 *        [--threads 1,2] [--rounds 1] [--train-prefix 20000] [--out .thaw/bench/spine-threads.json]
 *
 * How each figure is taken (bench/spine/threads-piece.ts runs the pieces):
 *   kafka + decode, end to end  N consumers (or N `thaw run` workers) in one fresh group drain the
 *       pre-produced 4-partition topic; timed from the first chunk any thread got to the group's lag 0;
 *   adapt alone, redis, sink    each thread replays the recorded chunks of its partitions
 *       (p % N = index) with ceilings.ts; the threads start together; timed to the last one done.
 * End to end is the AdaptationWorker wired as `thaw run --threads N` wires each thread's (Redis behind
 * the cache tier, ClickHouse sink, dead letters), with the bench's adapters (bench/spine/adapters.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/log.js';
import { ensureTopics } from '../../streams/admin.js';
import { positiveOption } from '../stats.js';
import { parseAdapterList, sideOf } from './adapters.js';
import { LagWatch } from './ceilings.js';
import { benchModel, BenchResources, preProduce, servicesFromEnv, type Services } from './fixtures.js';
import type { PieceData, PieceMessage, PieceStep } from './threads-piece.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PARTITIONS = 4;
type Piece = 'kafka' | 'redis' | 'sink' | 'adapt' | 'e2e';

/** N piece threads, each with an inbox of its messages. */
class Session {
  private readonly threads: Worker[];
  private readonly inboxes: PieceMessage[][];
  private readonly waiters: (() => void)[] = [];
  private readonly exited: Promise<unknown>;

  constructor(data: Omit<PieceData, 'index'>) {
    const entry = new URL('./threads-piece.ts', import.meta.url).href;
    const tsx = import.meta.resolve('tsx/esm/api');
    const boot = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
    this.threads = Array.from({ length: data.threads }, (_, index) => new Worker(boot, { eval: true, workerData: { ...data, index } satisfies PieceData }));
    this.inboxes = this.threads.map(() => []);
    this.threads.forEach((t, i) =>
      t.on('message', (m: PieceMessage) => {
        this.inboxes[i]?.push(m);
        this.waiters.splice(0).forEach((w) => w());
      }),
    );
    this.exited = Promise.all(this.threads.map((t) => new Promise((r) => t.once('exit', r))));
  }

  post(m: PieceStep | { go: true } | { stop: true }): void {
    for (const t of this.threads) t.postMessage(m);
  }

  /** The next message of every thread (each must be of `kind`). */
  async all<K extends PieceMessage['kind']>(kind: K): Promise<Extract<PieceMessage, { kind: K }>[]> {
    const out: Extract<PieceMessage, { kind: K }>[] = [];
    for (const inbox of this.inboxes) {
      while (inbox.length === 0) await new Promise<void>((r) => this.waiters.push(r));
      const m = inbox.shift();
      if (m?.kind === 'failed') throw new Error(`piece thread failed: ${m.error}`);
      if (m?.kind !== kind) throw new Error(`expected ${kind} from a piece thread, got ${m?.kind ?? 'nothing'}`);
      out.push(m as Extract<PieceMessage, { kind: K }>);
    }
    return out;
  }

  async close(): Promise<void> {
    this.post({ step: 'exit' });
    await this.exited;
  }
}

/** Events/s of a consuming piece: first chunk of any thread to the group's lag 0. */
async function consuming(session: Session, services: Services, step: Extract<PieceStep, { step: 'kafka' | 'e2e' }>, events: number): Promise<number> {
  session.post(step);
  await session.all('ready');
  const watch = await LagWatch.open(services.kafka, step.group, [step.topicOf]);
  try {
    session.post({ go: true });
    const zeroAt = performance.timeOrigin + (await watch.untilZero(900_000, 5));
    session.post({ stop: true });
    const got = await session.all('consumed');
    const first = Math.min(...got.map((g) => g.firstAtMs).filter((t) => !Number.isNaN(t)));
    return events / ((zeroAt - first) / 1000);
  } finally {
    await watch.close();
  }
}

/** Units/s of a replay piece: the threads start together, timed to the last one done. */
async function replaying(session: Session, step: 'adapt' | 'redis' | 'sink'): Promise<number> {
  session.post({ step });
  await session.all('ready');
  session.post({ go: true });
  const done = await session.all('done');
  return done.reduce((n, d) => n + d.count, 0) / (Math.max(...done.map((d) => d.ms)) / 1000);
}

interface Row {
  adapter: string;
  threads: number;
  round: number;
  perSec: Record<Piece, number>;
}

function fmt(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      events: { type: 'string', default: '100000' },
      batch: { type: 'string', default: '5000' },
      adapters: { type: 'string', default: 'fm-adagrad,emerg' },
      threads: { type: 'string', default: '1,2' },
      rounds: { type: 'string', default: '1' },
      'train-prefix': { type: 'string', default: '20000' },
      out: { type: 'string', default: '.thaw/bench/spine-threads.json' },
    },
  });
  const events = positiveOption('events', values.events);
  const batch = positiveOption('batch', values.batch);
  const rounds = positiveOption('rounds', values.rounds);
  const counts = values.threads.split(',').map((s) => positiveOption('threads', s.trim()));
  if (counts.some((n) => n > PARTITIONS)) throw new ConfigError('threads', `at most ${PARTITIONS} (the topic's partitions), got ${values.threads}`);
  const names = parseAdapterList(values.adapters);
  const log = createLogger('info', { bench: 'spine-threads' });
  const services = servicesFromEnv();
  const res = new BenchResources(services);
  const loadBefore = loadavg();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const rows: Row[] = [];
  try {
    const { model } = await benchModel(Number(values['train-prefix']));
    const fm = new Uint8Array(model.toBuffer());
    const topics = new Map<string, string>();
    for (const side of new Set(names.map(sideOf))) {
      const topic = res.topic(`threads-by-${side}`);
      await preProduce(services.kafka, topic, PARTITIONS, events, log, side);
      topics.set(side, topic);
    }
    for (let round = 1; round <= rounds; round++) {
      for (const adapter of names) {
        const topic = topics.get(sideOf(adapter)) ?? '';
        for (const threads of counts) {
          const tag = `${adapter}-t${threads}-r${round}`;
          log.info('session', { adapter, threads, round });
          const session = new Session({ threads, services, adapter, topic, events, batch, fm, layoutSample: 20_000 });
          try {
            const perSec = {} as Record<Piece, number>;
            perSec.kafka = await consuming(session, services, { step: 'kafka', group: res.group(`kafka-${tag}`), topicOf: topic }, events);
            session.post({ step: 'record' });
            await session.all('done');
            for (const step of ['adapt', 'redis', 'sink'] as const) perSec[step] = await replaying(session, step);
            const dlqTopic = res.topic(`dlq-${tag}`);
            await ensureTopics(services.kafka, [{ topic: dlqTopic, partitions: 1 }]);
            perSec.e2e = await consuming(
              session,
              services,
              { step: 'e2e', group: res.group(`e2e-${tag}`), redisPrefix: res.redisPrefix(`e2e-${tag}`), table: res.table(`e2e_${tag.replace(/-/g, '_')}`), dlqTopic, topicOf: topic },
              events,
            );
            rows.push({ adapter, threads, round, perSec });
            log.info('session done', { adapter, threads, round, perSec: Object.fromEntries(Object.entries(perSec).map(([k, v]) => [k, Math.round(v)])) });
          } finally {
            await session.close();
          }
        }
      }
    }
  } finally {
    await res.cleanup(log);
  }
  const loadAfter = loadavg();
  const wall = (performance.now() - t0) / 1000;
  const la = (l: number[]): string => l.map((x) => x.toFixed(2)).join(', ');
  const lines = [
    `## Spine at N threads: ${fmt(events)} events, ${PARTITIONS} partitions, chunks of ≤ ${fmt(batch)}`,
    '',
    `\`node --import tsx bench/spine/threads.ts ${process.argv.slice(2).join(' ')}\`, ${startedAt.slice(0, 16).replace('T', ' ')} UTC; load average (1, 5, 15 min) before ${la(loadBefore)}, after ${la(loadAfter)} (2 cores, shared); wall ${Math.round(wall)} s`,
    '',
    'Every column run by the same N worker threads of one process; "lowest" = the lowest of the four ceilings.',
    '',
    '| adapter | threads | round | kafka + decode ev/s | redis ev/s | sink rows/s | adapt alone ev/s | end to end ev/s | lowest | e2e / lowest |',
    '|---|--:|--:|--:|--:|--:|--:|--:|---|--:|',
  ];
  const checks: string[] = [];
  for (const r of rows) {
    const ceilings: [string, number][] = [
      ['kafka + decode', r.perSec.kafka],
      ['redis', r.perSec.redis],
      ['sink', r.perSec.sink],
      ['adapt alone', r.perSec.adapt],
    ];
    const lowest = ceilings.reduce((a, b) => (b[1] < a[1] ? b : a));
    lines.push(
      `| ${r.adapter} | ${r.threads} | ${r.round} | ${fmt(r.perSec.kafka)} | ${fmt(r.perSec.redis)} | ${fmt(r.perSec.sink)} | ${fmt(r.perSec.adapt)} | ${fmt(r.perSec.e2e)} | ${lowest[0]} | ${Math.round((100 * r.perSec.e2e) / lowest[1])} % |`,
    );
    for (const [name, v] of ceilings)
      if (r.perSec.e2e > v) checks.push(`Check: ${r.adapter} at ${r.threads} thread(s), round ${r.round}: end to end (${fmt(r.perSec.e2e)}) exceeds ${name} (${fmt(v)}): that ceiling is wrong.`);
  }
  lines.push('', checks.length === 0 ? 'Check: end to end is below every ceiling for every row.' : checks.join('\n'));
  const out = resolve(ROOT, values.out);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify({ startedAt, loadBefore, loadAfter, wallSeconds: wall, events, batch, rows }, null, 2) + '\n');
  process.stdout.write(lines.join('\n') + `\n\nJSON: ${out}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`spine-threads bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
