/**
 * Issue 11, "Secured transports, real": `thaw` as users run it, against private secured instances
 * (scripts/services.d/secure.sh): Kafka on a SASL_SSL listener (SCRAM-SHA-512, a certificate from the
 * test CA), Redis on TLS only with an ACL user (the default user off), ClickHouse with a password
 * user. Everything is configured the way docs/security.md tells users (THAW_* variables, CA files).
 * - produce → run (--until-end) → curves go through all three: every prediction lands in ClickHouse,
 *   the states are in Redis, read back over TLS as the ACL user;
 * - one wrong credential per service, and a CA that signs none of the certificates, each make
 *   `thaw run` exit 1 within 30 s, naming the service and the cause;
 * - no password ever appears in any output.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedis } from '../../../model-store/redis.js';
import { cliHarness, type CliRun } from './cli-harness.js';
import { publishUntrainedFm } from './fixtures.js';
import { SecureServices } from './secure-services.js';

const h = cliHarness('secure');
const EVENTS = 1500;
const DEADLINE_MS = 30_000;
const WRONG = { kafka: 'Wrong-Kafka-Pass81', redis: 'Wrong-Redis-Pass82', clickhouse: 'Wrong-Click-Pass83' };

let svc: SecureServices;
let secrets: string[];
let otherCa: string;

/** `thaw <args>` with the secured environment (plus `env`), asserting that no secret is printed. */
async function thaw(args: string[], env: Record<string, string> = {}): Promise<CliRun & { ms: number }> {
  const t0 = Date.now();
  const { child, done } = h.start(args, { ...svc.thawEnv(), THAW_LOG_LEVEL: 'info', ...env });
  const killer = setTimeout(() => child.kill('SIGKILL'), 100_000);
  const r = await done;
  clearTimeout(killer);
  const out = `${r.stdout}\n${r.stderr}`;
  for (const s of secrets) assert.ok(!out.includes(s), `output leaks a password:\n${r.stderr.slice(-2000)}`);
  return { ...r, ms: Date.now() - t0 };
}

function runArgs(): string[] {
  return ['run', 'item', '--topic', h.topic, '--group-id', `g-${h.id}`, '--metrics-port', '0'];
}

function failsFast(r: CliRun & { ms: number }, ...patterns: RegExp[]): void {
  assert.equal(r.code, 1, `exit code (after ${r.ms} ms):\n${r.stderr.slice(-3000)}`);
  assert.ok(r.ms < DEADLINE_MS, `took ${r.ms} ms`);
  for (const p of patterns) assert.match(r.stderr, p);
}

