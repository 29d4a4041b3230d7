/**
 * `thaw serve --processes 2` (issue 12, "Scale"): two server processes share one port through
 * node:cluster; a process killed with -9 is replaced while the other keeps answering; SIGTERM to the
 * primary stops them all and exits 0. Runs on `thaw demo`'s output (no services).
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { cliHarness } from './cli-harness.js';

const h = cliHarness('serve-procs');

/** POST /v1/score on a new connection (so that the primary hands it to any of the processes). */
function score(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ user: { id: 'u1' }, candidates: [{ id: 'i1' }, { id: 'i2' }] });
    const req = request(`${address}/v1/score`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('thaw serve --processes 2', { timeout: 180_000 }, () => {
  after(() => rmSync(h.dir, { recursive: true, force: true }));

  it('shares one port, replaces a killed process, and stops them all on SIGTERM', async () => {
    const out = join(h.dir, 'demo');
    const demo = await h.thaw('demo', '--quick', '--events', '20000', '--out', out);
    assert.equal(demo.code, 0, demo.stderr);

    const { child, done } = h.start(['serve', '--demo', '--out', out, '--port', '0', '--processes', '2', '--log-level', 'info']);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const servingPids = (): number[] =>
      stderr
        .split('\n')
        .filter((l) => l.includes('"msg":"serving"') && l.includes('"pid":'))
        .map((l) => (JSON.parse(l) as { pid: number }).pid);
    try {
      const deadline = Date.now() + 60_000;
      while (!/listening on (http:\/\/\S+) \(2 processes\)/.test(stdout) && child.exitCode === null && Date.now() < deadline) await sleep(100);
      const address = /listening on (http:\/\/\S+) \(2 processes\)/.exec(stdout)?.[1];
      assert.ok(address !== undefined, `no listening line:\n${stdout}\n${stderr.slice(-2000)}`);
      assert.equal(stdout.match(/listening on/g)?.length, 1, 'one listening line, from the primary');
      // Each process logs "serving" just after it listens: its line may come after the primary's.
      while (servingPids().length < 2 && Date.now() < deadline) await sleep(50);
      const [first, second] = servingPids();
      assert.ok(first !== undefined && second !== undefined && first !== second, `two server processes: ${String(servingPids())}`);
      for (let i = 0; i < 10; i++) assert.equal(await score(address), 200);

      // One process dies: once the primary has noticed (a connection handed to the process as it
      // died is lost with it, as behind any balancer), the other answers, and a new one takes its place.
      process.kill(first, 'SIGKILL');
      while (!stderr.includes('"a server process died: starting another"') && Date.now() < deadline + 30_000) await sleep(50);
      for (let i = 0; i < 10; i++) assert.equal(await score(address), 200);
      while (servingPids().length < 3 && Date.now() < deadline + 60_000) await sleep(100);
      const replacement = servingPids()[2];
      assert.ok(replacement !== undefined && replacement !== first && replacement !== second, 'a replacement process serves');

      // The other original dies too: the replacement answers.
      process.kill(second, 'SIGKILL');
      while ((stderr.match(/"a server process died: starting another"/g)?.length ?? 0) < 2 && Date.now() < deadline + 60_000) await sleep(50);
      for (let i = 0; i < 10; i++) assert.equal(await score(address), 200);

      child.kill('SIGTERM');
      const exit = await done;
      assert.equal(exit.code, 0, stderr.slice(-3000));
      await sleep(500);
      for (const pid of servingPids()) assert.equal(alive(pid), false, `server process ${pid} is gone`);
    } finally {
      for (const pid of servingPids()) if (alive(pid)) process.kill(pid, 'SIGKILL');
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
