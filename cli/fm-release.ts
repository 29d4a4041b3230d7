/**
 * The shared FM as a release in a ReleaseStore, in the release bundle format of models/onnx/bundle.ts
 * (weights.bin + model.onnx + fm.bin, architecture with its state layout), so `thaw release`,
 * release watchers and serving read what `thaw train fm` writes. Used by `thaw train fm` (publish)
 * and by `thaw run` / `thaw replay` (load the current release).
 */
import { ThawError } from '../lib/errors.js';
import type { FactorizationMachine } from '../models/fm.js';
import { bundleFm, fmFromRelease } from '../models/onnx/bundle.js';
import { ReleaseStore, type ReleaseManifest } from '../model-store/releases.js';

/** Publishes `fm` as a new release of `model` (parent: the current one); promotes it unless told not to. */
export async function publishFm(store: ReleaseStore, model: string, fm: FactorizationMachine, opts: { metrics?: Record<string, number>; promote?: boolean } = {}): Promise<ReleaseManifest> {
  const parent = (await store.current(model)) ?? null;
  const bundle = bundleFm(fm);
  const manifest = await store.publish({ model, parent, architecture: bundle.architecture, metrics: opts.metrics ?? {}, files: bundle.files });
  if (opts.promote !== false) await store.promote(model, manifest.version);
  return manifest;
}

/**
 * Loads the current release of `model`. The FM's release id is `<model>/<version>`, which every
 * prediction row records, so curves can be split by release.
 */
export async function loadCurrentFm(root: string, model: string): Promise<{ fm: FactorizationMachine; manifest: ReleaseManifest }> {
  const store = new ReleaseStore({ root });
  const version = await store.current(model);
  if (version === undefined) {
    throw new ThawError('RELEASE_NOT_FOUND', `no current release of model "${model}" in ${root}: run \`thaw train fm --release-dir ${root}\` first`);
  }
  const rel = await store.load(model, version);
  return { fm: fmFromRelease(rel), manifest: rel.manifest };
}
