// Checks that the real local services (scripts/services.sh up) answer:
// Kafka, Redis and ClickHouse, plus that docker-compose.yml validates.
// Addresses come from `scripts/services.sh env` (THAW_KAFKA, THAW_REDIS_URL,
// THAW_CLICKHOUSE_URL), with the script's defaults as fallback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';
import { createClient } from '@clickhouse/client';

const KAFKA = process.env.THAW_KAFKA ?? '127.0.0.1:19092';
const REDIS_URL = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';
const CLICKHOUSE_URL = process.env.THAW_CLICKHOUSE_URL ?? 'http://127.0.0.1:18123';
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

void test('kafka: create topic, produce and consume one message, delete topic', { timeout: 90_000 }, async () => {
  const kafka = new Kafka({
    clientId: 'thaw-services-test',
    brokers: [KAFKA],
    logLevel: logLevel.WARN,
    retry: { retries: 5 },
  });
  const topic = `test-services-${randomUUID()}`;
  const admin = kafka.admin();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  const consumer = kafka.consumer({ groupId: `test-services-${randomUUID()}` });
  await admin.connect();
  try {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    assert.equal(created, true, `topic ${topic} was not created`);
    const topics = await admin.listTopics();
    assert.ok(topics.includes(topic), `listTopics does not show ${topic}`);

    const value = `hello-${randomUUID()}`;
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'k', value }] });

    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const received = new Promise<string>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          resolve(message.value?.toString() ?? '');
          return Promise.resolve();
        },
      });
    });
    assert.equal(await withTimeout(received, 60_000, `consume from ${topic}`), value);
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await admin.deleteTopics({ topics: [topic], timeout: 10_000 }).catch(() => undefined);
    await admin.disconnect();
  }
});

void test('redis: PING, SET/GET/DEL of a unique key', { timeout: 30_000 }, async () => {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2, connectTimeout: 5_000, lazyConnect: true });
  try {
    await redis.connect();
    assert.equal(await redis.ping(), 'PONG');
    const key = `test-services:${randomUUID()}`;
    const value = randomUUID();
    assert.equal(await redis.set(key, value, 'EX', 60), 'OK');
    assert.equal(await redis.get(key), value);
    assert.equal(await redis.del(key), 1);
    assert.equal(await redis.get(key), null);
  } finally {
    redis.disconnect();
  }
});

void test('clickhouse: SELECT 1', { timeout: 30_000 }, async () => {
  const client = createClient({ url: CLICKHOUSE_URL, request_timeout: 10_000 });
  try {
    const ping = await client.ping();
    assert.equal(ping.success, true, `ClickHouse ping failed at ${CLICKHOUSE_URL}`);
    const rs = await client.query({ query: 'SELECT 1 AS one', format: 'JSONEachRow' });
    const rows = await rs.json<{ one: number }>();
    assert.deepEqual(rows, [{ one: 1 }]);
  } finally {
    await client.close();
  }
});

void test('docker-compose.yml validates with `docker-compose config -q`', { timeout: 60_000 }, () => {
  const file = path.join(REPO_ROOT, 'docker-compose.yml');
  const r = spawnSync('docker-compose', ['-f', file, 'config', '-q'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    assert.fail(
      code === 'ENOENT' ? 'docker-compose is not installed (apt-get install docker-compose); it is needed to validate docker-compose.yml' : `could not run docker-compose: ${r.error.message}`,
    );
  }
  assert.equal(r.status, 0, `docker-compose config -q failed (exit ${r.status}):\n${r.stderr}${r.stdout}`);
});
