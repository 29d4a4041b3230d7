/**
 * Online-speed bench (issue 10: "the online trainer keeps up with the rate it learns from: its
 * events/s is in `npm run bench` beside the worker's"). Per online learner kind (fm, emerg,
 * fixed-adaptive: trainers/online/*-learner.ts), on the spine bench's events, in one run:
 *   - the worker that runs on that kind's releases (fm-adagrad on items, emerg, fixed-adaptive on
 *     users), measured as bench/spine measures it: adapt alone (in-memory batches of 1024 distinct
 *     entities) and end to end (`thaw run`'s wiring through the real Kafka, Redis and ClickHouse);
 *   - the learner alone: `observe` on the topic's batches as the consumer delivered them, decoded
 *     beforehand and cut into chunks of at most 2000 events (what the trainer hands it per chunk);
 *   - the trainer through Kafka: `OnlineTrainer` (what `thaw train --online` runs) consuming the
 *     same pre-produced topic in its own group, then the time to publish one release;
 *   - Kafka + decode alone on that topic (the spine's ceiling A), to see what bounds each.
 *
 *   node --import tsx bench/online-speed/run.ts [--events 200000] [--kinds fm,emerg,fixed-adaptive]
 *        [--e2e-seconds 12] [--learn-seconds 10] [--batch 5000] [--train-prefix 20000] [--out .thaw/bench/online-speed.json]
 *
 * Slow paths stop after about `--e2e-seconds` (workers, trainer) or `--learn-seconds` (learner
 * alone) of work at their measured rate. Markdown on stdout, progress on stderr, JSON in --out.
 * Every topic, group, key, table and directory it creates is removed at the end. Never asserts.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createAdapterFromRelease } from '../../adapters/registry.js';
import { ConfigError } from '../../lib/errors.js';
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { syntheticStream } from '../../sources/synthetic.js';
import { DEFAULT_MAX_BATCH_MESSAGES } from '../../streams/batch-consumer.js';
import { decodeLabelled } from '../../streams/serde.js';
import { learnerFromRelease } from '../../trainers/online/factory.js';
import { ONLINE_KINDS, type OnlineKind } from '../../trainers/online/learner.js';
import { formatNumber, markdownTable, positiveOption } from '../stats.js';
import { adaptAlone, type AdaptAloneResult } from '../spine/adapters.js';
import { ceilingKafka, type CeilingResult } from '../spine/ceilings.js';
import { endToEndDrain, type DrainResult } from '../spine/end-to-end.js';
import { benchModel, benchSource, preProduce, startBenchRun } from '../spine/fixtures.js';
import { benchRelease, learnAlone, TRAINER_CHUNK, trainerDrain, type LearnAloneResult, type TrainerDrainResult } from './learners.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const PARTITIONS = 4;

/** The worker adapter that runs on each kind's releases, and the side of the topic both read. */
const WORKER_OF: Readonly<Record<OnlineKind, { adapter: string; side: Side }>> = {
  // The two-sided FM also runs user-side fm-adagrad workers; the item side is the one the spine
  // measures (its Kafka + decode is the faster, so its worker is the stricter rate to keep up with).
  fm: { adapter: 'fm-adagrad', side: 'item' },
  emerg: { adapter: 'emerg', side: 'item' },
  'fixed-adaptive': { adapter: 'fixed-adaptive', side: 'user' },
};

