/**
 * Where the time of the spine's "Kafka + decode" ceiling goes, against the Kafka client alone
 * (issue 13, point 7): the same pre-produced 4-partition topic drained by
 *   raw            kafkajs eachBatch (every partition concurrently), decodeLabelled per message, no commit
 *   raw+convert    the same plus toRawMessage per message (what BatchConsumer hands its handler)
 *   raw+commit     the same plus a commit and a heartbeat per chunk of ≤ --batch (what BatchConsumer does)
 *   batch-consumer the project's BatchConsumer with a handler that decodes every message; lag 0 polled
 *                  on one admin connection (as the spine bench now does) or, "lag polled per admin",
 *                  through BatchConsumer.lag() every 20 ms (a new admin client per poll, as it did before)
 * in interleaved rounds, each variant in its own group, timed from the first batch to the last
 * message decoded ("seen") and, for the variants that commit, to the group's lag 0 as the spine
 * bench polls it ("lag 0"), and by this process's CPU time per event (less sensitive to a loaded
 * machine than the wall time). Medians over --rounds.
 *
 *   node --import tsx bench/spine/consumer-overhead.ts [--events 200000] [--batch 5000] [--rounds 3]
 */
import { parseArgs } from 'node:util';
import type { EachBatchPayload } from 'kafkajs';
import { createLogger } from '../../lib/log.js';
import { BatchConsumer } from '../../streams/batch-consumer.js';
import { createKafka } from '../../streams/kafka.js';
import { toRawMessage } from '../../streams/message.js';
import { decodeLabelled } from '../../streams/serde.js';
import { formatNumber, markdownTable, positiveOption, quantile } from '../stats.js';
import { LagWatch, untilLagZero } from './ceilings.js';
import { BenchResources, preProduce, servicesFromEnv, type Services } from './fixtures.js';

type Variant = 'raw' | 'raw+convert' | 'raw+commit' | 'batch-consumer' | 'batch-consumer, lag polled per admin';
const VARIANTS: readonly Variant[] = ['raw', 'raw+convert', 'raw+commit', 'batch-consumer', 'batch-consumer, lag polled per admin'];

/** Round trips of the per-chunk commits of the raw+commit variant, ms. */
const commitMs: number[] = [];

interface Timing {
  seenMs: number;
  lagZeroMs: number;
  /** CPU time of this process (user + system) from the first batch to the last message decoded, µs per event. */
  cpuUsPerEvent: number;
}

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function drainRaw(services: Services, topic: string, groupId: string, n: number, batch: number, variant: Variant): Promise<Timing> {
  const consumer = createKafka(services.kafka).consumer({ groupId, maxBytesPerPartition: 1_048_576, maxWaitTimeInMs: 500 });
  const watch = await LagWatch.open(services.kafka, groupId, [topic]);
  let seen = 0;
  let first = Number.NaN;
  let seenAt = Number.NaN;
  let cpu0 = 0;
  let cpu1 = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((r) => (done = r));
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 4,
    eachBatch: async (p: EachBatchPayload) => {
      if (Number.isNaN(first)) {
        first = performance.now();
        cpu0 = cpuUs();
      }
      const msgs = p.batch.messages;
      const nowMs = Date.now();
      for (let i = 0; i < msgs.length; i += batch) {
        const chunk = msgs.slice(i, i + batch);
        const values = variant === 'raw' ? chunk.map((m) => m.value) : chunk.map((m) => toRawMessage(p.batch.topic, p.batch.partition, m).value);
        for (const v of values) if (v !== null) decodeLabelled(v, nowMs);
        const last = chunk[chunk.length - 1];
        if (last === undefined) continue;
        p.resolveOffset(last.offset);
        if (variant === 'raw+commit') {
          const c0 = performance.now();
          await p.commitOffsetsIfNecessary({ topics: [{ topic: p.batch.topic, partitions: [{ partition: p.batch.partition, offset: String(Number(last.offset) + 1) }] }] });
          commitMs.push(performance.now() - c0);
          await p.heartbeat();
        }
        seen += chunk.length;
      }
      if (seen >= n && Number.isNaN(seenAt)) {
        seenAt = performance.now();
        cpu1 = cpuUs();
        done();
      }
    },
  });
  try {
    await all;
    const lagZero = variant === 'raw+commit' ? await watch.untilZero() : Number.NaN;
    return { seenMs: seenAt - first, lagZeroMs: lagZero - first, cpuUsPerEvent: (cpu1 - cpu0) / n };
  } finally {
    await consumer.disconnect();
    await watch.close();
  }
}

