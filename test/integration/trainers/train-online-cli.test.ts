/**
 * `thaw train --online` as a process (real Kafka): it publishes releases on its sync interval and
 * SIGTERM drains it: the last interval's release is published, offsets are committed, exit 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { FactorizationMachine } from '../../../models/fm.js';
import { bundleFm } from '../../../models/onnx/bundle.js';
import { ReleaseStore } from '../../../model-store/releases.js';
import { deleteTopics, ensureTopics, withAdmin } from '../../../streams/admin.js';
import type { KafkaConnection } from '../../../streams/kafka.js';
import { EventProducer } from '../../../streams/producer.js';
import { encodeLabelled } from '../../../streams/serde.js';
import { onlineInfoOf, totalOffsets } from '../../../trainers/online/offsets.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const BROKERS = process.env.THAW_KAFKA ?? '127.0.0.1:19092';
const KAFKA: KafkaConnection = { brokers: BROKERS.split(','), clientId: 'thaw-online-cli-test' };

describe('thaw train --online (process, real Kafka)', () => {
  const topic = `thaw-test-online-cli-${randomUUID()}`;
  const groupId = `thaw-test-online-cli-${randomUUID()}`;
  let root: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'thaw-online-cli-'));
    const store = new ReleaseStore({ root });
    const b = bundleFm(FactorizationMachine.create({ buckets: 1024, k: 4 }));
    const base = await store.publish({ model: 'fmu', architecture: b.architecture, files: b.files });
    await store.promote('fmu', base.version);
    await ensureTopics(KAFKA, [{ topic, partitions: 1 }]);
    const producer = new EventProducer({ kafka: KAFKA });
    await producer.connect();
    const msgs = Array.from({ length: 250 }, (_, n) => ({
      key: `u${n % 11}`,
      value: encodeLabelled({
        eventId: `c-${n}`,
        timeMs: 1_700_000_000_000 + n,
        userId: `u${n % 11}`,
        itemId: `i${n % 13}`,
        label: n % 4 === 0 ? 1 : 0,
        userFeatures: {},
        itemFeatures: { cat: [String(n % 3)] },
      }),
    }));
    await producer.send(topic, msgs);
    await producer.close();
  });

  after(async () => {
    await deleteTopics(KAFKA, [topic]).catch(() => undefined);
    await withAdmin(KAFKA, (admin) => admin.deleteGroups([groupId])).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });

  it('publishes on its interval and drains on SIGTERM with exit 0', async () => {
    const args = [
      '--online',
      '--side',
      'user',
      '--kind',
      'fm',
      '--release-dir',
      root,
      '--model',
      'fmu',
      '--sync-interval-ms',
      '500',
      '--group-id',
      groupId,
      '--topic',
      topic,
      '--kafka',
      BROKERS,
      '--log-level',
      'warn',
    ];
    const entry = `import(${JSON.stringify(join(ROOT, 'cli/commands/train-online.ts'))}).then(async (m) => { process.exitCode = await m.run(process.argv.slice(1)); })`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', entry, '--', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const end = Date.now() + 60_000;
    while (!out.includes('"release"')) {
      if (Date.now() > end) assert.fail(`no release line; stderr: ${err}`);
      await sleep(50);
    }
    child.kill('SIGTERM');
    assert.equal(await exited, 0, err);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { release: string; events: number });
    assert.equal(lines[lines.length - 1]!.events, 250);
    const store = new ReleaseStore({ root });
    const cur = await store.current('fmu');
    const info = onlineInfoOf((await store.load('fmu', cur!)).manifest);
    assert.equal(totalOffsets(info!.offsets), 250);
    const committed = await withAdmin(KAFKA, (admin) => admin.fetchOffsets({ groupId, topics: [topic] }));
    assert.equal(committed[0]?.partitions[0]?.offset, '250');
  });
});
