/**
 * The releases a curves run scores with. Each kind is either reused (a directory holding a current
 * release of model `<kind>`, e.g. what `thaw train emerg --source movielens-100k --release-dir D`
 * wrote) or trained here on the run's history prefix with the same trainers as the CLI
 * (`thaw train fm` → trainFm + publishFm: one two-sided FM; `thaw train <kind> --source` →
 * trainFromEvents) and published into `<releases>/<kind>`, where the next run finds it.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { publishFm } from '../../cli/fm-release.js';
import { ThawError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { initBackend } from '../../models/backend.js';
import { ReleaseStore } from '../../model-store/releases.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { trainFm } from '../../trainers/fm-trainer.js';
import { trainFromEvents } from '../../trainers/event-trainer.js';
import type { ReleaseKind } from './plan.js';

/** A release a worker runs: `dir` is the ReleaseStore root, `model` its model name. */
export interface ReleaseRef {
  kind: ReleaseKind;
  dir: string;
  model: string;
  version: string;
  /** `${model}/${version}`: the `release` column of the prediction rows. */
  id: string;
  /** Time of the last event the release trained on, unix ms (manifest metrics.historyEndMs). */
  historyEndMs: number;
  reused: boolean;
  trainSec: number;
}

export interface PrepareReleasesOptions {
  kinds: readonly ReleaseKind[];
  /** The history prefix of the stream (time-ordered): what releases trained here learn from. */
  history: readonly LabelledEvent[];
  /** Directory of directories `<kind>` to reuse when they hold a current release of model `<kind>`. @default none */
  reuseRoot?: string;
  /** Where releases trained here go (`<root>/<kind>`), and are reused from on the next run. */
  trainRoot: string;
  /** Meta trainers' epoch overrides (tests make them tiny). @default the trainers' defaults */
  metaTrain?: { epochs?: number; metaEpochs?: number; searchEpochs?: number; minEvents?: number };
  /** FM trainer: min events of a hot entity. @default 20 */
  fmMinCount?: number;
  logger: Logger;
}

async function currentRef(kind: ReleaseKind, dir: string, reused: boolean, trainSec: number): Promise<ReleaseRef | undefined> {
  if (!existsSync(dir)) return undefined;
  const store = new ReleaseStore({ root: dir });
  const version = await store.current(kind);
  if (version === undefined) return undefined;
  const rel = await store.load(kind, version);
  const end = rel.manifest.metrics.historyEndMs;
  if (typeof end !== 'number' || !Number.isFinite(end)) {
    throw new ThawError('RELEASE_INCOMPATIBLE', `release ${kind}/${version} in ${dir} records no metrics.historyEndMs: it was not trained for the stream`);
  }
  return { kind, dir, model: kind, version, id: `${kind}/${version}`, historyEndMs: end, reused, trainSec };
}

async function train(kind: ReleaseKind, dir: string, opts: PrepareReleasesOptions): Promise<void> {
  const history = opts.history;
  const last = history[history.length - 1];
  if (last === undefined) throw new ThawError('USAGE', 'no history events to train on');
  const store = new ReleaseStore({ root: dir });
  const common = { historyEvents: history.length, historyEndMs: last.timeMs };
  if (kind === 'fm') {
    // One two-sided release: both sides' hot entities train it, both sides' workers run it.
    const res = await trainFm(history, { seed: 1, minCount: opts.fmMinCount ?? 20 });
    const lastEpoch = res.epochs[res.epochs.length - 1];
    await publishFm(store, kind, res.model, {
      metrics: {
        ...common,
        trainEvents: res.trainEvents,
        hotUsers: res.hotEntities.user,
        hotItems: res.hotEntities.item,
        ...(lastEpoch === undefined ? {} : { auc: lastEpoch.auc, logloss: lastEpoch.logloss }),
      },
    });
    return;
  }
  await initBackend('auto', opts.logger);
  const res = await trainFromEvents({ kind, events: history, logger: opts.logger, ...opts.metaTrain });
  const manifest = await store.publish({
    model: kind,
    parent: (await store.current(kind)) ?? null,
    architecture: res.bundle.architecture,
    metrics: { ...res.hyper, ...common, hotEntities: res.stats.entities, trainRows: res.stats.rows, finalLoss: res.stats.finalLoss, trainSec: res.stats.trainSec },
    files: res.bundle.files,
  });
  await store.promote(kind, manifest.version);
}

/** Reuses or trains every kind; returns them in `kinds` order. */
export async function prepareReleases(opts: PrepareReleasesOptions): Promise<ReleaseRef[]> {
  const out: ReleaseRef[] = [];
  for (const kind of opts.kinds) {
    const reusedDir = opts.reuseRoot === undefined ? undefined : resolve(join(opts.reuseRoot, kind));
    let ref = reusedDir === undefined ? undefined : await currentRef(kind, reusedDir, true, 0);
    const dir = resolve(join(opts.trainRoot, kind));
    ref ??= await currentRef(kind, dir, true, 0);
    if (ref === undefined) {
      const t0 = performance.now();
      opts.logger.info('training release', { kind, historyEvents: opts.history.length, dir });
      await train(kind, dir, opts);
      ref = await currentRef(kind, dir, false, (performance.now() - t0) / 1000);
      if (ref === undefined) throw new ThawError('RELEASE_NOT_FOUND', `training ${kind} published no current release in ${dir}`);
    }
    opts.logger.info('release', { kind, id: ref.id, dir: ref.dir, reused: ref.reused, historyEndMs: ref.historyEndMs });
    out.push(ref);
  }
  return out;
}
