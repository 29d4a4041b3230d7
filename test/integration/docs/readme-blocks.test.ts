/**
 * Issue 16: the README's operational shell blocks, run as written against the services, the way a
 * user pastes them: the production quick start (train, produce, both workers and the online trainer
 * in the background, curves), then the replay block, then the serving block (serve and curl).
 *
 * Each block runs in `bash -euo pipefail` in a directory of its own, where `npx thaw` is this tree's
 * bin (node_modules/.bin/thaw, built from source first) and `scripts/` is this tree's. The blocks use
 * the default topics, which this test owns (deleted before and after); Redis keys, the prediction
 * table and the release directory are this test's own (THAW_REDIS_PREFIX, THAW_CLICKHOUSE_TABLE, the
 * directory). The other shell blocks are parsed by test/unit/docs/readme-commands.test.ts; those that
 * take minutes (the demo, the evaluations, the benchmark) run in their own tests and in `npm run bench`.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { deleteTopics } from '../../../streams/admin.js';
import { shellBlocks } from '../../docs/shell-blocks.js';
import { KAFKA, ROOT } from '../cli/cli-harness.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const DEFAULT_TOPICS = ['thaw.labelled.by-item', 'thaw.labelled.by-user', 'thaw.releases'];
const id = `${process.pid}${Date.now().toString(36)}`;
const dir = mkdtempSync(join(tmpdir(), 'thaw-readme-'));
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('THAW_'))),
  THAW_REDIS_PREFIX: `rb${id}`.slice(0, 32),
  THAW_CLICKHOUSE_TABLE: `readme_${id}`,
  THAW_LOG_LEVEL: 'warn',
};

/** The one README shell block that contains `marker`. */
function blockWith(marker: string): string {
  const found = shellBlocks(README).filter((b) => b.text.includes(marker));
  assert.equal(found.length, 1, `one README shell block contains ${JSON.stringify(marker)}`);
  return found[0]?.text ?? '';
}

interface Shell {
  output: () => string;
  exited: Promise<number | null>;
  pid: number;
}

/** Runs `script` in bash (its own process group) in the test's directory. */
function shell(script: string): Shell {
  const child = spawn('bash', ['-c', `set -euo pipefail\n${script}`], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.ok(child.pid !== undefined);
  return { output: () => output, exited, pid: child.pid };
}

/** Runs a block to its end, then stops what it left in the background (a user's Ctrl-C). */
async function runBlock(script: string, timeoutMs: number): Promise<string> {
  const s = shell(`${script}\njobs -p | xargs -r kill\nwait || true`);
  const code = await Promise.race([s.exited, sleep(timeoutMs).then(() => 'timeout' as const)]);
  if (code === 'timeout') process.kill(-s.pid, 'SIGKILL');
  assert.equal(code, 0, `block exited ${String(code)}:\n${s.output().slice(-4000)}`);
  return s.output();
}

/** Processes whose working directory is the test's directory (the blocks' background jobs). */
function processesInDir(): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readlinkSync(`/proc/${p}/cwd`) === dir;
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function curvesTotal(): Promise<Map<string, number>> {
  const { stdout } = await promisify(execFile)('npx', ['thaw', 'curves', '--json'], { cwd: dir, env });
  const parsed = JSON.parse(stdout) as { curves: { side: string; n: number }[] };
  const bySide = new Map<string, number>();
  for (const c of parsed.curves) bySide.set(c.side, (bySide.get(c.side) ?? 0) + c.n);
  return bySide;
}

let background: Shell | undefined;

before(async () => {
  // The bin runs the compiled CLI: build it from this tree (as `npm install` does through `prepare`).
  await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, timeout: 240_000 });
  // The built package's public API resolves by name (package.json "exports").
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', "import('thaw').then((m) => console.log(typeof m.AdaptationWorker))"], { cwd: ROOT });
  assert.equal(stdout.trim(), 'function');
  mkdirSync(join(dir, 'node_modules/.bin'), { recursive: true });
  symlinkSync(join(ROOT, 'bin/thaw.mjs'), join(dir, 'node_modules/.bin/thaw'));
  symlinkSync(join(ROOT, 'scripts'), join(dir, 'scripts'));
  await deleteTopics({ brokers: [KAFKA] }, DEFAULT_TOPICS);
});

after(async () => {
  if (background !== undefined) {
    try {
      process.kill(-background.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const pid of processesInDir()) process.kill(pid, 'SIGKILL');
  await deleteTopics({ brokers: [KAFKA] }, DEFAULT_TOPICS);
  rmSync(dir, { recursive: true, force: true });
});

void test('README blocks as written: production quick start, replay, serving', { timeout: 900_000 }, async () => {
  // 1. The quick start. Its foreground commands run to the end; the workers and the online trainer
  //    stay in the background, as in a user's shell.
  const quickStart = blockWith('npx thaw produce');
  background = shell(`${quickStart}\necho THAW_README_FOREGROUND_DONE\nwait`);
  const startedBy = Date.now() + 300_000;
  while (!background.output().includes('THAW_README_FOREGROUND_DONE')) {
    const code = await Promise.race([background.exited, sleep(500).then(() => undefined)]);
    assert.ok(code === undefined, `the quick start exited ${String(code)} before its end:\n${background.output().slice(-4000)}`);
    assert.ok(Date.now() < startedBy, `the quick start did not finish in 5 min:\n${background.output().slice(-4000)}`);
  }
  assert.match(background.output(), /no predictions logged yet|bucket/, 'thaw curves printed a curve or said none is logged yet');

  // Both workers score the stream: wait for predictions of both sides.
  let bySide = new Map<string, number>();
  const scoredBy = Date.now() + 300_000;
  while (!((bySide.get('item') ?? 0) >= 100_000 && (bySide.get('user') ?? 0) >= 100_000)) {
    assert.ok(!background.output().includes('"level":"error"'), `a background job failed:\n${background.output().slice(-4000)}`);
    assert.ok(Date.now() < scoredBy, `workers did not score the stream: ${JSON.stringify([...bySide])}\n${background.output().slice(-4000)}`);
    await sleep(2000);
    bySide = await curvesTotal();
  }

  // 2. Replay into a namespace of its own, compare, promote, drop.
  const replayed = await runBlock(blockWith('npx thaw replay'), 300_000);
  assert.match(replayed, /replayed [1-9][\d,]* events/, replayed);

  // 3. Serving, with the workers still running.
  const served = await runBlock(blockWith('npx thaw serve --port 8080'), 120_000);
  const lastJson = served
    .split('\n')
    .filter((l) => l.startsWith('{"requestId"'))
    .pop();
  assert.ok(lastJson !== undefined, `curl printed a score response:\n${served.slice(-3000)}`);
  const response = JSON.parse(lastJson) as { scores: { id: string; score: number; source: string }[] };
  assert.deepStrictEqual(
    response.scores.map((s) => s.id),
    ['i7', 'brand-new-item'],
  );
  assert.ok(response.scores.every((s) => s.score > 0 && s.score < 1));

  // 4. Stop the background jobs as a user would (SIGTERM): they drain and exit, logging no error.
  process.kill(-background.pid, 'SIGTERM');
  const stoppedBy = Date.now() + 90_000;
  while (processesInDir().length > 0) {
    assert.ok(Date.now() < stoppedBy, `still running 90 s after SIGTERM: ${processesInDir().join(' ')}`);
    await sleep(500);
  }
  const errors = background
    .output()
    .split('\n')
    .filter((l) => l.includes('"level":"error"'));
  assert.deepStrictEqual(errors, []);
});
