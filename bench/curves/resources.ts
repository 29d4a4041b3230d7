/**
 * Everything one curves run creates on the services, named with the run id so that clean-up removes
 * exactly that: Kafka topics and consumer groups, one Redis key prefix, one ClickHouse table, spool
 * directories. Service addresses come from the environment (`bash scripts/services.sh env`).
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { createRedis } from '../../model-store/redis.js';
import { deleteTopics, withAdmin } from '../../streams/admin.js';
import { kafkaFromEnv, type KafkaConnection } from '../../streams/kafka.js';

export interface Services {
  kafka: KafkaConnection;
  redisUrl: string;
  clickhouseUrl: string;
}

export function servicesFromEnv(env: NodeJS.ProcessEnv = process.env): Services {
  return {
    kafka: { ...kafkaFromEnv(env), clientId: 'thaw-bench-curves' },
    redisUrl: env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379',
    clickhouseUrl: env.THAW_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123',
  };
}

export class CurvesResources {
  /** 10 hex digits: short enough for namespaces (`c<id>-user-none-fixed-adaptive` ≤ 63 chars). */
  readonly id: string;
  readonly topics: string[] = [];
  readonly groups: string[] = [];
  readonly dirs: string[] = [];
  /** Redis key prefix of every worker of the run (namespaces separate the workers). */
  readonly redisPrefix: string;
  /** ClickHouse table (database `thaw`) of every prediction row of the run. */
  readonly table: string;

  constructor(
    readonly services: Services,
    id: string = randomUUID().replace(/-/g, '').slice(0, 10),
  ) {
    this.id = id;
    this.redisPrefix = `bench-curves-${id}`;
    this.table = `bench_curves_${id}`;
  }

  topic(what: string): string {
    const t = `thaw-bench-curves-${this.id}-${what}`;
    this.topics.push(t);
    return t;
  }

  group(what: string): string {
    const g = `thaw-bench-curves-${this.id}-${what}`;
    this.groups.push(g);
    return g;
  }

  /** A fresh directory path under the OS temp dir, removed by `cleanup`. */
  dir(what: string): string {
    const d = join(tmpdir(), `thaw-bench-curves-${this.id}-${what}`);
    this.dirs.push(d);
    return d;
  }

  /** Best effort: every step runs even if an earlier one failed; failures are logged and returned. */
  async cleanup(log: Logger): Promise<string[]> {
    const failed: string[] = [];
    const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        failed.push(what);
        log.warn('curves cleanup step failed', { what, error: errorMessage(err) });
      }
    };
    const { kafka } = this.services;
    if (this.groups.length > 0) await step('consumer groups', () => withAdmin(kafka, (a) => a.deleteGroups([...this.groups])));
    if (this.topics.length > 0) await step('topics', () => deleteTopics(kafka, this.topics));
    const redis = createRedis({ url: this.services.redisUrl });
    try {
      await step(`redis ${this.redisPrefix}`, async () => {
        // SCAN + UNLINK of this run's prefix only (states and the per-scope `_seen` sets).
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${this.redisPrefix}:*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await redis.unlink(...keys);
        } while (cursor !== '0');
      });
    } finally {
      redis.disconnect();
    }
    await step(`clickhouse ${this.table}`, () => clickhouseExec(this.services.clickhouseUrl, `DROP TABLE IF EXISTS thaw.${this.table}`));
    for (const d of this.dirs) await step(`dir ${d}`, () => rm(d, { recursive: true, force: true }));
    return failed;
  }
}

/** Runs one statement on the ClickHouse HTTP interface; returns the body. */
export async function clickhouseExec(url: string, sql: string): Promise<string> {
  const u = new URL(url);
  u.searchParams.set('query', sql);
  const res = await fetch(u, { method: 'POST' });
  const body = await res.text();
  if (!res.ok) throw new Error(`ClickHouse HTTP ${res.status}: ${body.slice(0, 300)}`);
  return body;
}
