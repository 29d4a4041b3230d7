/**
 * The shared FM as a release in a ReleaseStore: one file `fm.bin` (FactorizationMachine.toBuffer)
 * and an architecture record the loader checks. Shared by `thaw train fm` (publish), `thaw run`
 * and `thaw replay` (load the current release).
 */
import { ThawError } from '../lib/errors.js';
import { FactorizationMachine } from '../models/fm.js';
import { ReleaseStore, type ReleaseManifest } from '../model-store/releases.js';

export const FM_FILE = 'fm.bin';

export interface FmArchitecture {
  type: 'fm';
  k: number;
  buckets: number;
  side: string;
}

/** Publishes `fm` as a new release of `model`; promotes it unless told not to. */
export async function publishFm(
  store: ReleaseStore,
  model: string,
  fm: FactorizationMachine,
  opts: { metrics?: Record<string, number>; promote?: boolean } = {},
): Promise<ReleaseManifest> {
  const parent = (await store.current(model)) ?? null;
  const architecture: FmArchitecture = { type: 'fm', k: fm.k, buckets: fm.buckets, side: fm.side };
  const manifest = await store.publish({ model, parent, architecture, metrics: opts.metrics ?? {}, files: { [FM_FILE]: fm.toBuffer() } });
  if (opts.promote !== false) await store.promote(model, manifest.version);
  return manifest;
}

/**
 * Loads the current release of `model`. The FM's release id becomes `<model>/<version>`, which
 * every prediction row records, so curves can be split by release.
 */
export async function loadCurrentFm(root: string, model: string): Promise<{ fm: FactorizationMachine; manifest: ReleaseManifest }> {
  const store = new ReleaseStore({ root });
  const version = await store.current(model);
  if (version === undefined) {
    throw new ThawError('RELEASE_NOT_FOUND', `no current release of model "${model}" in ${root}: run \`thaw train fm --release-dir ${root}\` first`);
  }
  const { manifest, files } = await store.load(model, version);
  const arch = manifest.architecture as Partial<FmArchitecture> | null;
  const buf = files[FM_FILE];
  if (arch?.type !== 'fm' || buf === undefined) {
    throw new ThawError('RELEASE_INCOMPATIBLE', `release ${model}/${version} is not an FM release (architecture ${JSON.stringify(arch?.type ?? null)})`);
  }
  const fm = FactorizationMachine.fromBuffer(buf);
  fm.release = `${model}/${version}`;
  return { fm, manifest };
}