describe('thaw through secured Kafka, Redis and ClickHouse', () => {
  before(async () => {
    svc = await SecureServices.up();
    secrets = [svc.kafkaPassword, svc.redisPassword, svc.clickhousePassword, encodeURIComponent(svc.redisPassword), ...Object.values(WRONG)];
    await publishUntrainedFm(join(h.dir, 'releases'));
    // A CA of its own, which signs none of the services' certificates.
    const caDir = join(h.dir, 'other-ca');
    mkdirSync(caDir, { recursive: true });
    otherCa = join(caDir, 'ca.crt');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=not the thaw CA', '-keyout', join(caDir, 'ca.key'), '-out', otherCa], { stdio: 'ignore' });
  });

  after(async () => {
    await svc?.down();
    rmSync(h.dir, { recursive: true, force: true });
  });

  it('services.sh prints the secured addresses, user, passwords and CA file', async () => {
    const env = await svc.sh('env');
    assert.match(env, new RegExp(`^THAW_SECURE_KAFKA=127\\.0\\.0\\.1:${svc.kafkaPort}$`, 'm'));
    assert.match(env, new RegExp(`^THAW_SECURE_REDIS_URL=rediss://thaw@127\\.0\\.0\\.1:${svc.redisPort}$`, 'm'));
    assert.ok(env.includes(`THAW_SECURE_CA_FILE=${svc.caFile}\n`));
    assert.ok(env.includes(`THAW_SECURE_KAFKA_PASSWORD=${svc.kafkaPassword}\n`));
    const thawEnv = await svc.sh('env-secure');
    for (const [k, v] of Object.entries(svc.thawEnv())) assert.ok(thawEnv.includes(`${k}=${v}\n`), `env-secure lacks ${k}`);
    assert.match(readFileSync(svc.caFile, 'utf8'), /-----BEGIN CERTIFICATE-----/);
  });

  it('produce, run and curves go through SASL_SSL Kafka, TLS + ACL Redis and password ClickHouse', async () => {
    const produce = await thaw(['produce', '--source', `synthetic:events=${EVENTS},seed=5`, '--topic', h.topic, '--partitions', '1']);
    assert.equal(produce.code, 0, produce.stderr);

    const run = await thaw([...runArgs(), '--until-end']);
    assert.equal(run.code, 0, run.stderr.slice(-3000));
    assert.match(run.stderr, /"worker started"/);

    assert.equal(await svc.chQuery(`SELECT count() FROM thaw.${h.table}`), String(EVENTS));
    const curves = await thaw(['curves', '--namespace', 'live', '--json']);
    assert.equal(curves.code, 0, curves.stderr);
    const parsed = JSON.parse(curves.stdout) as { curves: { n: number }[] };
    assert.equal(
      parsed.curves.reduce((s, c) => s + c.n, 0),
      EVENTS,
    );

    const redis = createRedis({ url: svc.redisUrl, password: svc.redisPassword, tls: { ca: [readFileSync(svc.caFile)] } });
    try {
      assert.equal(await redis.call('ACL', 'WHOAMI'), 'thaw');
      const keys = await redis.keys(`${h.prefix}:live:*`);
      assert.ok(keys.length > 10, `states in Redis: ${keys.length}`);
    } finally {
      redis.disconnect();
    }
  });

  it('train --online reads from SASL_SSL Kafka, announces there and sets the pointer in TLS + ACL Redis', async () => {
    const { child, done } = h.start(
      [
        'train',
        '--online',
        '--side',
        'item',
        '--kind',
        'fm',
        '--release-dir',
        join(h.dir, 'releases'),
        '--model',
        'fm',
        '--sync-every',
        '500',
        '--group-id',
        `o-${h.id}`,
        '--topic',
        h.topic,
        '--announce-kafka',
        '--redis',
        svc.redisUrl,
        '--redis-prefix',
        h.prefix,
        '--log-level',
        'warn',
      ],
      svc.thawEnv(),
    );
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!stdout.includes('"release"') && child.exitCode === null && Date.now() < deadline) await sleep(100);
    child.kill('SIGTERM');
    const r = await done;
    assert.equal(r.code, 0, r.stderr.slice(-3000));
    for (const s of secrets) assert.ok(!`${r.stdout}\n${r.stderr}`.includes(s), 'output leaks a password');
    const last = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { release?: string; events?: number };
    assert.equal(last.events, EVENTS);
    const redis = createRedis({ url: svc.redisUrl, password: svc.redisPassword, tls: { ca: [readFileSync(svc.caFile)] } });
    try {
      assert.equal(await redis.get(`${h.prefix}:release:fm`), last.release);
    } finally {
      redis.disconnect();
    }
  });

  it('a wrong Kafka SASL password: exit 1, naming kafka, SCRAM-SHA-512 and the user', async () => {
    const r = await thaw(runArgs(), { THAW_KAFKA_SASL_PASSWORD: WRONG.kafka });
    // (stderr is JSON lines: the quotes around the user name are escaped)
    failsFast(r, /kafka \(127\.0\.0\.1:\d+\): kafka: SASL authentication failed \(SCRAM-SHA-512 for user \\"thaw\\"\)/, /AUTH_FAILED/);
  });

  it('a wrong Redis ACL password: exit 1, naming redis and WRONGPASS', async () => {
    const r = await thaw(runArgs(), { THAW_REDIS_PASSWORD: WRONG.redis });
    failsFast(r, /redis \(rediss:\/\/\*\*\*@127\.0\.0\.1:\d+\)/, /WRONGPASS/, /AUTH_FAILED/);
  });

  it('a wrong ClickHouse password: exit 1, naming clickhouse', async () => {
    const r = await thaw(runArgs(), { THAW_CLICKHOUSE_PASSWORD: WRONG.clickhouse });
    failsFast(r, /clickhouse \(http:\/\/127\.0\.0\.1:\d+\): clickhouse refused the credentials/, /AUTH_FAILED/);
  });

  it('a CA that signs neither certificate: exit 1, naming kafka and redis and the TLS cause', async () => {
    const r = await thaw(runArgs(), { THAW_KAFKA_TLS_CA_FILE: otherCa, THAW_REDIS_TLS_CA_FILE: otherCa });
    failsFast(r, /kafka: TLS certificate not trusted \(SELF_SIGNED_CERT_IN_CHAIN/, /redis: TLS certificate not trusted \(SELF_SIGNED_CERT_IN_CHAIN/, /check kafka\.tlsCaFile/, /TLS_FAILED/);
  });

  it('a CA file that does not exist: exit 2 naming the key', async () => {
    const r = await thaw(runArgs(), { THAW_KAFKA_TLS_CA_FILE: join(h.dir, 'missing.crt') });
    assert.equal(r.code, 2, r.stderr.slice(-2000));
    assert.match(r.stderr, /"kafka\.tlsCaFile"/);
    assert.match(r.stderr, /ENOENT/);
  });
});
