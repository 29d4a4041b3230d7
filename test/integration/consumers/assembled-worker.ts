/**
 * A worker with the state and row path `thaw run` assembles (cli/commands/run.ts): RedisEntityStore
 * (a single node or a cluster) behind the CachedEntityStore tier with run's defaults, rows to
 * ClickHouse through the disk spool, dead letters to Kafka. In process and on the tests' untrained
 * FM, so a test can kill the services around it and compare with referenceRun.
 */
import { createAdapter } from '../../../adapters/registry.js';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import { AdaptationWorker } from '../../../consumers/worker.js';
import type { AdaptationWorkerOptions } from '../../../consumers/worker-types.js';
import type { Logger } from '../../../lib/log.js';
import { CachedEntityStore } from '../../../model-store/cached-store.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import { DeadLetterWriter } from '../../../streams/dead-letters.js';
import type { EventProducer } from '../../../streams/producer.js';
import { CLICKHOUSE_URL, DATABASE, KAFKA, model, type names } from './harness.js';

export interface AssembledWorker {
  worker: AdaptationWorker;
  /** Closes the sink and the store (after the worker stopped). */
  close: () => Promise<void>;
}

export interface AssembledWorkerOptions {
  /** The test's topic, dead-letter topic, key prefix, table and group. */
  n: ReturnType<typeof names>;
  redisUrl: string;
  cluster?: boolean;
  producer: EventProducer;
  /** The spool directory of this worker's sink. */
  spoolDir: string;
  logger?: Logger;
  /** Worker options over the defaults here (item side, fm-adagrad, metrics on a free port). */
  worker?: Partial<AdaptationWorkerOptions>;
}

/** Builds the worker (not started). */
export async function assembledWorker(o: AssembledWorkerOptions): Promise<AssembledWorker> {
  const store = new CachedEntityStore(
    new RedisEntityStore({ redis: { url: o.redisUrl, ...(o.cluster === true ? { cluster: true } : {}) }, keyPrefix: o.n.prefix, ...(o.logger === undefined ? {} : { logger: o.logger }) }),
  );
  const sink = new ClickHouseSink({ url: CLICKHOUSE_URL, database: DATABASE, table: o.n.table, spoolDir: o.spoolDir });
  await sink.ensureSchema();
  const worker = new AdaptationWorker({
    kafka: KAFKA,
    side: 'item',
    adapter: createAdapter('fm-adagrad', 'item', model()),
    store,
    sink,
    deadLetters: new DeadLetterWriter(o.producer, o.n.dlq),
    topic: o.n.topic,
    groupId: o.n.group,
    metricsPort: 0,
    ...(o.logger === undefined ? {} : { logger: o.logger }),
    ...o.worker,
  });
  return {
    worker,
    close: async () => {
      await sink.close();
      await store.close();
    },
  };
}
