/**
 * The adaptation worker against real Kafka, Redis and ClickHouse (scripts/services.sh up):
 * every event gets exactly one prediction and the Redis states equal a reference run; poison
 * messages land in the dead-letter topic with their reason while the stream goes on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createAdapter } from '../../../adapters/registry.js';
import { ClickHouseSink } from '../../../analytics/clickhouse-sink.js';
import { AdaptationWorker } from '../../../consumers/worker.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import type { StateScope } from '../../../model-store/types.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { DeadLetterWriter } from '../../../streams/dead-letters.js';
import { createKafka } from '../../../streams/kafka.js';
import { EventProducer } from '../../../streams/producer.js';
import { defaultSerde, encodeLabelled } from '../../../streams/serde.js';
import {
  assertMatchesReference,
  clickhouse,
  CLICKHOUSE_URL,
  DATABASE,
  dropKeys,
  dropTable,
  events,
  KAFKA,
  KEEP_ALL_EVENTS,
  model,
  names,
  produceByItem,
  REDIS_URL,
  referenceRun,
  waitFor,
} from './harness.js';

const scope: StateScope = { namespace: 'live', side: 'item', adapter: 'fm-adagrad' };

interface Rig {
  n: ReturnType<typeof names>;
  producer: EventProducer;
  store: RedisEntityStore;
  sink: ClickHouseSink;
  worker: AdaptationWorker;
  spoolDir: string;
}

async function rig(tag: string): Promise<Rig> {
  const n = names(tag);
  await ensureTopics(KAFKA, [
    { topic: n.topic, partitions: 3, config: { ...KEEP_ALL_EVENTS } },
    { topic: n.dlq, partitions: 1 },
  ]);
  const producer = new EventProducer({ kafka: KAFKA });
  await producer.connect();
  const spoolDir = mkdtempSync(join(tmpdir(), 'thaw-spool-'));
  const sink = new ClickHouseSink({ url: CLICKHOUSE_URL, database: DATABASE, table: n.table, spoolDir });
  await sink.ensureSchema();
  const store = new RedisEntityStore({ redis: { url: REDIS_URL }, keyPrefix: n.prefix });
  const worker = new AdaptationWorker({
    kafka: KAFKA,
    side: 'item',
    adapter: createAdapter('fm-adagrad', 'item', model()),
    store,
    sink,
    deadLetters: new DeadLetterWriter(producer, n.dlq),
    topic: n.topic,
    groupId: n.group,
    fromBeginning: true,
    maxBatchMessages: 500,
    metricsPort: 0,
  });
  return { n, producer, store, sink, worker, spoolDir };
}

async function teardown(r: Rig): Promise<void> {
  if (r.worker.state === 'RUNNING') await r.worker.stop();
  await r.sink.close();
  await r.store.close();
  await r.producer.close();
  const ch = clickhouse();
  try {
    await dropTable(ch, r.n.table);
  } finally {
    await ch.close();
  }
  await dropKeys(REDIS_URL, r.n.prefix);
  await deleteTopics(KAFKA, [r.n.topic, r.n.dlq]);
  rmSync(r.spoolDir, { recursive: true, force: true });
}

/** Reads `count` messages of a topic from the beginning (fails on timeout). */
async function readTopic(topic: string, count: number, timeoutMs: number): Promise<{ headers: Record<string, string>; value: Buffer | null }[]> {
  const consumer = createKafka(KAFKA).consumer({ groupId: `${topic}-reader` });
  const out: { headers: Record<string, string>; value: Buffer | null }[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: ({ message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) {
          const first = Array.isArray(v) ? v[0] : v;
          if (first !== undefined) headers[k] = first.toString();
        }
        out.push({ headers, value: message.value });
        return Promise.resolve();
      },
    });
    await waitFor(`${count} messages on ${topic}`, () => out.length >= count, timeoutMs);
    // A little longer: anything beyond `count` would be a duplicate dead letter.
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    await consumer.disconnect();
  }
  return out;
}

