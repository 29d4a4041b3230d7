/**
 * `thaw produce` (labelled, --rekeyed, impressions), `thaw rekey` and `thaw join` against the real
 * Kafka and Redis. Every topic, group and key prefix is this test's own and is deleted afterwards.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { deleteTopics, topicOffsets, withAdmin } from '../../../streams/admin.js';
import { createRedis } from '../../../model-store/redis.js';
import { readRange, resolveRange } from '../../../streams/replay.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const KAFKA = process.env.THAW_KAFKA ?? '127.0.0.1:19092';
const REDIS = process.env.THAW_REDIS_URL ?? 'redis://127.0.0.1:16379';
const id = randomUUID().replace(/-/g, '').slice(0, 12);
const t = (name: string): string => `thaw-test-cli-${id}-${name}`;
const env = { ...process.env, THAW_KAFKA: KAFKA, THAW_REDIS_URL: REDIS, THAW_LOG_LEVEL: 'warn' };

function start(args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/dev.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, done };
}

async function count(topic: string): Promise<number> {
  return withAdmin({ brokers: [KAFKA] }, async (admin) => (await topicOffsets(admin, topic)).reduce((s, p) => s + p.high - p.low, 0)).catch(() => 0);
}

/** Committed records of a topic (rekey and join write in transactions: offsets include commit markers). */
async function records(topic: string): Promise<number> {
  const conn = { brokers: [KAFKA] };
  let n = 0;
  for await (const b of readRange(conn, topic, await resolveRange(conn, topic, { offset: 0 }, { offset: Number.MAX_SAFE_INTEGER }))) n += b.messages.length;
  return n;
}

async function until(pred: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred()) && Date.now() < deadline) await sleep(300);
}

const SOURCE = 'synthetic:events=3000,seed=11';

describe('thaw produce, rekey, join', () => {
  after(async () => {
    const topics = ['l', 'u', 'i', 'ru', 'ri', 'imp', 'clk', 'jo'].map(t);
    await deleteTopics({ brokers: [KAFKA] }, topics).catch(() => undefined);
    const redis = createRedis({ url: REDIS });
    const keys = await redis.keys(`tj${id}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('produce --rekeyed writes every event to both entity-keyed topics', async () => {
    const r = await start(['produce', '--source', SOURCE, '--limit', '2000', '--rekeyed', '--by-user-topic', t('u'), '--by-item-topic', t('i'), '--partitions', '2', '--rate', '50000']).done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(await count(t('u')), 2000);
    assert.equal(await count(t('i')), 2000);
  });

  it('rekey copies thaw.labelled into by-user and by-item, and stops on SIGTERM', async () => {
    const p = await start(['produce', '--source', SOURCE, '--limit', '1500', '--topic', t('l')]).done;
    assert.equal(p.code, 0, p.stderr);
    const rekey = start(['rekey', '--source-topic', t('l'), '--by-user-topic', t('ru'), '--by-item-topic', t('ri'), '--group-id', `g-${id}-rekey`]);
    await until(async () => (await records(t('ru'))) >= 1500 && (await records(t('ri'))) >= 1500, 60_000);
    rekey.child.kill('SIGTERM');
    const r = await rekey.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await records(t('ru')), 1500);
    assert.equal(await records(t('ri')), 1500);
  });

  it('produce --mode impressions feeds the join, which emits labelled events', async () => {
    const p = await start(['produce', '--source', SOURCE, '--limit', '1000', '--mode', 'impressions', '--impressions-topic', t('imp'), '--clicks-topic', t('clk')]).done;
    assert.equal(p.code, 0, p.stderr);
    assert.equal(await count(t('imp')), 1000);
    const clicks = await count(t('clk'));
    assert.ok(clicks > 50 && clicks < 500, `clicks ${clicks}`); // CTR about 0.2
    const join = start([
      'join',
      '--impressions-topic',
      t('imp'),
      '--clicks-topic',
      t('clk'),
      '--output-topic',
      t('jo'),
      '--group-id',
      `g-${id}-join`,
      '--join-key-prefix',
      `tj${id}`,
      '--attribution-window-ms',
      '5000',
      '--allowed-lateness-ms',
      '1000',
    ]);
    // Impressions older than the watermark minus the window are emitted; the last few seconds of event time stay pending.
    await until(async () => (await records(t('jo'))) >= 900, 60_000);
    join.child.kill('SIGTERM');
    const r = await join.done;
    assert.equal(r.code, 0, r.stderr);
    const out = await records(t('jo'));
    assert.ok(out >= 900 && out <= 1000, `joined ${out}`);
  });
});
