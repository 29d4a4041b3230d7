/**
 * The online trainer with an EmerG release on the item stream (real Kafka): it trains from the
 * labelled topic, meta-learns the generators from the items warming up, and its release covers the
 * consumed offsets and keeps the base release's event layout and state layout, policy 'keep'.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { initBackend } from '../../../models/backend.js';
import { Emerg } from '../../../models/emerg.js';
import { fieldLayoutOf, inferEventLayout } from '../../../models/event-layout.js';
import { bundleCtr, ctrFromRelease } from '../../../models/onnx/bundle.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import type { LabelledEvent } from '../../../schemas/types.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import type { KafkaConnection } from '../../../streams/kafka.js';
import { EventProducer } from '../../../streams/producer.js';
import { encodeLabelled } from '../../../streams/serde.js';
import { OnlineTrainer } from '../../../trainers/online-trainer.js';
import { onlineInfoOf, totalOffsets } from '../../../trainers/online/offsets.js';

const BROKERS = process.env.THAW_KAFKA ?? '127.0.0.1:19092';
const KAFKA: KafkaConnection = { brokers: BROKERS.split(','), clientId: 'thaw-online-emerg-test' };
const ITEMS = 12;
const PER_ITEM = 10;

function event(n: number): LabelledEvent {
  const item = n % ITEMS;
  return {
    eventId: `oe-${n}`,
    timeMs: 1_700_000_000_000 + n,
    userId: `u${n % 17}`,
    itemId: `i${item}`,
    label: (n * 7) % 5 < 3 ? 1 : 0,
    userFeatures: { age: [String(n % 4)] },
    itemFeatures: { cat: [String(item % 3)] },
  };
}

async function until(cond: () => boolean, what: string, limitMs = 120_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('OnlineTrainer, kind emerg (real Kafka)', () => {
  const topic = `thaw-test-online-emerg-${randomUUID()}`;
  const groupId = `thaw-test-online-emerg-${randomUUID()}`;
  let root: string;
  let producer: EventProducer;

  before(async () => {
    await initBackend('cpu');
    root = await mkdtemp(join(tmpdir(), 'thaw-online-emerg-it-'));
    await ensureTopics(KAFKA, [{ topic, partitions: 1 }]);
    producer = new EventProducer({ kafka: KAFKA });
    await producer.connect();
  });

  after(async () => {
    await producer.close();
    await deleteTopics(KAFKA, [topic]).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  it('publishes a release covering the offsets, with the generators meta-learned and the layouts kept', async () => {
    const evs = Array.from({ length: ITEMS * PER_ITEM }, (_, n) => event(n));
    const layout = inferEventLayout('item', evs, { vocab: 128 });
    const model = new Emerg({ layout: fieldLayoutOf(layout), vocab: 128, dim: 4, layers: 2, genHidden: 4, seed: 5 });
    const stateLayout = { adapter: 'emerg', stateSize: 2 + 2 * model.width + 2 * model.graphSize + 2 };
    const store = new ReleaseStore({ root });
    const b = bundleCtr(model, { eventLayout: layout, stateLayout });
    const base = await store.publish({ model: 'em', architecture: b.architecture, files: b.files });
    await store.promote('em', base.version);
    await producer.send(
      topic,
      evs.map((ev) => ({ key: ev.itemId, value: encodeLabelled(ev) })),
    );
    const t = new OnlineTrainer({
      kafka: KAFKA,
      store,
      model: 'em',
      side: 'item',
      kind: 'emerg',
      topic,
      groupId,
      syncIntervalMs: 3_600_000,
      maxWaitTimeMs: 50,
      emerg: { batchSize: 20, itemsPerStep: 4 },
    });
    await t.start();
    try {
      await until(() => totalOffsets(t.status().positions) === evs.length, 'every event consumed');
      await t.drain();
    } finally {
      await t.stop();
    }
    const mine = (await store.list('em')).filter((m) => onlineInfoOf(m)?.groupId === groupId);
    assert.equal(mine.length, 1, 'one release for the one interval');
    const rel = await store.load('em', mine[0]!.version);
    const info = onlineInfoOf(rel.manifest)!;
    assert.deepEqual(info.offsets, { '0': evs.length });
    assert.equal(info.events, evs.length);
    assert.equal(info.metaTasks, ITEMS, 'every item warmed up within the stream: one task each');
    assert.equal(rel.manifest.parent, base.version);
    const arch = rel.manifest.architecture as { type: string; eventLayout: unknown; stateLayout: unknown; entityStatePolicy: string };
    assert.equal(arch.type, 'emerg');
    assert.deepEqual(arch.eventLayout, layout);
    assert.deepEqual(arch.stateLayout, stateLayout);
    assert.equal(arch.entityStatePolicy, 'keep');
    const released = ctrFromRelease(rel) as Emerg;
    for (const name of ['gen.graph.w1', 'gen.graph.b3', 'gen.id.w1']) {
      const a = released.dense.get(name).data;
      const z = model.dense.get(name).data;
      assert.ok(
        a.some((x, i) => x !== z[i]),
        `${name} was trained`,
      );
    }
  });
});
