/**
 * A Python with `vowpalwabbit` for the peer benchmark, installed on first use so `npm run bench`
 * works on a fresh machine: a venv under `.thaw/venv-bench` from bench/requirements-peer.txt, or,
 * where venvs cannot be made (no ensurepip), `pip install --user`. Thaw itself never imports Python.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ThawError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';

const run = promisify(execFile);

/** Options of `ensureVwPython`. */
export interface PythonEnvOptions {
  /** Repository root (holds `bench/requirements-peer.txt` and `.thaw/`). */
  root: string;
  /** Interpreter that creates the venv. @default process.env.THAW_PYTHON ?? 'python3' */
  python?: string;
  logger: Logger;
}

async function hasVw(python: string): Promise<boolean> {
  try {
    await run(python, ['-c', 'import vowpalwabbit'], { timeout: 60_000 });
    return true;
  } catch {
    return false;
  }
}

/** Path of a Python interpreter that can `import vowpalwabbit`, installing it if needed. */
export async function ensureVwPython(opts: PythonEnvOptions): Promise<string> {
  const base = opts.python ?? process.env.THAW_PYTHON ?? 'python3';
  const venv = join(opts.root, '.thaw', 'venv-bench');
  const venvPython = join(venv, 'bin', 'python');
  const requirements = join(opts.root, 'bench', 'requirements-peer.txt');
  if (existsSync(venvPython) && (await hasVw(venvPython))) return venvPython;
  if (await hasVw(base)) return base;
  const pipTimeout = 15 * 60_000; // a cold wheel download on a slow link
  try {
    opts.logger.info('installing Vowpal Wabbit for the peer benchmark', { venv, requirements });
    if (!existsSync(venvPython)) await run(base, ['-m', 'venv', venv], { timeout: 120_000 });
    await run(venvPython, ['-m', 'pip', 'install', '--quiet', '-r', requirements], { timeout: pipTimeout });
    if (await hasVw(venvPython)) return venvPython;
  } catch (err) {
    opts.logger.warn('venv install failed; trying pip install --user', { error: err });
  }
  try {
    await run(base, ['-m', 'pip', 'install', '--quiet', '--user', '-r', requirements], { timeout: pipTimeout });
  } catch (err) {
    throw new ThawError('USAGE', `cannot install vowpalwabbit with ${base} (venv ${venv}, then pip --user); install it by hand: ${base} -m pip install -r ${requirements}`, { cause: err });
  }
  if (await hasVw(base)) return base;
  throw new ThawError('USAGE', `vowpalwabbit installed with ${base} --user but still not importable`);
}
