/**
 * Spine bench fixtures: service addresses, unique names, the shared FM, the pre-produced topic and
 * the clean-up of everything the bench created (topics, consumer groups, Redis keys, ClickHouse tables).
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { errorMessage } from '../../lib/errors.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { createRedis } from '../../model-store/redis.js';
import { FactorizationMachine } from '../../models/fm.js';
import { entityIdOf, type LabelledEvent, type Side } from '../../schemas/types.js';
import { syntheticStream, type SyntheticOptions } from '../../sources/synthetic.js';
import { deleteTopics, ensureTopics, withAdmin } from '../../streams/admin.js';
import { kafkaFromEnv, type KafkaConnection } from '../../streams/kafka.js';
import { EventProducer, type OutMessage } from '../../streams/producer.js';
import { encodeLabelled } from '../../streams/serde.js';
import { trainFm } from '../../trainers/fm-trainer.js';

export interface Services {
  kafka: KafkaConnection;
  redisUrl: string;
  clickhouseUrl: string;
}

/** Addresses from `bash scripts/services.sh env` (THAW_KAFKA, THAW_REDIS_URL, THAW_CLICKHOUSE_URL). */
export function servicesFromEnv(env: NodeJS.ProcessEnv = process.env): Services {
  return {
    kafka: { ...kafkaFromEnv(env), clientId: 'thaw-bench-spine' },
    redisUrl: env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379',
    clickhouseUrl: env.THAW_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123',
  };
}

/** Everything one bench run creates, so that clean-up can remove exactly that. */
export class BenchResources {
  readonly id = randomUUID().replace(/-/g, '').slice(0, 12);
  readonly topics: string[] = [];
  readonly groups: string[] = [];
  readonly redisPrefixes: { prefix: string; namespace: string }[] = [];
  readonly tables: string[] = [];
  readonly dirs: string[] = [];

  constructor(private readonly services: Services) {}

  topic(what: string): string {
    const t = `thaw-bench-spine-${this.id}-${what}`;
    this.topics.push(t);
    return t;
  }

  group(what: string): string {
    const g = `thaw-bench-spine-${this.id}-${what}`;
    this.groups.push(g);
    return g;
  }

  /** Redis key prefix (the store's first key segment) owned by this run. */
  redisPrefix(what: string, namespace = 'bench'): string {
    const p = `bench-spine-${this.id}-${what}`;
    this.redisPrefixes.push({ prefix: p, namespace });
    return p;
  }

  /** ClickHouse table name (in database `thaw`) owned by this run. */
  table(what: string): string {
    const t = `bench_spine_${this.id}_${what}`;
    this.tables.push(t);
    return t;
  }

  dir(path: string): string {
    this.dirs.push(path);
    return path;
  }

  /** Best effort: every step runs even if an earlier one failed; failures are logged. */
  async cleanup(log: Logger): Promise<void> {
    const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        log.warn('bench cleanup step failed', { what, error: errorMessage(err) });
      }
    };
    const { kafka } = this.services;
    for (const g of this.groups) await step(`consumer group ${g}`, () => withAdmin(kafka, (a) => a.deleteGroups([g])));
    await step('topics', () => deleteTopics(kafka, this.topics));
    const redis = createRedis({ url: this.services.redisUrl });
    try {
      for (const { prefix, namespace } of this.redisPrefixes) {
        await step(`redis ${prefix}`, async () => {
          // SCAN + UNLINK of this run's prefix only (the namespace helpers refuse foreign shapes).
          let cursor = '0';
          do {
            const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:${namespace}:*`, 'COUNT', 1000);
            cursor = next;
            if (keys.length > 0) await redis.unlink(...keys);
          } while (cursor !== '0');
        });
      }
    } finally {
      redis.disconnect();
    }
    for (const t of this.tables) {
      await step(`clickhouse ${t}`, async () => {
        const url = new URL(this.services.clickhouseUrl);
        url.searchParams.set('query', `DROP TABLE IF EXISTS thaw.${t}`);
        const res = await fetch(url, { method: 'POST' });
        if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      });
    }
    for (const d of this.dirs) await step(`dir ${d}`, () => rm(d, { recursive: true, force: true }));
  }
}

/** What a live bench run starts with: its logger, services, resources, the load average and the clock at start. */
export interface BenchRun {
  log: Logger;
  services: Services;
  res: BenchResources;
  loadBefore: number[];
  /** performance.now() at start. */
  t0: number;
}

/**
 * Starts a live bench run named `bench` (the `bench` field of its log lines): services from the
 * environment, a fresh BenchResources, and SIGINT/SIGTERM removing what the run created before exiting 130.
 */
export function startBenchRun(bench: string): BenchRun {
  const log = createLogger((process.env.THAW_LOG_LEVEL as 'info' | undefined) ?? 'info', { bench });
  const services = servicesFromEnv();
  const res = new BenchResources(services);
  const onSignal = (): void => void res.cleanup(log).finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return { log, services, res, loadBefore: loadavg(), t0: performance.now() };
}

/** The synthetic stream the bench uses (seeded: every run sees the same events). */
export function benchSource(events: number, seed = 11): SyntheticOptions {
  return { events, seed, users: 20_000, items: 5_000 };
}

/**
 * The shared FM: trained for one epoch on a synthetic prefix (a realistic, non-zero table; the
 * cost of scoring does not depend on how well it is trained).
 */
export async function benchModel(prefixEvents: number): Promise<{ model: FactorizationMachine; trainMs: number }> {
  const t0 = performance.now();
  if (prefixEvents <= 0) return { model: FactorizationMachine.create({ seed: 1 }), trainMs: 0 };
  const res = await trainFm(syntheticStream({ ...benchSource(prefixEvents, 99) }), {
    epochs: 1,
    minCount: 5,
    release: 'bench-fm',
    biasFilter: { user: { variance: 0.5, drift: 0.01 }, item: { variance: 0.5, drift: 0.01 } },
  });
  return { model: res.model, trainMs: performance.now() - t0 };
}

/**
 * Kafka message of one event keyed by `side`'s entity id (the by-item or by-user topic). The Kafka
 * timestamp is left to the producer (send time): synthetic event times lie in 2024, and stamping
 * them on the records would let the broker's time retention delete the bench topic while it is read.
 */
export function messageFor(side: Side, e: LabelledEvent): OutMessage {
  return { key: entityIdOf(e, side), value: encodeLabelled(e) };
}

/**
 * Creates `topic` with `partitions` and writes `events` synthetic events to it, keyed by `side`'s
 * entity; returns ms spent.
 */
export async function preProduce(kafka: KafkaConnection, topic: string, partitions: number, events: number, log: Logger, side: Side = 'item'): Promise<number> {
  const t0 = performance.now();
  await ensureTopics(kafka, [{ topic, partitions }]);
  const producer = new EventProducer({ kafka });
  await producer.connect();
  try {
    let buf: OutMessage[] = [];
    let sent = 0;
    for await (const e of syntheticStream(benchSource(events))) {
      buf.push(messageFor(side, e));
      if (buf.length === 10_000) {
        await producer.send(topic, buf);
        sent += buf.length;
        buf = [];
        if (sent % 100_000 === 0) log.info('pre-producing', { sent, of: events });
      }
    }
    if (buf.length > 0) await producer.send(topic, buf);
  } finally {
    await producer.close();
  }
  return performance.now() - t0;
}
