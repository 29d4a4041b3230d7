/** Small fixtures of the CLI process tests: a release to run, a throwaway Redis, free ports. */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReleaseStore } from '../../../model-store/releases.js';
import { FactorizationMachine } from '../../../models/fm.js';
import { bundleFm } from '../../../models/onnx/bundle.js';
import { freePort } from '../../../lib/free-port.js';

/** Publishes and promotes an untrained FM as the current `fm` release under `root`; returns its version. */
export async function publishUntrainedFm(root: string): Promise<string> {
  const store = new ReleaseStore({ root });
  const b = bundleFm(FactorizationMachine.create({ buckets: 4096, k: 4, seed: 1 }));
  const m = await store.publish({ model: 'fm', parent: null, architecture: b.architecture, files: b.files });
  await store.promote('fm', m.version);
  return m.version;
}

/** A TCP port nothing listens on (just released by the OS). */

/** A throwaway redis-server with a password, on a free port, no persistence. Stop it with `stop()`. */
export class PasswordRedis {
  private constructor(
    readonly port: number,
    private readonly child: ChildProcess,
  ) {}

  static async start(password: string): Promise<PasswordRedis> {
    const bin = execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim();
    const port = await freePort();
    const child = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', password, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const r = new PasswordRedis(port, child);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const out = execFileSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        if (/NOAUTH|PONG/.test(out)) return r;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await r.stop();
        throw new Error(`redis-server did not start on ${port}`);
      }
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    await exited;
  }
}
