/**
 * Issue 11 ("Fail fast, clear, and safe"), items 1-3, as `thaw run item` processes against the real
 * services and a throwaway password-protected redis-server of this test:
 * - bad Redis credentials (WRONGPASS, NOAUTH, a ClickHouse password refused) and Redis, Kafka or
 *   ClickHouse unreachable at start exit 1 within 30 s, naming the service and the cause (they used
 *   to warn every few seconds for ever);
 * - a malformed Redis URL (bad percent escape, raw space, raw `@`) exits 2 naming `redis.url` (a bad
 *   escape used to hang after `run failed … URI malformed`);
 * - no secret is ever printed: every run's whole stdout and stderr are searched for each password.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { cliHarness, KAFKA, type CliRun } from './cli-harness.js';
import { freePort } from '../../../lib/free-port.js';
import { PasswordRedis, publishUntrainedFm } from './fixtures.js';

const h = cliHarness('failfast');
/** The throwaway Redis' password: a space, '@', ':', '%' and non-ASCII, all of which must be encoded in a URL. */
const PASSWORD = 'Top Secret42@x:%ü';
const ENCODED = encodeURIComponent(PASSWORD);
/** Fragments of every secret used below: none may appear in any output. */
const SECRETS = [PASSWORD, ENCODED, 'Secret42', 'wrong-Pass77', 'Sec%zzret1', 'zzret1', 'Raw Secret99', 'Secret99', 'ss@w0rd', 'w0rd', 'Ch Secret@9', 'Secret@9'];
const DEADLINE_MS = 30_000;

let redis: PasswordRedis;
let closedPort: number;

async function run(args: string[], env: Record<string, string> = {}): Promise<CliRun & { ms: number }> {
  const t0 = Date.now();
  const { child, done } = h.start(['run', 'item', '--topic', h.topic, '--group-id', `g-${h.id}`, '--metrics-port', '0', '--log-level', 'info', ...args], env);
  // A run that does not stop by itself within the deadline fails the test instead of hanging it.
  const killer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS + 10_000);
  const r = await done;
  clearTimeout(killer);
  const out = { ...r, ms: Date.now() - t0 };
  for (const s of SECRETS) assert.ok(!`${r.stdout}\n${r.stderr}`.includes(s), `output leaks "${s}":\n${r.stderr.slice(0, 3000)}`);
  return out;
}

function failsFast(r: CliRun & { ms: number }, code: number, ...patterns: RegExp[]): void {
  assert.equal(r.code, code, `exit code (after ${r.ms} ms):\n${r.stderr.slice(-3000)}`);
  assert.ok(r.ms < DEADLINE_MS, `took ${r.ms} ms`);
  for (const p of patterns) assert.match(r.stderr, p);
}

describe('thaw run fails fast, clearly and safely', () => {
  before(async () => {
    await publishUntrainedFm(join(h.dir, 'releases'));
    await ensureTopics({ brokers: [KAFKA] }, [{ topic: h.topic, partitions: 1 }]);
    redis = await PasswordRedis.start(PASSWORD);
    closedPort = await freePort();
  });

  after(async () => {
    await redis.stop();
    await deleteTopics({ brokers: [KAFKA] }, [h.topic]).catch(() => undefined);
    await h.chQuery(`DROP TABLE IF EXISTS thaw.${h.table}`).catch(() => undefined);
    rmSync(h.dir, { recursive: true, force: true });
  });

  it('wrong Redis password (WRONGPASS): exit 1 naming redis and the cause', async () => {
    const r = await run(['--redis', `redis://:wrong-Pass77@127.0.0.1:${redis.port}`]);
    failsFast(r, 1, /redis \(redis:\/\/\*\*\*@127\.0\.0\.1:\d+\)/, /WRONGPASS/, /AUTH_FAILED/);
  });

  it('missing Redis password (NOAUTH): exit 1', async () => {
    failsFast(await run(['--redis', `redis://127.0.0.1:${redis.port}`]), 1, /redis/, /NOAUTH/, /AUTH_FAILED/);
  });

  it('Redis down at start: exit 1', async () => {
    failsFast(await run(['--redis', `redis://127.0.0.1:${closedPort}`]), 1, /redis \(redis:\/\/127\.0\.0\.1:\d+\)/, /ECONNREFUSED/, /UNAVAILABLE_AT_START/);
  });

  it('Kafka unreachable at start: exit 1', async () => {
    failsFast(await run(['--kafka', `127.0.0.1:${closedPort}`, '--redis', `redis://:${ENCODED}@127.0.0.1:${redis.port}`]), 1, /kafka \(127\.0\.0\.1:\d+\)/, /UNAVAILABLE_AT_START/);
  });

  it('ClickHouse unreachable at start, or refusing the password: exit 1', async () => {
    const good = ['--redis', `redis://:${ENCODED}@127.0.0.1:${redis.port}`];
    failsFast(await run([...good, '--clickhouse', `http://127.0.0.1:${closedPort}`]), 1, /clickhouse \(http:\/\/127\.0\.0\.1:\d+\)/, /ECONNREFUSED/);
    failsFast(await run(good, { THAW_CLICKHOUSE_PASSWORD: 'Ch Secret@9' }), 1, /clickhouse/, /AUTH_FAILED/);
  });

  it('malformed Redis URLs: exit 2 naming redis.url, the value never quoted', async () => {
    for (const url of [`redis://:Sec%zzret1@127.0.0.1:${redis.port}`, `redis://user:Raw Secret99@127.0.0.1:${redis.port}`, `redis://user:pa@ss@w0rd@127.0.0.1:${redis.port}`]) {
      const r = await run(['--redis', url]);
      failsFast(r, 2, /"redis\.url"/, /percent-encode/);
      assert.doesNotMatch(r.stderr, /URI malformed/);
    }
  });

  it('good credentials: starts, prints no secret (config line at info), drains on SIGTERM', async () => {
    const { child, done } = h.start([
      'run',
      'item',
      '--topic',
      h.topic,
      '--group-id',
      `g-${h.id}`,
      '--metrics-port',
      '0',
      '--log-level',
      'info',
      '--redis',
      `redis://:${ENCODED}@127.0.0.1:${redis.port}`,
    ]);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!stderr.includes('"worker started"') && child.exitCode === null && Date.now() < deadline) await sleep(200);
    assert.match(stderr, /"starting worker"/);
    assert.match(stderr, /"worker started"/);
    assert.match(stderr, /"partitions assigned"/, 'assignments are logged at info');
    child.kill('SIGTERM');
    const r = await done;
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    for (const s of SECRETS) assert.ok(!`${r.stdout}\n${r.stderr}`.includes(s), `output leaks "${s}"`);
  });
});
