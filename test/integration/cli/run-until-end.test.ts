/**
 * `thaw run --until-end` against the real services: the worker processes what the topic holds when
 * it starts, commits it and exits 0 by itself (a backfill or an evaluation run); a topic with
 * nothing in it exits 0 at once. Everything the test touches is its own (cli-harness.ts).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createRedis } from '../../../model-store/redis.js';
import { deleteTopics, ensureTopics, groupLag, withAdmin } from '../../../streams/admin.js';
import { cliHarness, KAFKA, REDIS } from './cli-harness.js';

const h = cliHarness('until-end');
const emptyTopic = `${h.topic}-empty`;
const EVENTS = 3000;

describe('thaw run --until-end', () => {
  after(async () => {
    await deleteTopics({ brokers: [KAFKA] }, [h.topic, emptyTopic]).catch(() => undefined);
    await h.chQuery(`DROP TABLE IF EXISTS thaw.${h.table}`).catch(() => undefined);
    const redis = createRedis({ url: REDIS });
    const keys = await redis.keys(`${h.prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
    rmSync(h.dir, { recursive: true, force: true });
  });

  it('processes the events present at start, commits them and exits 0; an empty topic exits 0 at once', async () => {
    const train = await h.thaw('train', 'fm', '--source', 'synthetic:events=6000,seed=5', '--history-events', '2000', '--min-events', '5', '--epochs', '1');
    assert.equal(train.code, 0, train.stderr);
    // One partition keeps offsets increasing per entity without a rekeyer.
    const produce = await h.thaw('produce', '--source', 'synthetic:events=6000,seed=5', '--topic', h.topic, '--partitions', '1', '--limit', String(EVENTS));
    assert.equal(produce.code, 0, produce.stderr);

    const group = `g-${h.id}`;
    const run = await h.thaw('run', 'item', '--topic', h.topic, '--namespace', `n${h.id}`, '--group-id', group, '--metrics-port', '0', '--until-end', '--log-level', 'info');
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /worker stopped at the end of the topic/);
    const rows = Number(await h.chQuery(`SELECT count() FROM thaw.${h.table} WHERE namespace = 'n${h.id}'`));
    const distinct = Number(await h.chQuery(`SELECT uniqExact(event_id) FROM thaw.${h.table} WHERE namespace = 'n${h.id}'`));
    assert.deepEqual([rows, distinct], [EVENTS, EVENTS], 'every event processed once');
    const lag = await withAdmin({ brokers: [KAFKA] }, (admin) => groupLag(admin, group, [h.topic]));
    assert.equal(lag, 0, 'offsets committed up to the end');

    await ensureTopics({ brokers: [KAFKA] }, [{ topic: emptyTopic, partitions: 2 }]);
    const empty = await h.thaw('run', 'item', '--topic', emptyTopic, '--namespace', `e${h.id}`, '--group-id', `ge-${h.id}`, '--metrics-port', '0', '--until-end', '--log-level', 'info');
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stderr, /until-end: nothing to consume/);
  });
});
