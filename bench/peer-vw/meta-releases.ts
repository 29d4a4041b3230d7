/**
 * The meta-learned releases of the peer benchmark: trained by `trainFromEvents` on the prefix the
 * shared FM trains on, kept in a ReleaseStore (`<dir>/<kind>`, model `peer-<kind>`) and reused on
 * the next run when trained on the same prefix with the same options (a rerun then costs only the
 * stream replay). The evaluation window is never seen here.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from '../../lib/log.js';
import { ThawError } from '../../lib/errors.js';
import { initBackend } from '../../models/backend.js';
import { ReleaseStore, type LoadedRelease } from '../../model-store/releases.js';
import type { LabelledEvent } from '../../schemas/types.js';
import { trainFromEvents, type EventTrainerOptions } from '../../trainers/event-trainer.js';

export const META_KINDS = ['emerg', 'coldnas', 'fixed-adaptive'] as const;
export type MetaKind = (typeof META_KINDS)[number];

export interface MetaReleaseOptions {
  /** trainFromEvents options besides kind and events. @default its defaults */
  train?: Omit<EventTrainerOptions, 'kind' | 'events' | 'logger'>;
  /** ReleaseStore roots `<dir>/<kind>` to reuse from and publish into. @default none: train, keep in memory */
  dir?: string;
  logger?: Logger;
}

/** What the result file records of a release. */
export interface MetaReleaseInfo {
  kind: MetaKind;
  /** `model/version`: the adapters' `release`. */
  release: string;
  reused: boolean;
  hotEntities: number;
  trainRows: number;
  trainSec: number;
  hyper: Record<string, number>;
}

/** A 32-bit fingerprint of the history and the options (manifest metrics hold numbers only). */
function fingerprint(kind: MetaKind, history: readonly LabelledEvent[], train: object): number {
  const last = history[history.length - 1];
  const h = createHash('sha256').update(JSON.stringify([kind, history.length, history[0]?.eventId, last?.eventId, last?.timeMs, train])).digest();
  return h.readUInt32BE(0);
}

function infoOf(kind: MetaKind, rel: LoadedRelease, reused: boolean): MetaReleaseInfo {
  const m = rel.manifest.metrics;
  const { hotEntities = NaN, trainRows = NaN, trainSec = NaN, fingerprint: _f, historyEvents: _h, ...hyper } = m;
  return { kind, release: `${rel.manifest.model}/${rel.manifest.version}`, reused, hotEntities, trainRows, trainSec, hyper };
}

/** Reuses (same prefix and options) or trains the `kind` release on `history`. */
export async function prepareMetaRelease(kind: MetaKind, history: readonly LabelledEvent[], opts: MetaReleaseOptions = {}): Promise<{ release: LoadedRelease; info: MetaReleaseInfo }> {
  const train = opts.train ?? {};
  const fp = fingerprint(kind, history, train);
  const model = `peer-${kind}`;
  const store = opts.dir === undefined ? undefined : new ReleaseStore({ root: resolve(join(opts.dir, kind)) });
  if (store !== undefined && existsSync(store.root)) {
    const version = await store.current(model);
    if (version !== undefined) {
      const rel = await store.load(model, version);
      if (rel.manifest.metrics.fingerprint === fp) return { release: rel, info: infoOf(kind, rel, true) };
    }
  }
  await initBackend('auto', opts.logger);
  const res = await trainFromEvents({ kind, events: history, ...train, ...(opts.logger === undefined ? {} : { logger: opts.logger }) });
  const metrics = { ...res.hyper, fingerprint: fp, historyEvents: history.length, hotEntities: res.stats.entities, trainRows: res.stats.rows, trainSec: res.stats.trainSec };
  let rel: LoadedRelease;
  if (store === undefined) {
    rel = { manifest: { model, version: 'v1', parent: null, createdAtMs: Date.now(), architecture: res.bundle.architecture, metrics, files: {} }, files: res.bundle.files };
  } else {
    const manifest = await store.publish({ model, parent: (await store.current(model)) ?? null, architecture: res.bundle.architecture, metrics, files: res.bundle.files });
    await store.promote(model, manifest.version);
    rel = await store.load(model, manifest.version);
  }
  if (rel.manifest.metrics.fingerprint !== fp) throw new ThawError('MODEL_ERROR', `release ${model} lost its fingerprint`);
  return { release: rel, info: infoOf(kind, rel, false) };
}
