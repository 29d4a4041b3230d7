/**
 * Private secured instances of Kafka (SASL_SSL, SCRAM-SHA-512), Redis (TLS only, an ACL user, the
 * default user off) and ClickHouse (password users), started with scripts/services.sh
 * (services.d/secure.sh) on free ports in a directory of their own, and stopped by `down()`. The
 * shared plain services are not touched.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '../../../lib/free-port.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../../scripts/services.sh', import.meta.url));
const NAMES = ['kafka-secure', 'redis-secure', 'clickhouse-secure'] as const;

/** A password services.sh accepts ([A-Za-z0-9._@%+-]); `@` and `%` make the URL encoding matter. */
function password(tag: string): string {
  return `${tag}-${randomBytes(9)
    .toString('base64url')
    .replace(/[^A-Za-z0-9]/g, 'x')}@%1`;
}

export class SecureServices {
  readonly user = 'thaw';
  readonly kafkaPassword = password('Kafka');
  readonly redisPassword = password('Redis');
  readonly clickhousePassword = password('Click');

  private constructor(
    readonly dir: string,
    readonly kafkaPort: number,
    readonly kafkaControllerPort: number,
    readonly redisPort: number,
    readonly clickhouseHttpPort: number,
    readonly clickhouseTcpPort: number,
  ) {}

  /** The CA that signs every instance's certificate (PEM). */
  get caFile(): string {
    return join(this.dir, 'secure-tls', 'ca.crt');
  }

  get kafka(): string {
    return `127.0.0.1:${this.kafkaPort}`;
  }

  /** `rediss://thaw@host:port`: the user in the URL, the password apart (THAW_REDIS_PASSWORD). */
  get redisUrl(): string {
    return `rediss://${this.user}@127.0.0.1:${this.redisPort}`;
  }

  get clickhouseUrl(): string {
    return `http://127.0.0.1:${this.clickhouseHttpPort}`;
  }

  /** The environment that points `thaw` at these instances, as docs/security.md tells users. */
  thawEnv(): Record<string, string> {
    return {
      THAW_KAFKA: this.kafka,
      THAW_KAFKA_TLS_CA_FILE: this.caFile,
      THAW_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      THAW_KAFKA_SASL_USERNAME: this.user,
      THAW_KAFKA_SASL_PASSWORD: this.kafkaPassword,
      THAW_REDIS_URL: this.redisUrl,
      THAW_REDIS_TLS_CA_FILE: this.caFile,
      THAW_REDIS_PASSWORD: this.redisPassword,
      THAW_CLICKHOUSE_URL: this.clickhouseUrl,
      THAW_CLICKHOUSE_USER: this.user,
      THAW_CLICKHOUSE_PASSWORD: this.clickhousePassword,
    };
  }

  static async up(): Promise<SecureServices> {
    const dir = mkdtempSync(join(tmpdir(), 'thaw-secure-svc-'));
    const s = new SecureServices(dir, await freePort(), await freePort(), await freePort(), await freePort(), await freePort());
    try {
      await s.sh('up');
    } catch (err) {
      await s.down();
      throw err;
    }
    return s;
  }

  /** `scripts/services.sh <cmd> kafka-secure redis-secure clickhouse-secure` against these instances. */
  async sh(cmd: 'up' | 'down' | 'env' | 'env-secure'): Promise<string> {
    const { stdout } = await run('bash', [SCRIPT, cmd, ...(cmd === 'up' || cmd === 'down' ? NAMES : [])], {
      env: {
        ...process.env,
        THAW_SERVICES_DIR: this.dir,
        THAW_SECURE_KAFKA_PORT: String(this.kafkaPort),
        THAW_SECURE_KAFKA_CONTROLLER_PORT: String(this.kafkaControllerPort),
        THAW_SECURE_REDIS_PORT: String(this.redisPort),
        THAW_SECURE_CLICKHOUSE_HTTP_PORT: String(this.clickhouseHttpPort),
        THAW_SECURE_CLICKHOUSE_TCP_PORT: String(this.clickhouseTcpPort),
        THAW_SECURE_USER: this.user,
        THAW_SECURE_KAFKA_PASSWORD: this.kafkaPassword,
        THAW_SECURE_REDIS_PASSWORD: this.redisPassword,
        THAW_SECURE_CLICKHOUSE_PASSWORD: this.clickhousePassword,
      },
      timeout: 180_000,
    });
    return stdout;
  }

  /** A query over HTTP as the password user. */
  async chQuery(sql: string): Promise<string> {
    const res = await fetch(this.clickhouseUrl, {
      method: 'POST',
      body: sql,
      headers: { Authorization: `Basic ${Buffer.from(`${this.user}:${this.clickhousePassword}`).toString('base64')}` },
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`clickhouse ${res.status}: ${text.slice(0, 300)}`);
    return text.trim();
  }

  async down(): Promise<void> {
    try {
      await this.sh('down');
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
