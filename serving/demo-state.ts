/**
 * What `thaw demo` leaves behind for `thaw serve --demo`, so the scoring API runs with no services.
 * Under the demo's `--out` directory (default `.thaw/demo`):
 *
 *   releases/       a release directory (model-store/releases.ts, the format every worker and
 *                   `thaw serve` read): the FM family's LAST release of the replay (the online
 *                   learner's newest, or the history's when it never published), promoted
 *   states.thsn     the entity states the demo's FM workers ended with: `fm-adagrad` of both sides
 *                   and their safeguard states (`fm-adagrad.sg`, id `p0`), in the MemoryEntityStore
 *                   snapshot format (little-endian, magic `THSN`, version 1, one record per state:
 *                   namespace, side, adapter, entity id, the state-codec.ts encoding;
 *                   model-store/memory-store.ts documents it byte by byte)
 *   serving.json    `{ "format": "thaw-demo-serving", "version": 1, "model", "release", "namespace",
 *                   "releaseDir", "states", "createdAtMs" }`: what the two files are and the namespace
 *                   the states were written under
 *
 * `thaw serve --demo` reads them into a MapStateSource keyed exactly as Redis would be, so the
 * pipeline runs unchanged.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ThawError } from '../lib/errors.js';
import { entityKey, scopeKeyPrefix } from '../model-store/keys.js';
import { MemoryEntityStore } from '../model-store/memory-store.js';
import { ReleaseStore, type LoadedRelease } from '../model-store/releases.js';
import { encodeState } from '../model-store/state-codec.js';
import { SERVED_ADAPTER } from './release.js';
import { safeguardSegment } from '../consumers/state-scopes.js';

export const DEMO_SERVING_FILE = 'serving.json';
export const DEMO_SERVING_FORMAT = 'thaw-demo-serving';
export const DEMO_SERVING_VERSION = 1;

export interface DemoServingManifest {
  format: typeof DEMO_SERVING_FORMAT;
  version: number;
  /** Model name of the release in `releaseDir`. */
  model: string;
  /** The release promoted there (`<model>/<version>`). */
  release: string;
  /** Namespace the states were written under. */
  namespace: string;
  /** Release directory, relative to the manifest's directory. */
  releaseDir: string;
  /** States snapshot, relative to the manifest's directory. */
  states: string;
  createdAtMs: number;
}

/** Writes the release, the states snapshot and serving.json under `out` (replacing an earlier demo's). */
export async function writeDemoServing(out: string, opts: { store: MemoryEntityStore; release: LoadedRelease; namespace: string }): Promise<DemoServingManifest> {
  const manifest: DemoServingManifest = {
    format: DEMO_SERVING_FORMAT,
    version: DEMO_SERVING_VERSION,
    model: opts.release.manifest.model,
    release: `${opts.release.manifest.model}/${opts.release.manifest.version}`,
    namespace: opts.namespace,
    releaseDir: 'releases',
    states: 'states.thsn',
    createdAtMs: Date.now(),
  };
  await mkdir(out, { recursive: true });
  const releaseRoot = join(out, manifest.releaseDir);
  await rm(releaseRoot, { recursive: true, force: true });
  const releases = new ReleaseStore({ root: releaseRoot });
  const m = opts.release.manifest;
  const published = await releases.publish({ model: m.model, version: m.version, parent: null, architecture: m.architecture, metrics: m.metrics, files: opts.release.files });
  await releases.promote(published.model, published.version);
  const adapters = new Set([SERVED_ADAPTER, safeguardSegment(SERVED_ADAPTER)]);
  await opts.store.saveSnapshot(join(out, manifest.states), (scope) => scope.namespace === opts.namespace && adapters.has(scope.adapter));
  await writeFile(join(out, DEMO_SERVING_FILE), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

/** What `thaw serve --demo` serves: the demo's release directory and its states, keyed as Redis keys under `keyPrefix`. */
export interface DemoServing {
  manifest: DemoServingManifest;
  releases: ReleaseStore;
  values: Map<string, Buffer>;
}

/** Reads what `writeDemoServing` wrote; throws USAGE when there is no demo output in `out`. */
export async function loadDemoServing(out: string, keyPrefix: string): Promise<DemoServing> {
  let text: string;
  try {
    text = await readFile(join(out, DEMO_SERVING_FILE), 'utf8');
  } catch (err) {
    throw new ThawError('USAGE', `no demo output in ${out} (${DEMO_SERVING_FILE} missing): run thaw demo --out ${out} first`, { cause: err });
  }
  const manifest = JSON.parse(text) as DemoServingManifest;
  if (manifest.format !== DEMO_SERVING_FORMAT || manifest.version !== DEMO_SERVING_VERSION) {
    throw new ThawError(
      'DATA_FORMAT',
      `${join(out, DEMO_SERVING_FILE)}: expected ${DEMO_SERVING_FORMAT} version ${DEMO_SERVING_VERSION}, got ${String(manifest.format)} version ${String(manifest.version)}`,
    );
  }
  const store = await MemoryEntityStore.loadSnapshot(join(out, manifest.states));
  const values = new Map<string, Buffer>();
  for (const { scope, entityId, state } of store.entries()) values.set(entityKey(scopeKeyPrefix(keyPrefix, scope), entityId), encodeState(state));
  return { manifest, releases: new ReleaseStore({ root: join(out, manifest.releaseDir) }), values };
}
