/**
 * Issue 11 item 4: the README starts the worker with `npx thaw run item &` and stops it with
 * `kill $!`, which signals npm. npm passes SIGTERM to the `sh -c thaw ...` it runs the bin through,
 * and that shell dies without passing it on: the node worker was orphaned and kept running,
 * undrained, holding its metrics port. Now the worker drains when its npm parent is gone.
 *
 * Spawns `npx thaw run item` from the package root exactly as a user would (the bin runs dist/, so
 * the test builds it first), sends SIGTERM to the npx pid, and expects the worker to drain and exit
 * and the metrics port to be free.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { cliHarness, CH, KAFKA, REDIS, ROOT } from './cli-harness.js';
import { freePort } from '../../../lib/free-port.js';
import { publishUntrainedFm } from './fixtures.js';

const h = cliHarness('npx');
const group = `g-npx-${h.id}`;

/** Pids of processes whose command line holds this test's unique group id (the orphan, if any). */
function workerPids(): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes(group) && !l.includes(' ps '))
    .map((l) => Number(l.trim().split(/\s+/)[0]))
    .filter((pid) => Number.isInteger(pid) && pid !== process.pid);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

describe('npx thaw run item, then SIGTERM to npx', () => {
  before(async () => {
    // The bin runs the compiled CLI: build it from this tree (as `npm ci` does through `prepare`).
    await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, timeout: 240_000 });
    await publishUntrainedFm(join(h.dir, 'releases'));
    await ensureTopics({ brokers: [KAFKA] }, [{ topic: h.topic, partitions: 1 }]);
  });

  after(async () => {
    for (const pid of workerPids()) process.kill(pid, 'SIGKILL'); // an orphan left by a failure
    await deleteTopics({ brokers: [KAFKA] }, [h.topic]).catch(() => undefined);
    await h.chQuery(`DROP TABLE IF EXISTS thaw.${h.table}`).catch(() => undefined);
    rmSync(h.dir, { recursive: true, force: true });
  });

  it('the worker drains and exits, and frees its metrics port', { timeout: 300_000 }, async () => {
    const port = await freePort();
    const env = {
      ...process.env,
      THAW_KAFKA: KAFKA,
      THAW_REDIS_URL: REDIS,
      THAW_CLICKHOUSE_URL: CH,
      THAW_REDIS_PREFIX: h.prefix,
      THAW_CLICKHOUSE_TABLE: h.table,
      THAW_RELEASE_DIR: join(h.dir, 'releases'),
      THAW_SPOOL_DIR: join(h.dir, 'spool'),
    };
    const npx = spawn('npx', ['thaw', 'run', 'item', '--topic', h.topic, '--group-id', group, '--metrics-port', String(port)], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    npx.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    npx.stdout.resume();
    // 'close': every process holding the pipes (npm, sh, the node worker) has exited.
    const closed = new Promise<void>((resolve) => npx.once('close', () => resolve()));
    const deadline = Date.now() + 180_000; // the first npx of a tree installs it (and builds)
    while (!stderr.includes('"worker started"') && npx.exitCode === null && Date.now() < deadline) await sleep(250);
    assert.match(stderr, /"worker started"/, stderr.slice(-3000));
    assert.equal(await portFree(port), false, 'the worker serves metrics');

    assert.equal(npx.kill('SIGTERM'), true);
    const exited = await Promise.race([closed.then(() => true), sleep(30_000).then(() => false)]);
    assert.equal(exited, true, `the node worker still runs 30 s after SIGTERM to npx (pids ${workerPids().join(',')}):\n${stderr.slice(-2000)}`);
    assert.deepEqual(workerPids(), []);
    assert.match(stderr, /"worker stopped".*"state":"STOPPED"/, 'drained, not killed');
    assert.equal(await portFree(port), true, 'metrics port released');
  });
});
