/**
 * A private 3-node KRaft Kafka cluster (scripts/services.sh `kafka-cluster`, scripts/services.d/
 * kafka-cluster.sh) on free ports in a directory of its own, for the broker-failover drill
 * (test/integration/streams/kafka-cluster-kill.test.ts) and the failover bench. Stopping or killing
 * its nodes never disturbs the shared single broker other tests use.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { KafkaConnection } from '../../streams/kafka.js';
import { freePort } from '../../lib/free-port.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/services.sh', import.meta.url));

/** A port nothing listens on now (the OS picks it). */

export class KafkaCluster {
  private constructor(
    readonly dir: string,
    readonly ports: readonly number[],
    private readonly controllerPorts: readonly number[],
  ) {}

  /** Node ids (1, 2, 3), as in the brokers' metadata. */
  readonly nodes: readonly number[] = [1, 2, 3];

  get kafka(): KafkaConnection {
    return { brokers: this.ports.map((p) => `127.0.0.1:${p}`) };
  }

  /** Starts the three nodes on free ports and waits until each serves. */
  static async up(): Promise<KafkaCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'thaw-kafka-cluster-'));
    const ports: number[] = [];
    const controllerPorts: number[] = [];
    for (let i = 0; i < 3; i++) {
      ports.push(await freePort());
      controllerPorts.push(await freePort());
    }
    const c = new KafkaCluster(dir, ports, controllerPorts);
    try {
      await c.sh('up');
    } catch (err) {
      await c.down();
      throw err;
    }
    return c;
  }

  /** Starts the nodes that are down (after a kill) and waits until all three serve. */
  async restartDead(): Promise<void> {
    await this.sh('up');
  }

  /** The JVM pid of node `id`. */
  pidOf(id: number): number {
    return Number(readFileSync(join(this.dir, 'kafka-cluster', `node${id}`, 'kafka.pid'), 'utf8').trim());
  }

  /** `kill -9` of node `id`; resolves once the process is gone. */
  async kill9(id: number): Promise<void> {
    const pid = this.pidOf(id);
    process.kill(pid, 'SIGKILL');
    for (;;) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Kills every node and deletes the directory. Not a graceful stop: the data is thrown away, and
   * brokers stopped together wait for a controller quorum that is leaving too (up to the stop grace).
   */
  async down(): Promise<void> {
    try {
      for (const id of this.nodes) await this.kill9(id).catch(() => undefined);
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  private async sh(cmd: 'up' | 'down'): Promise<void> {
    await run('bash', [SCRIPT, cmd, 'kafka-cluster'], {
      env: {
        ...process.env,
        THAW_SERVICES_DIR: this.dir,
        THAW_KAFKA_CLUSTER_PORTS: this.ports.join(','),
        THAW_KAFKA_CLUSTER_CONTROLLER_PORTS: this.controllerPorts.join(','),
      },
      timeout: 180_000,
    });
  }
}
