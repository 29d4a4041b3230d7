/**
 * Issue 11 ("Fail fast"), for the long-running commands other than `thaw run`: `thaw join`,
 * `thaw rekey`, `thaw replay` and `thaw train --online --redis` check their services at start as the
 * worker does (cli/preflight.ts). `thaw join` with a wrong Redis password used to report "join
 * running" and retry every pending-impression write for ever; a Kafka that is down made `rekey`
 * and `join` fail with kafkajs' bare "admin connect failed", naming no service.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deleteTopics, ensureTopics } from '../../../streams/admin.js';
import { cliHarness, KAFKA, type CliRun } from './cli-harness.js';
import { freePort } from '../../../lib/free-port.js';
import { PasswordRedis, publishUntrainedFm } from './fixtures.js';

const h = cliHarness('ffcmd');
const PASSWORD = 'Cmd Secret@31';
const SECRETS = [PASSWORD, encodeURIComponent(PASSWORD), 'Secret@31', 'wrong-Pass12'];
const DEADLINE_MS = 30_000;

let redis: PasswordRedis;
let closedPort: number;

async function run(args: string[]): Promise<CliRun & { ms: number }> {
  const t0 = Date.now();
  const { child, done } = h.start([...args, '--log-level', 'info']);
  // A command that does not stop by itself fails the test instead of hanging it.
  const killer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS + 10_000);
  const r = await done;
  clearTimeout(killer);
  for (const s of SECRETS) assert.ok(!`${r.stdout}\n${r.stderr}`.includes(s), `output leaks "${s}":\n${r.stderr.slice(0, 3000)}`);
  return { ...r, ms: Date.now() - t0 };
}

function failsFast(r: CliRun & { ms: number }, ...patterns: RegExp[]): void {
  assert.equal(r.code, 1, `exit code (after ${r.ms} ms):\n${r.stderr.slice(-3000)}`);
  assert.ok(r.ms < DEADLINE_MS, `took ${r.ms} ms`);
  for (const p of patterns) assert.match(r.stderr, p);
}

describe('long-running commands fail fast on bad credentials or a service down at start', () => {
  const wrongRedis = (): string => `redis://:wrong-Pass12@127.0.0.1:${redis.port}`;

  before(async () => {
    await publishUntrainedFm(join(h.dir, 'releases'));
    await ensureTopics({ brokers: [KAFKA] }, [{ topic: h.topic, partitions: 1 }]);
    redis = await PasswordRedis.start(PASSWORD);
    closedPort = await freePort();
  });

  after(async () => {
    await redis.stop();
    await deleteTopics({ brokers: [KAFKA] }, [h.topic]).catch(() => undefined);
    rmSync(h.dir, { recursive: true, force: true });
  });

  it('thaw join: wrong Redis password exits 1 naming redis', async () => {
    const r = await run(['join', '--group-id', `g-${h.id}`, '--impressions-topic', `${h.topic}.imp`, '--clicks-topic', `${h.topic}.clk`, '--output-topic', `${h.topic}.out`, '--redis', wrongRedis()]);
    failsFast(r, /redis \(redis:\/\/\*\*\*@127\.0\.0\.1:\d+\)/, /WRONGPASS/, /AUTH_FAILED/);
    assert.doesNotMatch(r.stderr, /"join running"/);
  });

  it('thaw join and thaw rekey: Kafka down exits 1 naming kafka', async () => {
    const kafka = `127.0.0.1:${closedPort}`;
    failsFast(await run(['join', '--kafka', kafka, '--redis', `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${redis.port}`]), /kafka \(127\.0\.0\.1:\d+\)/, /UNAVAILABLE_AT_START/);
    failsFast(await run(['rekey', '--kafka', kafka]), /kafka \(127\.0\.0\.1:\d+\)/, /UNAVAILABLE_AT_START/);
  });

  it('thaw replay: wrong Redis password exits 1 naming redis, before reading the range', async () => {
    const r = await run(['replay', '--namespace', `ff${h.id}`, '--topic', h.topic, '--from', '0', '--to', '10', '--release-dir', join(h.dir, 'releases'), '--redis', wrongRedis()]);
    failsFast(r, /redis \(redis:\/\/\*\*\*@127\.0\.0\.1:\d+\)/, /AUTH_FAILED/);
    assert.doesNotMatch(r.stderr, /"replay range resolved"/);
  });

  it('thaw train --online --redis: wrong Redis password exits 1 naming redis', async () => {
    const r = await run(['train', '--online', '--side', 'item', '--kind', 'fm', '--model', `m${h.id}`, '--release-dir', join(h.dir, 'releases'), '--topic', h.topic, '--redis', wrongRedis()]);
    failsFast(r, /redis \(redis:\/\/\*\*\*@127\.0\.0\.1:\d+\)/, /AUTH_FAILED/);
  });
});
