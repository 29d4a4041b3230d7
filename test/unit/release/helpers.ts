/** Shared set-up of the release tests: temp release dirs, FM files, captured CLI output. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../../cli/commands/release.js';
import { FactorizationMachine } from '../../../models/fm.js';

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'thaw-release-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A small FM with seed-dependent parameters, written as an FM file; returns the model and path. */
export async function fmFile(dir: string, seed: number, opts: { k?: number } = {}): Promise<{ fm: FactorizationMachine; path: string }> {
  const fm = FactorizationMachine.create({ buckets: 256, k: opts.k ?? 4, initStd: 0.2, seed });
  for (let i = 0; i < fm.w.length; i++) fm.w[i] = Math.sin(seed * 1000 + i) * 0.3;
  fm.w0 = seed / 10;
  fm.priors.item.vector.fill(0.05 * seed);
  fm.priors.user.vector.fill(-0.03 * seed);
  const path = join(dir, `fm-${seed}-${fm.k}.bin`);
  await writeFile(path, fm.toBuffer());
  return { fm, path };
}

/** Runs `thaw release …` capturing stdout and stderr. */
export async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err };
}

/** The version printed by `publish`. */
export function publishedVersion(out: string): string {
  const m = /^published [^/]+\/(\S+)$/m.exec(out);
  if (m === null) throw new Error(`no published version in ${JSON.stringify(out)}`);
  return m[1]!;
}
