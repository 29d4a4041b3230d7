/**
 * Issue 13, "use both cores": `thaw run --threads 2` is two whole workers in one process, members
 * of one consumer group. Against the real services, over 4-partition topics holding the same events:
 *   - a live stream through `--threads 2`, drained by SIGTERM, ends with the Redis states (1e-6) and
 *     the prediction log (same row count, no duplicates, same scores) of a `--threads 1` run, and
 *     both threads did part of the work (their logs carry `thread`);
 *   - a `--threads 2` process killed with SIGKILL mid-stream and restarted ends the same.
 * Everything the test touches is its own (cli-harness.ts): topics, key prefix, table, namespaces.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReleaseStore } from '../../../model-store/releases.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import type { EntityState } from '../../../model-store/types.js';
import { bundleFm } from '../../../models/onnx/bundle.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { committedOf, dropKeys, events, KEEP_ALL_EVENTS, lagOf, model, produceByItem, waitFor } from '../consumers/harness.js';
import { cliHarness, KAFKA, REDIS, type CliRun } from './cli-harness.js';

const h = cliHarness('threads');
const N = 6_000;
const PARTITIONS = 4;
const evs = events(N, 13);
const topics = { reference: `${h.topic}-ref`, live: `${h.topic}-live`, kill: `${h.topic}-kill` };
const kafka = { brokers: [KAFKA] };
// Small micro-batches: many commits, so a kill lands between them.
const common = ['--cross-adapter', 'off', '--metrics-port', '0', '--max-batch', '200', '--session-timeout-ms', '6000', '--log-level', 'info'];
const runArgs = (topic: string, ns: string, ...extra: string[]): string[] => ['run', 'item', '--topic', topic, '--namespace', ns, '--group-id', `g-${ns}-${h.id}`, ...common, ...extra];

/** Produces `evs` keyed by item, about 2,000 events/s, so workers consume a live stream. */
async function produceLive(topic: string, onProgress: (produced: number) => void = () => undefined): Promise<void> {
  const producer = new EventProducer({ kafka });
  await producer.connect();
  try {
    for (let at = 0; at < evs.length; at += 200) {
      await produceByItem(producer, topic, evs.slice(at, at + 200));
      onProgress(Math.min(evs.length, at + 200));
      await sleep(100);
    }
  } finally {
    await producer.close();
  }
}

/** Entity id → state of namespace `ns` (the release's epoch segment is read off the first key). */
async function statesOf(ns: string): Promise<Map<string, EntityState>> {
  const { createRedis } = await import('../../../model-store/redis.js');
  const redis = createRedis({ url: REDIS });
  let keys: string[];
  try {
    keys = await redis.keys(`${h.prefix}:${ns}:item:*`);
  } finally {
    redis.disconnect();
  }
  const adapter = keys[0]?.split(':')[3];
  assert.ok(adapter !== undefined, `states of namespace ${ns} in Redis`);
  const ids = [...new Set(evs.map((e: LabelledEvent) => e.itemId))];
  const store = new RedisEntityStore({ redis: { url: REDIS }, keyPrefix: h.prefix });
  try {
    const got = await store.getMany({ namespace: ns, side: 'item', adapter }, ids);
    return new Map(ids.flatMap((id, i) => (got[i] === undefined ? [] : [[id, got[i]] as const])));
  } finally {
    await store.close();
  }
}

/** Rows of namespace `ns`: count, distinct events, and event id → score and prior count (duplicates must agree). */
async function logOf(ns: string): Promise<{ rows: number; distinct: number; byEvent: Map<string, string> }> {
  const rows = Number(await h.chQuery(`SELECT count() FROM thaw.${h.table} WHERE namespace = '${ns}'`));
  const tsv = await h.chQuery(
    `SELECT event_id, max(score) - min(score), max(prior_count) - min(prior_count), any(score), any(prior_count) FROM thaw.${h.table} WHERE namespace = '${ns}' GROUP BY event_id FORMAT TabSeparated`,
  );
  const byEvent = new Map<string, string>();
  for (const line of tsv.split('\n').filter((l) => l !== '')) {
    const [id, scoreSpread, countSpread, score, prior] = line.split('\t');
    assert.deepEqual([Number(scoreSpread), Number(countSpread)], [0, 0], `duplicates of ${id} agree`);
    byEvent.set(id ?? '', `${Number(score).toFixed(6)}/${prior}`);
  }
  return { rows, distinct: byEvent.size, byEvent };
}