export interface KindReport {
  kind: OnlineKind;
  worker: string;
  side: Side;
  kafkaDecode: CeilingResult;
  workerAlone: AdaptAloneResult;
  workerEndToEnd: DrainResult;
  learnerAlone: LearnAloneResult;
  trainer: TrainerDrainResult;
  /** trainer through Kafka ÷ worker end to end. */
  keepUpRatio: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      events: { type: 'string', default: '200000' },
      kinds: { type: 'string', default: ONLINE_KINDS.join(',') },
      'e2e-seconds': { type: 'string', default: '12' },
      'learn-seconds': { type: 'string', default: '10' },
      batch: { type: 'string', default: String(DEFAULT_MAX_BATCH_MESSAGES) },
      'train-prefix': { type: 'string', default: '20000' },
      out: { type: 'string', default: '.thaw/bench/online-speed.json' },
    },
  });
  const events = positiveOption('events', values.events);
  const kinds = values.kinds.split(',').map((k) => k.trim());
  for (const k of kinds) if (!(ONLINE_KINDS as readonly string[]).includes(k)) throw new ConfigError('kinds', `unknown kind "${k}"; known: ${ONLINE_KINDS.join(', ')}`);
  const e2eSeconds = positiveOption('e2e-seconds', values['e2e-seconds'], false);
  const learnSeconds = positiveOption('learn-seconds', values['learn-seconds'], false);
  const batch = positiveOption('batch', values.batch);
  const trainPrefix = positiveOption('train-prefix', values['train-prefix']);
  const out = resolve(ROOT, values.out);
  const { log, services, res, loadBefore, t0 } = startBenchRun('online-speed');
  try {
    const { model } = await benchModel(trainPrefix);
    const stream = [...syntheticStream(benchSource(events)).events()];
    // Per side: the topic, Kafka + decode alone on it, and its batches as the consumer delivered them (decoded).
    const topics = new Map<Side, { topic: string; a: CeilingResult; delivered: LabelledEvent[][] }>();
    for (const side of new Set((kinds as OnlineKind[]).map((k) => WORKER_OF[k].side))) {
      const topic = res.topic(`drain-by-${side}`);
      await preProduce(services.kafka, topic, PARTITIONS, events, log, side);
      const a = await ceilingKafka(services.kafka, topic, res.group(`ceiling-a-${side}`), events, batch, `by ${side}`);
      log.info('ceiling A done', { side, perSec: Math.round(a.result.perSec) });
      topics.set(side, { topic, a: a.result, delivered: a.batches.map((b) => b.values.map((v) => decodeLabelled(v))) });
    }
    const reports: KindReport[] = [];
    for (const kind of kinds as OnlineKind[]) {
      const { adapter: name, side } = WORKER_OF[kind];
      const t = topics.get(side);
      if (t === undefined) throw new ConfigError('kinds', `no topic for side ${side}`);
      const { bundle, release } = await benchRelease(kind, model, stream);
      const adapter = createAdapterFromRelease(name, side, release);
      const workerAlone = adaptAlone(adapter, stream);
      // Slow paths stop after about e2eSeconds of work at their rate alone (at least two chunks per partition).
      const workerLimit = Math.min(events, Math.max(2 * PARTITIONS * batch, Math.round(workerAlone.perSec * e2eSeconds)));
      const workerEndToEnd = await endToEndDrain(services, res, adapter, t.topic, events, batch, log, { limit: workerLimit });
      adapter.dispose?.();
      log.info('worker done', { kind, worker: name, alone: Math.round(workerAlone.perSec), endToEnd: Math.round(workerEndToEnd.perSec) });
      const learnerAlone = learnAlone(learnerFromRelease(release, kind, side), t.delivered, learnSeconds * 1000);
      const trainerLimit = Math.min(events, Math.max(4 * TRAINER_CHUNK, Math.round(learnerAlone.perSec * e2eSeconds)));
      const trainer = await trainerDrain(services, res, kind, side, bundle, t.topic, trainerLimit, log);
      log.info('trainer done', { kind, alone: Math.round(learnerAlone.perSec), throughKafka: Math.round(trainer.perSec), publishMs: Math.round(trainer.publishMs) });
      reports.push({ kind, worker: name, side, kafkaDecode: t.a, workerAlone, workerEndToEnd, learnerAlone, trainer, keepUpRatio: trainer.perSec / workerEndToEnd.perSec });
    }
    const report = { startedAt: new Date().toISOString(), loadBefore, loadAfter: loadavg(), wallMs: performance.now() - t0, events, kinds: reports };
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, JSON.stringify(report, null, 2) + '\n');
    process.stdout.write(renderReport(report, out) + '\n');
  } finally {
    await res.cleanup(log);
  }
}

const us = (perSec: number): string => (1e6 / perSec).toFixed(1);

export function renderReport(r: { loadBefore: number[]; loadAfter: number[]; wallMs: number; events: number; kinds: KindReport[] }, out: string): string {
  const n = (x: DrainResult | TrainerDrainResult, total: number): string => `${formatNumber(x.perSec)}${x.events < total ? ` (${formatNumber(x.events)} ev)` : ''}`;
  return [
    `## Online trainer beside the worker: ${formatNumber(r.events)} synthetic events, ${PARTITIONS} partitions`,
    '',
    `load average (1, 5, 15 min): before ${r.loadBefore.map((x) => x.toFixed(2)).join(', ')}; after ${r.loadAfter.map((x) => x.toFixed(2)).join(', ')} (2 cores, shared machine); wall ${(r.wallMs / 1000).toFixed(0)} s`,
    '',
    markdownTable(
      [
        'learner',
        'worker on its releases',
        'worker adapt alone ev/s',
        'worker end to end ev/s',
        'learner alone ev/s',
        'trainer through Kafka ev/s',
        'trainer / worker e2e',
        'keeps up',
        'publish ms (MB)',
      ],
      r.kinds.map((k) => [
        k.kind,
        `${k.worker} (${k.side})`,
        formatNumber(k.workerAlone.perSec),
        n(k.workerEndToEnd, r.events),
        formatNumber(k.learnerAlone.perSec),
        n(k.trainer, r.events),
        `${(100 * k.keepUpRatio).toFixed(0)}%`,
        k.keepUpRatio >= 1 ? 'yes' : 'no',
        `${k.trainer.publishMs.toFixed(0)} (${(k.trainer.releaseBytes / 1e6).toFixed(1)})`,
      ]),
    ),
    '',
    'Per event, µs (what bounds the trainer: learning alone, and the rest of its path = through Kafka − learning alone, beside Kafka + decode alone):',
    '',
    markdownTable(
      ['learner', 'trainer through Kafka', 'learning alone', 'rest (Kafka, decode, loop)', 'Kafka + decode alone (A)', 'worker end to end'],
      r.kinds.map((k) => [
        k.kind,
        us(k.trainer.perSec),
        us(k.learnerAlone.perSec),
        (1e6 / k.trainer.perSec - 1e6 / k.learnerAlone.perSec).toFixed(1),
        us(k.kafkaDecode.perSec),
        us(k.workerEndToEnd.perSec),
      ]),
    ),
    '',
    `JSON: ${out}`,
  ].join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`online-speed bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