/** `slowLag`: lag 0 polled as the spine bench did before (a new admin client per poll, every 20 ms). */
async function drainBatchConsumer(services: Services, topic: string, groupId: string, n: number, batch: number, slowLag: boolean): Promise<Timing> {
  const consumer = new BatchConsumer({ kafka: services.kafka, groupId, topics: [topic], fromBeginning: true, maxBatchMessages: batch });
  const watch = await LagWatch.open(services.kafka, groupId, [topic]);
  let seen = 0;
  let first = Number.NaN;
  let seenAt = Number.NaN;
  let cpu0 = 0;
  let cpu1 = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((r) => (done = r));
  await consumer.start((b) => {
    if (Number.isNaN(first)) {
      first = performance.now();
      cpu0 = cpuUs();
    }
    const nowMs = Date.now();
    for (const m of b.messages) if (m.value !== null) decodeLabelled(m.value, nowMs);
    seen += b.messages.length;
    if (seen >= n && Number.isNaN(seenAt)) {
      seenAt = performance.now();
      cpu1 = cpuUs();
      done();
    }
    return Promise.resolve();
  });
  try {
    await all;
    const lagZero = slowLag ? await untilLagZero(() => consumer.lag()) : await watch.untilZero();
    return { seenMs: seenAt - first, lagZeroMs: lagZero - first, cpuUsPerEvent: (cpu1 - cpu0) / n };
  } finally {
    await consumer.stop();
    await watch.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { events: { type: 'string', default: '200000' }, batch: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '3' } } });
  const n = positiveOption('events', values.events);
  const batch = positiveOption('batch', values.batch);
  const rounds = positiveOption('rounds', values.rounds);
  const log = createLogger('warn', { bench: 'consumer-overhead' });
  const services = servicesFromEnv();
  const res = new BenchResources(services);
  try {
    const topic = res.topic('overhead');
    await preProduce(services.kafka, topic, 4, n, log, 'item');
    const times = new Map<Variant, Timing[]>(VARIANTS.map((v) => [v, []]));
    for (let r = 0; r < rounds; r++) {
      for (const v of VARIANTS) {
        const group = res.group(`overhead-${v.replace(/[^a-z]+/g, '-')}-${r}`);
        const t = v.startsWith('batch-consumer') ? await drainBatchConsumer(services, topic, group, n, batch, v !== 'batch-consumer') : await drainRaw(services, topic, group, n, batch, v);
        times.get(v)?.push(t);
        process.stderr.write(
          `${JSON.stringify({ round: r, variant: v, seenPerSec: Math.round(n / (t.seenMs / 1000)), lagZeroPerSec: Math.round(n / (t.lagZeroMs / 1000)), cpuUsPerEvent: Number(t.cpuUsPerEvent.toFixed(2)) })}\n`,
        );
      }
    }
    const rate = (xs: number[]): string => (xs.every((x) => Number.isNaN(x)) ? '—' : formatNumber(n / (quantile(xs, 0.5) / 1000)));
    process.stdout.write(
      `raw+commit: ${commitMs.length} commits, round trip p50 ${quantile(commitMs, 0.5).toFixed(1)} ms, p90 ${quantile(commitMs, 0.9).toFixed(1)} ms, sum ${(commitMs.reduce((a, b) => a + b, 0) / rounds).toFixed(0)} ms per round (over 4 concurrent partitions)\n`,
    );
    process.stdout.write(
      markdownTable(
        ['variant', 'events/s to last message decoded (median)', 'events/s to lag 0 (median)', 'CPU µs per event (median)'],
        VARIANTS.map((v) => {
          const ts = times.get(v) ?? [];
          return [
            v,
            rate(ts.map((t) => t.seenMs)),
            rate(ts.map((t) => t.lagZeroMs)),
            quantile(
              ts.map((t) => t.cpuUsPerEvent),
              0.5,
            ).toFixed(2),
          ];
        }),
      ) + '\n',
    );
  } finally {
    await res.cleanup(log);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`consumer-overhead failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
