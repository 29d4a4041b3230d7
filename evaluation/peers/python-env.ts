/**
 * A Python that can `import vowpalwabbit`, for the VW peer. Installed on first use so a fresh machine
 * needs nothing by hand: a venv `<cacheDir>/venv-vw` from requirements-vw.txt (PyPI), or, where venvs
 * cannot be made (no ensurepip, e.g. Debian without python3-venv), `pip install --user`. When both
 * fail the ThawError names the commands to run by hand. Thaw's stream path never imports Python.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ThawError } from '../../lib/errors.js';
import { silentLogger, type Logger } from '../../lib/log.js';

const run = promisify(execFile);

/** Options of `ensureVwPython`. */
export interface PythonEnvOptions {
  /** Directory that holds the venv (`<cacheDir>/venv-vw`); relative paths are from the working directory. @default '.thaw' */
  cacheDir?: string;
  /** Interpreter that creates the venv, and is used as is when it already has vowpalwabbit. @default process.env.THAW_PYTHON ?? 'python3' */
  python?: string;
  /** Time allowed for pip, in ms (a cold wheel download on a slow link). @default 900_000 */
  pipTimeoutMs?: number;
  /** @default silent */
  logger?: Logger;
}

/**
 * A file shipped beside this module (vw_run.py, requirements-vw.txt). tsc copies only .ts, so from
 * dist/evaluation/peers/ look back into the source tree, as schemas/catalog.ts does for .avsc files.
 */
export function peerFile(name: string): string {
  for (const dir of ['./', '../../../evaluation/peers/']) {
    const path = fileURLToPath(new URL(dir + name, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new ThawError('CONFIG_INVALID', `${name} not found beside ${fileURLToPath(import.meta.url)} nor in the source tree`);
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
export async function ensureVwPython(opts: PythonEnvOptions = {}): Promise<string> {
  const base = opts.python ?? process.env.THAW_PYTHON ?? 'python3';
  const logger = opts.logger ?? silentLogger;
  const venv = resolve(opts.cacheDir ?? '.thaw', 'venv-vw');
  const venvPython = join(venv, 'bin', 'python');
  const requirements = peerFile('requirements-vw.txt');
  const pipTimeout = opts.pipTimeoutMs ?? 15 * 60_000;
  if (existsSync(venvPython) && (await hasVw(venvPython))) return venvPython;
  if (await hasVw(base)) return base;
  const byHand = `${base} -m venv ${venv} && ${venvPython} -m pip install -r ${requirements} (Debian: apt-get install python3-venv first), or set THAW_PYTHON to a Python that has it`;
  try {
    logger.info('installing Vowpal Wabbit for the vw peer', { venv, requirements });
    if (!existsSync(venvPython)) await run(base, ['-m', 'venv', venv], { timeout: 120_000 });
    await run(venvPython, ['-m', 'pip', 'install', '--quiet', '-r', requirements], { timeout: pipTimeout });
    if (await hasVw(venvPython)) return venvPython;
  } catch (err) {
    logger.warn('venv install failed; trying pip install --user', { error: err });
  }
  try {
    await run(base, ['-m', 'pip', 'install', '--quiet', '--user', '-r', requirements], { timeout: pipTimeout });
  } catch (err) {
    throw new ThawError('USAGE', `cannot install vowpalwabbit with ${base} (venv ${venv}, then pip --user); install it by hand: ${byHand}`, { cause: err });
  }
  if (await hasVw(base)) return base;
  throw new ThawError('USAGE', `vowpalwabbit installed with ${base} -m pip --user but still not importable; install it by hand: ${byHand}`);
}

/** The installed vowpalwabbit version, e.g. `9.11.9`. */
export async function vwVersion(python: string): Promise<string> {
  const { stdout } = await run(python, ['-c', 'import importlib.metadata as m; print(m.version("vowpalwabbit"))'], { timeout: 60_000 });
  return stdout.trim();
}
