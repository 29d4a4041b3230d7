/**
 * Which TensorFlow.js backends this host can measure. The native bindings are optional
 * dependencies that are often absent (their install downloads libtensorflow); presence is checked
 * by resolving the package, the same packages models/backend.ts imports, without loading them.
 */
import { createRequire } from 'node:module';

export interface BackendRow {
  /** The backend name models/backend.ts reports. */
  backend: 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
  pkg: string;
  installed: boolean;
}

function resolvable(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

/** The four backends in models/backend.ts's order of preference, each with whether its package is here. */
export function detectBackends(): BackendRow[] {
  return [
    { backend: 'tensorflow-gpu', pkg: '@tensorflow/tfjs-node-gpu', installed: resolvable('@tensorflow/tfjs-node-gpu') },
    { backend: 'tensorflow', pkg: '@tensorflow/tfjs-node', installed: resolvable('@tensorflow/tfjs-node') },
    { backend: 'wasm', pkg: '@tensorflow/tfjs-backend-wasm', installed: resolvable('@tensorflow/tfjs-backend-wasm') },
    { backend: 'cpu', pkg: '@tensorflow/tfjs', installed: resolvable('@tensorflow/tfjs') },
  ];
}
