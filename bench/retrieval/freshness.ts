/**
 * `npm run bench -- --only retrieval-freshness [--json]`: produce → retrievable latency of brand-new
 * items through the real path: item profiles produced to Kafka (a topic of this run), the Kafka
 * indexer of `thaw serve --retrieval` (serving/retrieve-indexer.ts) puts them in the growing
 * segment, and `POST /v1/retrieve` over HTTP returns them.
 *
 *   node --import tsx bench/retrieval/freshness.ts [--items 20000] [--new 200] [--rate 20] [--poll-ms 5] [--json]
 *
 * Setup (untimed): a fresh dual encoder (dim 32) and --items catalogue items from random features,
 * sealed into the graph, plus one anchor per new item with that item's features. New item i is
 * produced at --rate per second; from its send, /v1/retrieve is polled every --poll-ms for a user
 * whose history is anchor i (so the user's vector is item i's, see
 * test/integration/serving/retrieve-kafka.test.ts) until item i is the top answer. Latency = that
 * answer's arrival − the send's start (resolution: --poll-ms plus one request). Needs Kafka
 * (THAW_KAFKA, default 127.0.0.1:19092).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { silentLogger } from '../../lib/log.js';
import { AnnIndex } from '../../retrieval/index/ann-index.js';
import { DualEncoder } from '../../retrieval/towers.js';
import { deleteTopics, ensureTopics } from '../../streams/admin.js';
import { kafkaFromEnv } from '../../streams/kafka.js';
import { EventProducer } from '../../streams/producer.js';
import { defaultSerde } from '../../streams/serde.js';
import { RetrievalIndexer } from '../../serving/retrieve-indexer.js';
import { registerRetrievalRoutes } from '../../serving/retrieve-routes.js';
import { RetrievalService } from '../../serving/retrieve.js';
import { markdownTable, positiveOption, quantile } from '../stats.js';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '20000' },
    new: { type: 'string', default: '200' },
    rate: { type: 'string', default: '20' },
    'poll-ms': { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const ITEMS = positiveOption('items', values.items);
const NEW = positiveOption('new', values.new);
const RATE = positiveOption('rate', values.rate, false);
const POLL_MS = positiveOption('poll-ms', values['poll-ms']);
const log = (phase: string, fields: Record<string, unknown> = {}): void => void process.stderr.write(JSON.stringify({ bench: 'retrieval-freshness', phase, ...fields }) + '\n');

const started = new Date();
const load0 = loadavg();
const kafka = { ...kafkaFromEnv(), clientId: 'thaw-bench-retrieval-freshness' };
const run = randomUUID().slice(0, 8);
const topic = `bench.retrieval-freshness.profiles.${run}`;
const eventTopic = `bench.retrieval-freshness.events.${run}`;
const featuresOf = (i: number): Record<string, string[]> => ({ genre: [`g${i % 50}`], title: [`w${i % 997}`, `v${(i * 31) % 1009}`] });
const newFeatures = (j: number): Record<string, string[]> => ({ genre: [`new-g${j}`], title: [`new-w${j}`] });

log('setup', { items: ITEMS, new: NEW });
const encoder = new DualEncoder({ dim: 32, seed: 3 });
const index = await AnnIndex.create({ dim: 32, initialCapacity: ITEMS + 2 * NEW + 1024 });
const out = new Float32Array(32);
for (let i = 0; i < ITEMS; i++) {
  encoder.itemForward(encoder.itemInput(`i${i}`, featuresOf(i)), false, out, 0);
  index.upsertSealed(`i${i}`, out);
}
for (let j = 0; j < NEW; j++) {
  encoder.itemForward(encoder.itemInput(`anchor${j}`, newFeatures(j)), false, out, 0);
  index.upsertSealed(`anchor${j}`, out);
}
const service = new RetrievalService(encoder, new Set(), index);
service.start();
await ensureTopics(kafka, [
  { topic, partitions: 4 },
  { topic: eventTopic, partitions: 4 },
]);
const indexer = new RetrievalIndexer({ kafka, service, profileTopic: topic, eventTopic, groupPrefix: `bench-retrieval-freshness-${run}`, logger: silentLogger });
const app = Fastify({ logger: false });
registerRetrievalRoutes(app, service, silentLogger);
const producer = new EventProducer({ kafka });
const latencies: number[] = [];
try {
  await indexer.start();
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  await producer.connect();
  const serde = defaultSerde();
  const top = async (j: number): Promise<string | undefined> => {
    const res = await fetch(`${address}/v1/retrieve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: { id: 'u', history: [`anchor${j}`] }, k: 1 }) });
    return ((await res.json()) as { ids: string[] }).ids[0];
  };
  const one = async (j: number): Promise<void> => {
    const t0 = performance.now();
    await producer.send(topic, [{ key: `new${j}`, value: serde.encodeProfile({ side: 'item', entityId: `new${j}`, timeMs: Date.now(), features: newFeatures(j) }) }]);
    while ((await top(j)) !== `new${j}`) await new Promise((r) => setTimeout(r, POLL_MS));
    latencies.push(performance.now() - t0);
  };
  // Wait until the indexer consumes (its group joined): a first item.
  await one(0);
  latencies.length = 0;
  log('measuring', { rate: RATE });
  const pending: Array<Promise<void>> = [];
  const t0 = performance.now();
  for (let j = 1; j < NEW; j++) {
    const due = t0 + ((j - 1) * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(one(j));
  }
  await Promise.all(pending);
} finally {
  await producer.close().catch(() => undefined);
  await app.close();
  await indexer.stop();
  service.stop();
  await deleteTopics(kafka, [topic, eventTopic]).catch(() => undefined);
}
const load1 = loadavg();
const result = {
  date: started.toISOString(),
  loadAverage: { start: load0.map((x) => Number(x.toFixed(2))), end: load1.map((x) => Number(x.toFixed(2))) },
  items: ITEMS,
  newItems: latencies.length,
  ratePerSecond: RATE,
  pollMs: POLL_MS,
  latencyMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: Math.max(...latencies) },
};
mkdirSync('.thaw/bench', { recursive: true });
writeFileSync('.thaw/bench/retrieval-freshness.json', JSON.stringify(result, null, 2));
if (values.json) console.log(JSON.stringify(result));
else {
  console.log(`## retrieval-freshness: produce → retrievable through Kafka, the indexer and POST /v1/retrieve`);
  console.log(
    `${result.date}; load average ${load0.map((x) => x.toFixed(2)).join(' ')} at start, ${load1.map((x) => x.toFixed(2)).join(' ')} at end (a shared 2-core machine). ${ITEMS.toLocaleString('en-US')} catalogue items; ${latencies.length} new items at ${RATE}/s; poll every ${POLL_MS} ms.\n`,
  );
  console.log(
    markdownTable(
      ['new items', 'p50', 'p99', 'max'],
      [[String(latencies.length), `${result.latencyMs.p50.toFixed(0)} ms`, `${result.latencyMs.p99.toFixed(0)} ms`, `${result.latencyMs.max.toFixed(0)} ms`]],
    ),
  );
}