describe('AdaptationWorker (Kafka + Redis + ClickHouse)', { timeout: 180_000 }, () => {
  const rigs: Rig[] = [];
  after(async () => {
    for (const r of rigs) await teardown(r);
  });

  it('end to end: 20k events, one prediction each, Redis states equal the reference run', async () => {
    const r = await rig('e2e');
    rigs.push(r);
    const evs = events(20_000, 21);
    await produceByItem(r.producer, r.n.topic, evs);
    const reference = await referenceRun(evs, scope, 3);
    await r.worker.start();
    await waitFor('worker caught up', async () => r.worker.stats().processed >= evs.length && (await r.worker.lag()) === 0, 120_000);
    await r.worker.drain();
    assert.equal(r.worker.state, 'STOPPED');
    const s = r.worker.stats();
    assert.deepEqual([s.processed, s.skipped, s.deadLetters], [evs.length, 0, 0]);
    const ch = clickhouse();
    try {
      await assertMatchesReference({ ch, table: r.n.table, redisUrl: REDIS_URL, prefix: r.n.prefix, scope, events: evs, reference });
    } finally {
      await ch.close();
    }
    const text = await r.worker.metrics.text();
    assert.match(text, /thaw_events_total\{[^}]*outcome="processed"[^}]*\} 20000/);
  });

  it('dead letters: garbage and invalid records go to the DLQ with reasons; the stream goes on', async () => {
    const r = await rig('dlq');
    rigs.push(r);
    const valid = events(4000, 22);
    const raw = defaultSerde().labelled;
    const base = valid[0] as LabelledEvent;
    const poison: Buffer[] = [
      Buffer.from('not avro at all'),
      Buffer.alloc(0),
      encodeLabelled(base).subarray(0, 9), // truncated
      Buffer.concat([Buffer.from([7]), encodeLabelled(base).subarray(1)]), // wrong magic byte
      raw.encode({ ...base, eventId: 'p-no-user', userId: '' }),
      raw.encode({ ...base, eventId: '', itemId: 'i-x' }),
      raw.encode({ ...base, eventId: 'p-label', label: 2 }),
      raw.encode({ ...base, eventId: 'p-future', timeMs: Date.now() + 10 * 86_400_000 }),
      raw.encode({ ...base, eventId: 'p-negative', timeMs: -5 }),
    ];
    // Interleave: a poison message after every 400 valid ones, keyed like valid ones or not at all.
    const msgs: { key: string | null; value: Buffer }[] = [];
    let p = 0;
    valid.forEach((e, i) => {
      msgs.push({ key: e.itemId, value: encodeLabelled(e) });
      if (i % 400 === 199 && p < poison.length) msgs.push({ key: p % 2 === 0 ? e.itemId : null, value: poison[p++] as Buffer });
    });
    while (p < poison.length) msgs.push({ key: null, value: poison[p++] as Buffer });
    await r.producer.send(r.n.topic, msgs);

    const reference = await referenceRun(valid, scope, 3);
    await r.worker.start();
    await waitFor('worker caught up', async () => (await r.worker.lag()) === 0 && r.worker.stats().processed >= valid.length, 90_000);
    await r.worker.drain();
    const s = r.worker.stats();
    assert.equal(s.processed, valid.length);
    assert.equal(s.deadLetters, poison.length);
    assert.equal(s.processed + s.deadLetters, msgs.length, 'in = processed + dead letters');

    const dead = await readTopic(r.n.dlq, poison.length, 30_000);
    assert.equal(dead.length, poison.length, 'each poison message dead-lettered exactly once');
    const reasons = dead.map((d) => d.headers['thaw-error-code']);
    assert.equal(reasons.filter((c) => c === 'DECODE_FAILED').length, 4);
    assert.equal(reasons.filter((c) => c === 'VALIDATION_FAILED').length, 5);
    for (const d of dead) {
      assert.ok((d.headers['thaw-reason'] ?? '').length > 0, 'reason header');
      assert.equal(d.headers['thaw-source-topic'], r.n.topic);
    }
    const sources = new Set(dead.map((d) => `${d.headers['thaw-source-partition']}/${d.headers['thaw-source-offset']}`));
    assert.equal(sources.size, poison.length);
    assert.ok(
      dead.some((d) => d.value !== null && d.value.equals(poison[0] as Buffer)),
      'original bytes kept',
    );
    assert.ok(
      dead.some((d) => /1 day|future|after now/.test(d.headers['thaw-reason'] ?? '')),
      'future time named in the reason',
    );

    const ch = clickhouse();
    try {
      await assertMatchesReference({ ch, table: r.n.table, redisUrl: REDIS_URL, prefix: r.n.prefix, scope, events: valid, reference });
    } finally {
      await ch.close();
    }
  });
});
