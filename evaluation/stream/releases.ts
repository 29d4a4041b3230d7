/**
 * The releases a stream evaluation starts from: trained on the history (the stream's first events)
 * by the trainers `thaw train` runs, or the current releases of a release directory.
 */
import { ThawError } from '../../lib/errors.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import { ReleaseStore, type LoadedRelease } from '../../model-store/releases.js';
import { bundleFm, type Bundle } from '../../models/onnx/bundle.js';
import type { BiasFilterPrior } from '../../models/meta-state.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { trainFromEvents, type EventTrainerOptions } from '../../trainers/event-trainer.js';
import { trainFm } from '../../trainers/fm-trainer.js';
import type { Family } from './families.js';

/** A release of one family, as a worker would load it. */
export interface FamilyRelease {
  family: Family;
  release: LoadedRelease;
  /** Offline training time, seconds (0 when loaded). */
  trainSec: number;
  /** What the trainer reported (hot entities, chosen bias filter, …), for the output. */
  info: Record<string, unknown>;
  /** The FM family's fitted bias filter prior (what the meta trainers would fit on the same history). */
  biasFilter?: BiasFilterPrior;
}

/** A bundle as a loaded release named `<model>/<version>` (rows record that id). */
export function inMemoryRelease(model: string, version: string, bundle: Bundle, parent: string | null = null): LoadedRelease {
  return { manifest: { model, version, parent, createdAtMs: Date.now(), architecture: bundle.architecture, metrics: {}, files: {} }, files: bundle.files };
}

/** Options of a meta-learned family's trainer beside the defaults (e.g. the demo's shorter training). */
export type MetaTrainOverrides = Partial<Omit<EventTrainerOptions, 'kind' | 'events' | 'logger'>>;

/**
 * Trains `family`'s release on `history` (the trainers' defaults, `seed` for all, `meta` over them).
 * `biasFilter`: the bias filter's prior a meta release records, when already fitted on this history
 * with this seed (by an earlier meta family: the same fit); else the meta trainer fits it. The FM's
 * own fit is not reused: it also chooses a session part and a cross term the meta models lack.
 */
export async function trainFamily(
  family: Family,
  history: readonly LabelledEvent[],
  opts: { seed: number; logger?: Logger; meta?: MetaTrainOverrides; biasFilter?: BiasFilterPrior },
): Promise<FamilyRelease> {
  const logger = opts.logger ?? silentLogger;
  const t0 = performance.now();
  if (family === 'fm') {
    const res = await trainFm(history, { seed: opts.seed, release: 'fm/history' });
    const bundle = bundleFm(res.model, { entityStatePolicy: 'keep' });
    return {
      family,
      release: inMemoryRelease('fm', 'history', bundle),
      trainSec: (performance.now() - t0) / 1000,
      info: {
        hotUsers: res.hotEntities.user,
        hotItems: res.hotEntities.item,
        crossBuckets: res.model.crossBuckets,
        ...(res.crossFit === undefined ? {} : { crossFitLogLoss: res.crossFit }),
        biasFilter: res.biasFit === undefined ? 'given' : { user: res.biasFit.user, item: res.biasFit.item },
      },
    };
  }
  const res = await trainFromEvents({ kind: family, events: history, seed: opts.seed, logger, ...opts.meta, ...(opts.biasFilter === undefined ? {} : { biasFilter: opts.biasFilter }) });
  return {
    family,
    release: inMemoryRelease(family, 'history', res.bundle),
    trainSec: (performance.now() - t0) / 1000,
    info: { hotEntities: res.stats.entities, rows: res.stats.rows, biasFilter: res.biasFilter, biasFilterFrom: res.biasFit === undefined ? 'an earlier meta family' : 'fitted' },
    biasFilter: res.biasFilter,
  };
}

/** The current release of model `family` in a release directory. */
export async function loadFamily(family: Family, releaseDir: string): Promise<FamilyRelease> {
  const store = new ReleaseStore({ root: releaseDir });
  const version = await store.current(family);
  if (version === undefined)
    throw new ThawError('RELEASE_NOT_FOUND', `no current release of model "${family}" in ${releaseDir}: train it (thaw train ${family} --release-dir ${releaseDir}) or leave --release-dir out`);
  return { family, release: await store.load(family, version), trainSec: 0, info: { version } };
}
