/** The serving bench's child processes: a server under test (bench/serving/server-proc.ts) and one run of the load generator (bench/serving/loadgen.ts). */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { LoadResult, LoadSpec } from './loadgen.js';
import type { ServerSpec, ServerStats } from './server-proc.js';

const ROOT = resolve(import.meta.dirname, '../..');

/** A server process under test, driven over IPC. */
export class ServerProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly address: string,
  ) {}

  static async start(spec: ServerSpec, profileDir: string | undefined, nodeFlags: readonly string[]): Promise<ServerProcess> {
    const execArgv = ['--import', 'tsx', ...nodeFlags, ...(profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir])];
    const child = fork(join(ROOT, 'bench/serving/server-proc.ts'), [JSON.stringify(spec)], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT });
    const address = await new Promise<string>((res, rej) => {
      child.once('message', (m: { type: string; address: string }) => (m.type === 'ready' ? res(m.address) : rej(new Error(`unexpected ${m.type}`))));
      child.once('exit', (code) => rej(new Error(`server ${spec.kind} exited ${code}`)));
    });
    return new ServerProcess(child, address);
  }

  stats(): Promise<ServerStats> {
    return new Promise((res) => {
      this.child.once('message', (m: { type: string; stats: ServerStats }) => res(m.stats));
      this.child.send({ type: 'stats' });
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ type: 'stop' });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** Runs the load generator once in its own process and returns what it measured. */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/serving/loadgen.ts'), JSON.stringify(spec)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? res(JSON.parse(out) as LoadResult) : rej(new Error(`load generator exited ${code}`))));
  });
}
