/**
 * Release announcements through the real services: `thaw release publish --kafka/--redis` reaches
 * a ReleaseWatcher whose poll interval is a minute, and the watcher has the new release ready
 * within a second of the announcement. Each test owns its topic / key prefix and release dir.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { createRedis } from '../../../model-store/redis.js';
import { releasePointerKey } from '../../../model-store/release-announce.js';
import { ReleaseWatcher } from '../../../model-store/release-sync.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import type { FactorizationMachine } from '../../../models/fm.js';
import { fmStateSize } from '../../../models/fm-entity.js';
import { fmFromRelease } from '../../../models/onnx/bundle.js';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import type { KafkaConnection } from '../../../streams/kafka.js';
import { cli, fmFile, publishedVersion, tempDir } from '../../unit/release/helpers.js';

const BROKERS = process.env.THAW_KAFKA ?? '127.0.0.1:19092';
const REDIS_URL = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';
const KAFKA: KafkaConnection = { brokers: BROKERS.split(','), clientId: 'thaw-release-test' };
const PICKUP_MS = 1000;

describe('release announcements (real Kafka and Redis)', () => {
  let dir: string;
  let root: string;
  let cleanup: () => Promise<void>;
  const stops: (() => Promise<unknown>)[] = [];

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    root = join(dir, 'releases');
  });
  afterEach(async () => {
    for (const s of stops.splice(0).reverse()) await s();
    await cleanup();
  });

  async function publish(seed: number, extra: string[]): Promise<{ version: string; sentAt: number }> {
    const r = await cli(['publish', '--release-dir', root, '--model', 'fm', '--from', (await fmFile(dir, seed)).path, ...extra]);
    const sentAt = Date.now();
    assert.equal(r.code, 0, r.err);
    return { version: publishedVersion(r.out), sentAt };
  }

  function watch(extra: { kafka?: { connection: KafkaConnection; topic: string }; redis?: { client: Redis; prefix: string } }, ready: Map<string, number>): ReleaseWatcher<FactorizationMachine> {
    const w = new ReleaseWatcher({
      store: new ReleaseStore({ root }),
      model: 'fm',
      expect: { type: 'fm', stateLayout: { adapter: 'fm-adagrad', stateSize: fmStateSize(4) } },
      build: (rel) => fmFromRelease(rel),
      pollIntervalMs: 60_000,
      onRelease: (r) => ready.set(r.version, Date.now()),
      ...extra,
    });
    stops.push(() => w.stop());
    return w;
  }

  async function waitReady(ready: Map<string, number>, version: string): Promise<number> {
    const deadline = Date.now() + 5_000;
    while (!ready.has(version) && Date.now() < deadline) await sleep(10);
    const at = ready.get(version);
    assert.ok(at !== undefined, `release ${version} not picked up`);
    return at;
  }

  it('a Kafka announcement is picked up within a second', async () => {
    const topic = `thaw.releases.test-${randomUUID()}`;
    await ensureTopics(KAFKA, [{ topic, partitions: 1 }]);
    stops.push(() => deleteTopics(KAFKA, [topic]));
    await publish(1, []);
    const ready = new Map<string, number>();
    const w = watch({ kafka: { connection: KAFKA, topic } }, ready);
    await w.start();
    await sleep(1500); // let the new group settle at the latest offset; the initial load already covers older releases
    const { version, sentAt } = await publish(2, ['--kafka', BROKERS, '--topic', topic]);
    const at = await waitReady(ready, version);
    assert.ok(at - sentAt < PICKUP_MS, `picked up ${at - sentAt} ms after the announcement`);
    assert.equal(w.take()?.version, version);
  });

  it('a Redis pointer announcement is picked up within a second and the pointer holds the version', async () => {
    const prefix = `test-${randomUUID()}`;
    const redis = createRedis({ url: REDIS_URL });
    stops.push(async () => redis.quit());
    stops.push(async () => redis.del(releasePointerKey(prefix, 'fm')));
    await publish(1, []);
    const ready = new Map<string, number>();
    const w = watch({ redis: { client: redis, prefix } }, ready);
    await w.start();
    const { version, sentAt } = await publish(2, ['--redis', REDIS_URL, '--redis-prefix', prefix]);
    assert.equal(await redis.get(releasePointerKey(prefix, 'fm')), version);
    const at = await waitReady(ready, version);
    assert.ok(at - sentAt < PICKUP_MS, `picked up ${at - sentAt} ms after the announcement`);
    assert.equal(w.take()?.version, version);
    // Rollback is announced the same way.
    const rb = await cli(['rollback', '--release-dir', root, '--model', 'fm', '--redis', REDIS_URL, '--redis-prefix', prefix]);
    assert.equal(rb.code, 0, rb.err);
    const back = (await new ReleaseStore({ root }).current('fm'))!;
    assert.equal(await redis.get(releasePointerKey(prefix, 'fm')), back);
    await waitReady(ready, back);
    assert.equal(w.take()?.version, back);
  });
});
