/**
 * TensorFlow.js backend chosen at run time. Native bindings (`@tensorflow/tfjs-node-gpu`, then
 * `@tensorflow/tfjs-node`) are optional dependencies whose install downloads libtensorflow, which
 * fails on many hosts, so they are imported dynamically and skipped when absent. Next is the wasm
 * backend (SIMD, one thread in Node, 3–6× the cpu backend), then the pure-JS cpu backend, which is
 * also the deterministic one that tests pin.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ThawError } from '../lib/errors.js';
import { silentLogger, type Logger } from '../lib/log.js';

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendPreference = 'auto' | 'native' | 'wasm' | 'cpu';

let chosen: BackendName | undefined;

async function tryImport(name: string): Promise<boolean> {
  try {
    await import(name);
    return true;
  } catch {
    return false;
  }
}

async function tryWasm(): Promise<boolean> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // In Node the .wasm files are not fetched relative to a page: point at the installed package.
    const require = createRequire(import.meta.url);
    const dir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
    wasm.setWasmPaths(path.join(dir, 'dist') + path.sep);
    return await tf.setBackend('wasm');
  } catch {
    return false;
  }
}

/**
 * Selects and initialises a backend once per process; later calls return the first choice.
 * @param preference 'auto' tries native GPU, native CPU, wasm, cpu in that order. @default 'auto'
 */
export async function initBackend(preference: BackendPreference = 'auto', logger: Logger = silentLogger): Promise<BackendName> {
  if (chosen !== undefined) return chosen;
  const env = process.env.THAW_TF_BACKEND as BackendPreference | undefined;
  const pref = env ?? preference;
  let name: BackendName | undefined;
  if (pref === 'auto' || pref === 'native') {
    if (await tryImport('@tensorflow/tfjs-node-gpu')) name = 'tensorflow-gpu';
    else if (await tryImport('@tensorflow/tfjs-node')) name = 'tensorflow';
    if (name !== undefined && !(await tf.setBackend('tensorflow'))) name = undefined;
  }
  if (name === undefined && (pref === 'auto' || pref === 'native' || pref === 'wasm')) {
    if (await tryWasm()) name = 'wasm';
  }
  if (name === undefined) {
    if (!(await tf.setBackend('cpu'))) throw new ThawError('MODEL_ERROR', 'no TensorFlow.js backend could be initialised');
    name = 'cpu';
  }
  await tf.ready();
  chosen = name;
  logger.info('tensorflow backend selected', { backend: name, preference: pref });
  return name;
}

/** The backend in use, or undefined before `initBackend`. */
export function currentBackend(): BackendName | undefined {
  return chosen;
}
