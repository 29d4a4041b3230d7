/**
 * Issue 11, exactly-once upstream: `thaw rekey` as users run it (a real process) is `kill -9`ed twice
 * mid-stream and restarted; every input event must then be in each keyed topic exactly once, read
 * with read_committed. At least once (produce, then commit the input offsets) fails this: the batch
 * in flight at the kill was produced and is produced again after the restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LabelledEvent } from '../../../schemas/types.js';
import { deleteTopics, ensureTopics, topicOffsets, withAdmin } from '../../../streams/admin.js';
import { EventProducer } from '../../../streams/producer.js';
import { decodeLabelled, encodeLabelled } from '../../../streams/serde.js';
import { conn, uniqueName, waitFor } from './helpers.js';
import { duplicates, killHard, readCommitted, startThaw, type ThawProcess } from './kill-drill.js';

const N = 4000;
const CHUNK = 50;
const CHUNK_EVERY_MS = 60;

function event(i: number): LabelledEvent {
  return {
    eventId: `e${i}`,
    timeMs: Date.now() - 3_600_000 + i,
    userId: `u${i % 97}`,
    itemId: `i${i % 211}`,
    label: i % 4 === 0 ? 1 : 0,
    userFeatures: { g: [String(i % 3)] },
    itemFeatures: {},
  };
}

/** Offsets written so far (records and, once transactional, commit markers): progress, not a count. */
async function written(topic: string): Promise<number> {
  return withAdmin(conn, async (admin) => (await topicOffsets(admin, topic)).reduce((s, p) => s + p.high - p.low, 0));
}

void test('thaw rekey killed with -9 twice mid-stream: every event exactly once in both keyed topics', { timeout: 300_000 }, async (t) => {
  const source = uniqueName('eo-rekey-src');
  const byUser = uniqueName('eo-rekey-user');
  const byItem = uniqueName('eo-rekey-item');
  const group = uniqueName('eo-rekey-group');
  await ensureTopics(
    conn,
    [source, byUser, byItem].map((topic) => ({ topic, partitions: 3 })),
  );
  t.after(() => deleteTopics(conn, [source, byUser, byItem]));

  const args = ['rekey', '--source-topic', source, '--by-user-topic', byUser, '--by-item-topic', byItem, '--group-id', group, '--session-timeout-ms', '6000'];
  let rekey: ThawProcess = startThaw(args);
  t.after(() => rekey.child.kill('SIGKILL'));

  // The input keeps arriving in small chunks, so the re-keyer works through many small batches and
  // a kill lands between producing a batch and committing its offsets.
  const producer = new EventProducer({ kafka: conn });
  await producer.connect();
  const feeding = (async () => {
    for (let i = 0; i < N; i += CHUNK) {
      const msgs = Array.from({ length: Math.min(CHUNK, N - i) }, (_, j) => ({ key: `e${i + j}`, value: encodeLabelled(event(i + j)) }));
      await producer.send(source, msgs);
      await sleep(CHUNK_EVERY_MS);
    }
  })();
  try {
    for (const at of [N * 0.25, N * 0.55]) {
      await waitFor(`re-keyed output past ${at}`, async () => (await written(byUser)) >= at, 120_000);
      await killHard(rekey);
      rekey = startThaw(args);
    }
    await feeding;
  } finally {
    await producer.close();
  }

  const expected = Array.from({ length: N }, (_, i) => `e${i}`).sort();
  for (const [topic, keyOf] of [
    [byUser, (e: LabelledEvent) => e.userId],
    [byItem, (e: LabelledEvent) => e.itemId],
  ] as const) {
    let got: LabelledEvent[] = [];
    await waitFor(
      `${N} committed events in ${topic}`,
      async () => {
        const records = await readCommitted(topic);
        got = records.map((m) => {
          assert.ok(m.value !== null);
          const e = decodeLabelled(m.value, Number.POSITIVE_INFINITY);
          assert.equal(m.key?.toString(), keyOf(e), `${topic}: keyed by its entity`);
          return e;
        });
        return got.length >= N;
      },
      120_000,
    ).catch(() => undefined);
    const ids = got.map((e) => e.eventId);
    const dup = duplicates(ids);
    assert.equal(dup.size, 0, `${topic}: ${dup.size} events written more than once, e.g. ${[...dup].slice(0, 5).join(' ')}\n${rekey.stderr().slice(-2000)}`);
    assert.deepStrictEqual([...ids].sort(), expected, `${topic}: every input event once`);
  }
});
