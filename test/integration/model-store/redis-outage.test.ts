import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { ThawError } from '../../../lib/errors.js';
import { createRedis } from '../../../model-store/redis.js';
import { RedisEntityStore } from '../../../model-store/redis-store.js';
import type { EntityState, StateScope } from '../../../model-store/types.js';
import { freePort } from '../../../lib/free-port.js';

const scope: StateScope = { namespace: 'live', side: 'user', adapter: 'none' };
const st = (offset: number): EntityState => ({ count: 1, lastOffset: offset, lastEventMs: 0, params: new Float32Array(2) });
/** Outage calls must fail within commandTimeoutMs (5 s by default); allow scheduling slack on a busy machine. */
const BOUND_MS = 7_000;

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

/** A throwaway redis-server owned by this test file (the shared one must not be flushed or stopped). */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  children.push(child);
  const probe = createRedis({ url: `redis://127.0.0.1:${port}` });
  try {
    for (let i = 0; ; i++) {
      try {
        await probe.ping();
        return child;
      } catch (err) {
        if (i > 50) throw err;
        await sleep(100);
      }
    }
  } finally {
    probe.disconnect();
  }
}

async function stopRedis(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  if (child.exitCode === null) await once(child, 'exit');
}

async function rejectsWithin(p: Promise<unknown>, ms: number): Promise<ThawError> {
  const t0 = Date.now();
  const err = await p.then(
    () => assert.fail('expected a rejection'),
    (e: unknown) => e,
  );
  const elapsed = Date.now() - t0;
  assert.ok(err instanceof ThawError, String(err));
  assert.equal(err.code, 'REDIS_ERROR');
  assert.ok(ThawError.isRetryable(err));
  assert.ok(elapsed < ms, `rejected after ${elapsed} ms`);
  return err;
}

void test('unreachable Redis: calls reject with REDIS_ERROR within a bounded time', async () => {
  const port = await freePort();
  const store = new RedisEntityStore({ redis: { url: `redis://user:s3cret@127.0.0.1:${port}` } });
  try {
    const err = await rejectsWithin(store.getMany(scope, ['a']), BOUND_MS);
    assert.ok(!err.message.includes('s3cret'));
    await rejectsWithin(store.putMany(scope, [{ entityId: 'a', state: st(1) }]), BOUND_MS);
  } finally {
    await store.close();
  }
});

void test('NOSCRIPT after SCRIPT FLUSH is handled by reloading the script', async () => {
  const port = await freePort();
  const server = await startRedis(port);
  const store = new RedisEntityStore({ redis: { url: `redis://127.0.0.1:${port}` } });
  const admin = createRedis({ url: `redis://127.0.0.1:${port}` });
  try {
    assert.deepEqual(await store.putMany(scope, [{ entityId: 'a', state: st(1) }]), { written: 1, skipped: 0 });
    await admin.script('FLUSH');
    assert.deepEqual(
      await store.putMany(scope, [
        { entityId: 'a', state: st(2) },
        { entityId: 'a', state: st(1) },
      ]),
      { written: 1, skipped: 1 },
    );
  } finally {
    admin.disconnect();
    await store.close();
    await stopRedis(server);
  }
});

void test('Redis going down mid-run: calls fail fast, then succeed again once it is back', async () => {
  const port = await freePort();
  let server = await startRedis(port);
  const store = new RedisEntityStore({ redis: { url: `redis://127.0.0.1:${port}` } });
  try {
    await store.putMany(scope, [{ entityId: 'a', state: st(1) }]);
    await stopRedis(server);
    await rejectsWithin(store.getMany(scope, ['a']), BOUND_MS);
    server = await startRedis(port);
    // The client reconnects by itself; the worker's retry is a plain retry of the same call.
    let result: (EntityState | undefined)[] | undefined;
    for (let i = 0; i < 20 && result === undefined; i++) {
      result = await store.getMany(scope, ['a']).catch(async () => {
        await sleep(250);
        return undefined;
      });
    }
    // The throwaway server keeps no data (--save ''), so the entity is simply unknown again.
    assert.deepEqual(result, [undefined]);
    assert.deepEqual(await store.putMany(scope, [{ entityId: 'a', state: st(5) }]), { written: 1, skipped: 0 });
  } finally {
    await store.close();
    await stopRedis(server);
  }
});
