/**
 * The online trainer survives its own restart without publishing a release twice (real Kafka):
 * run, publish, consume more, stop without draining (a kill mid-interval), restart with the same
 * group, drain. Every release has its own version, the lineage is contiguous (each release's parent
 * is the previous one and covers a superset of its offsets), the tail the killed run trained but
 * never released is trained exactly once more, and committed offsets equal the last release's.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { FactorizationMachine } from '../../../models/fm.js';
import { bundleFm } from '../../../models/onnx/bundle.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { deleteTopics, ensureTopics, withAdmin } from '../../../streams/admin.js';
import type { KafkaConnection } from '../../../streams/kafka.js';
import { EventProducer } from '../../../streams/producer.js';
import { encodeLabelled } from '../../../streams/serde.js';
import { OnlineTrainer } from '../../../trainers/online-trainer.js';
import { onlineInfoOf, totalOffsets } from '../../../trainers/online/offsets.js';

const BROKERS = process.env.THAW_KAFKA ?? '127.0.0.1:19092';
const KAFKA: KafkaConnection = { brokers: BROKERS.split(','), clientId: 'thaw-online-trainer-test' };

function event(n: number): LabelledEvent {
  return {
    eventId: `ot-${n}`,
    timeMs: 1_700_000_000_000 + n,
    userId: `u${n % 37}`,
    itemId: `i${n % 53}`,
    label: n % 3 === 0 ? 1 : 0,
    userFeatures: { age: [String(n % 5)] },
    itemFeatures: { cat: [String(n % 7)] },
  };
}

/** Waits for `cond` (polling); fails with `what` after a generous limit, so a hang is a failure, not a timing assertion. */
async function until(cond: () => boolean, what: string, limitMs = 60_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('OnlineTrainer restart safety (real Kafka)', () => {
  const topic = `thaw-test-online-${randomUUID()}`;
  const groupId = `thaw-test-online-${randomUUID()}`;
  let root: string;
  let store: ReleaseStore;
  let producer: EventProducer;
  let produced = 0;
  const trainers: OnlineTrainer[] = [];

  async function produce(n: number): Promise<void> {
    const msgs = [];
    for (let i = 0; i < n; i++) {
      const ev = event(produced++);
      msgs.push({ key: ev.itemId, value: encodeLabelled(ev) });
    }
    await producer.send(topic, msgs);
  }

  function trainer(): OnlineTrainer {
    const t = new OnlineTrainer({ kafka: KAFKA, store, model: 'fm', side: 'item', kind: 'fm', topic, groupId, syncIntervalMs: 3_600_000, maxWaitTimeMs: 50, maxBatchMessages: 50 });
    trainers.push(t);
    return t;
  }

  async function committed(): Promise<Record<string, number>> {
    const res = await withAdmin(KAFKA, (admin) => admin.fetchOffsets({ groupId, topics: [topic] }));
    const out: Record<string, number> = {};
    for (const p of res[0]?.partitions ?? []) if (Number(p.offset) >= 0) out[String(p.partition)] = Number(p.offset);
    return out;
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'thaw-online-it-'));
    store = new ReleaseStore({ root });
    const b = bundleFm(FactorizationMachine.create({ buckets: 1024, k: 4 }));
    const base = await store.publish({ model: 'fm', architecture: b.architecture, files: b.files });
    await store.promote('fm', base.version);
    await ensureTopics(KAFKA, [{ topic, partitions: 2 }]);
    producer = new EventProducer({ kafka: KAFKA });
    await producer.connect();
  });

  after(async () => {
    for (const t of trainers) await t.stop();
    await producer.close();
    await deleteTopics(KAFKA, [topic]).catch(() => undefined);
    await withAdmin(KAFKA, (admin) => admin.deleteGroups([groupId])).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  it('publishes each position once across a kill and a restart, trains the unreleased tail once more', async () => {
    const baseVersion = await store.current('fm');
    // Run 1: consume 300, release, consume 200 more, then die without draining.
    const t1 = trainer();
    await produce(300);
    await t1.start();
    await until(() => totalOffsets(t1.status().positions) === 300, 'run 1 to consume 300 events');
    const r1 = await t1.syncNow();
    assert.ok(r1 !== null);
    assert.deepEqual(await committed(), onlineInfoOf((await store.load('fm', r1)).manifest)!.offsets, 'offsets committed to exactly the release');
    await produce(200);
    await until(() => totalOffsets(t1.status().positions) === 500, 'run 1 to consume the tail');
    assert.equal(t1.status().learner.events, 500);
    await t1.stop();
    assert.equal((await store.list('fm')).length, 2, 'the killed run published nothing more');
    assert.equal(await store.current('fm'), r1);
    assert.deepEqual(await committed(), onlineInfoOf((await store.load('fm', r1)).manifest)!.offsets, 'nothing committed past the release');

    // Run 2: resumes at r1's offsets, trains the 200-event tail once, drains.
    const t2 = trainer();
    await t2.start();
    assert.equal(t2.status().lastRelease, r1);
    assert.equal(totalOffsets(t2.status().positions), 300, 'starts at the release, not at the killed run');
    await until(() => totalOffsets(t2.status().positions) === 500, 'run 2 to consume the tail');
    await t2.drain();
    const r2 = await store.current('fm');
    assert.ok(r2 !== undefined && r2 !== r1);
    assert.equal(t2.status().learner.events, 200, 'run 2 trained only the unreleased tail');

    // Run 3: nothing new: draining publishes nothing.
    const t3 = trainer();
    await t3.start();
    await t3.drain();
    assert.equal(t3.status().published, 0);
    assert.equal(t3.status().learner.events, 0);

    // Run 4: the group's commit is lost (reset to the beginning): the release still decides.
    await withAdmin(KAFKA, (admin) => admin.setOffsets({ groupId, topic, partitions: [0, 1].map((partition) => ({ partition, offset: '0' })) }));
    const t4 = trainer();
    await produce(10);
    await t4.start();
    await until(() => totalOffsets(t4.status().positions) === 510, 'run 4 to consume the new events');
    await t4.drain();
    assert.equal(t4.status().learner.events, 10, 'events covered by the release are not trained again');

    // The lineage: unique versions, each release's parent the previous one, offsets growing, events exact.
    const own = (await store.list('fm')).filter((m) => onlineInfoOf(m) !== undefined);
    const versions = own.map((m) => m.version);
    assert.equal(new Set(versions).size, versions.length);
    assert.equal(own.length, 3, "r1, r2 and run 4's release");
    own.sort((a, b) => totalOffsets(onlineInfoOf(a)!.offsets) - totalOffsets(onlineInfoOf(b)!.offsets));
    assert.deepEqual(
      own.map((m) => m.parent),
      [baseVersion, own[0]!.version, own[1]!.version],
    );
    assert.deepEqual(
      own.map((m) => onlineInfoOf(m)!.events),
      [300, 500, 510],
      'every event trained exactly once in the released lineage',
    );
    for (let i = 1; i < own.length; i++) {
      const prev = onlineInfoOf(own[i - 1]!)!.offsets;
      const cur = onlineInfoOf(own[i]!)!.offsets;
      for (const [p, off] of Object.entries(prev)) assert.ok((cur[p] ?? 0) >= off, 'offsets never go back');
    }
    assert.deepEqual(await committed(), onlineInfoOf(own[2]!)!.offsets);
  });
});