/** The checks both tests end with: states within 1e-6 of the reference's, the same scores and prior counts per event. */
async function assertSameAsReference(ns: string): Promise<void> {
  const [want, got] = [await statesOf('ref'), await statesOf(ns)];
  assert.equal(got.size, want.size, 'as many entity states as the reference');
  for (const [id, w] of want) {
    const g = got.get(id);
    assert.ok(g !== undefined, `state of ${id}`);
    assert.deepEqual([g.count, g.lastEventMs, g.params.length], [w.count, w.lastEventMs, w.params.length], `count, lastEventMs, size of ${id}`);
    for (let j = 0; j < w.params.length; j++) assert.ok(Math.abs((g.params[j] ?? NaN) - (w.params[j] ?? NaN)) <= 1e-6, `param ${j} of ${id}`);
  }
  const [ref, log] = [await logOf('ref'), await logOf(ns)];
  assert.equal(log.distinct, N, 'every event logged');
  assert.deepEqual(log.byEvent, ref.byEvent, 'the same score and prior count for every event');
}

/** Processed events per thread, from the workers' 'worker stopped' log lines. */
function processedByThread(run: CliRun): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of run.stderr.split('\n')) {
    if (!line.includes('"worker stopped"')) continue;
    const rec = JSON.parse(line) as { thread?: number; processed?: number };
    if (rec.thread !== undefined) out.set(rec.thread, (out.get(rec.thread) ?? 0) + (rec.processed ?? 0));
  }
  return out;
}

describe('thaw run --threads 2', { timeout: 240_000 }, () => {
  before(async () => {
    const store = new ReleaseStore({ root: join(h.dir, 'releases') });
    const b = bundleFm(model());
    const m = await store.publish({ model: 'fm', parent: null, architecture: b.architecture, files: b.files });
    await store.promote('fm', m.version);
    await ensureTopics(
      kafka,
      Object.values(topics).map((topic) => ({ topic, partitions: PARTITIONS, config: { ...KEEP_ALL_EVENTS } })),
    );
    await produceLive(topics.reference);
    const ref = await h.thaw(...runArgs(topics.reference, 'ref', '--until-end'));
    assert.equal(ref.code, 0, ref.stderr);
    const log = await logOf('ref');
    assert.deepEqual([log.rows, log.distinct], [N, N], 'the reference logs every event once');
  });

  after(async () => {
    await deleteTopics(kafka, Object.values(topics)).catch(() => undefined);
    await h.chQuery(`DROP TABLE IF EXISTS thaw.${h.table}`).catch(() => undefined);
    await dropKeys(REDIS, h.prefix);
    rmSync(h.dir, { recursive: true, force: true });
  });

  it('over a live stream, drained by SIGTERM, ends as --threads 1 did, both threads working', async () => {
    const run = h.start(runArgs(topics.live, 'live', '--threads', '2'));
    let stderr = '';
    run.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor('both threads started', () => stderr.includes('"worker threads started"'), 60_000);
    await produceLive(topics.live);
    await waitFor('lag 0', async () => (await lagOf(`g-live-${h.id}`, topics.live)) === 0, 60_000, 200);
    run.child.kill('SIGTERM');
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);

    const byThread = processedByThread(done);
    assert.deepEqual([...byThread.keys()].sort(), [0, 1], 'both threads logged their totals');
    assert.ok(
      [...byThread.values()].every((n) => n > 0),
      `both threads processed events: ${JSON.stringify([...byThread])}`,
    );
    assert.equal(
      [...byThread.values()].reduce((a, b) => a + b, 0),
      N,
      'the threads processed every event once between them',
    );
    const log = await logOf('live');
    assert.deepEqual([log.rows, log.distinct], [N, N], 'the same row count as --threads 1, no duplicates');
    await assertSameAsReference('live');
  });

  it('killed with SIGKILL mid-stream and restarted, ends as --threads 1 did', async () => {
    const group = `g-kill-${h.id}`;
    const first = h.start(runArgs(topics.kill, 'kill', '--threads', '2'));
    let stderr = '';
    first.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor('both threads started', () => stderr.includes('"worker threads started"'), 60_000);
    let produced = 0;
    const producing = produceLive(topics.kill, (n) => (produced = n));
    await waitFor('a third committed', async () => (await committedOf(group, topics.kill)) >= N / 3, 60_000, 50);
    first.child.kill('SIGKILL');
    const killed = await first.done;
    assert.equal(killed.code, null, 'killed, not exited');
    assert.ok(produced < N, `killed while events were arriving (produced ${produced})`);
    await producing;

    const restart = await h.thaw(...runArgs(topics.kill, 'kill', '--threads', '2', '--until-end'));
    assert.equal(restart.code, 0, restart.stderr);
    assert.match(restart.stderr, /worker stopped at the end of the topic/);
    await assertSameAsReference('kill');
  });
});
