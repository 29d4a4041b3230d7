/**
 * The online trainer's side of the online-speed bench:
 *   - the release each learner kind continues (built from the spine bench's models, so the worker's
 *     adapter and the learner run on the same release, as in production);
 *   - `learnAlone`: `OnlineLearner.observe` on in-memory chunks of decoded events, as the trainer
 *     hands them over (no Kafka, no decode);
 *   - `trainerDrain`: the `OnlineTrainer` of `thaw train --online` consuming the pre-produced topic
 *     in its own group from a release directory, timed from its first trained chunk to `limit`
 *     events trained; then one release published (`syncNow`: bundle, write, promote, commit), timed.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { ReleaseStore, type LoadedRelease } from '../../model-store/releases.js';
import type { FactorizationMachine } from '../../models/fm.js';
import { bundleCtr, bundleFm, bundleUser, type Bundle } from '../../models/onnx/bundle.js';
import type { LabelledEvent, Side } from '../../schemas/types.js';
import { OnlineTrainer } from '../../trainers/online-trainer.js';
import type { OnlineKind, OnlineLearner } from '../../trainers/online/learner.js';
import { benchNeuralModel } from '../spine/adapters.js';
import type { BenchResources, Services } from '../spine/fixtures.js';

/** Records of one chunk the trainer trains on between heartbeats (OnlineTrainer's `maxBatchMessages` default). */
export const TRAINER_CHUNK = 2000;

/** The release a learner of `kind` continues and the worker of that kind runs. */
export async function benchRelease(kind: OnlineKind, fm: FactorizationMachine, sample: readonly LabelledEvent[]): Promise<{ bundle: Bundle; release: LoadedRelease }> {
  let bundle: Bundle;
  if (kind === 'fm') bundle = bundleFm(fm, { entityStatePolicy: 'keep' });
  else {
    const m = await benchNeuralModel(kind, sample);
    if (m.name === 'emerg') bundle = bundleCtr(m.model, { eventLayout: m.layout, entityStatePolicy: 'keep' });
    else if (m.name === 'fixed-adaptive') bundle = bundleUser(m.model, { eventLayout: m.layout, entityStatePolicy: 'keep' });
    else throw new ConfigError('kind', `no online learner for ${m.name}`);
  }
  const release: LoadedRelease = { manifest: { model: kind, version: 'bench', parent: null, createdAtMs: Date.now(), architecture: bundle.architecture, metrics: {}, files: {} }, files: bundle.files };
  return { bundle, release };
}

export interface LearnAloneResult {
  events: number;
  chunks: number;
  ms: number;
  perSec: number;
}

/**
 * `learner.observe` on the batches the Kafka consumer delivered (decoded, in delivery order), each
 * cut into chunks of at most `TRAINER_CHUNK` as the trainer cuts them, one untimed warm-up chunk
 * first, until the batches run out or `maxMs` of observing, whichever comes first.
 */
export function learnAlone(learner: OnlineLearner, batches: readonly (readonly LabelledEvent[])[], maxMs = 10_000): LearnAloneResult {
  const chunks: (readonly LabelledEvent[])[] = [];
  for (const b of batches) for (let at = 0; at < b.length; at += TRAINER_CHUNK) chunks.push(b.slice(at, at + TRAINER_CHUNK));
  const [warm, ...timed] = chunks;
  if (warm === undefined || timed.length === 0) throw new ConfigError('events', `too few events for two chunks of ${TRAINER_CHUNK}`);
  learner.observe(warm);
  let ms = 0;
  let n = 0;
  let count = 0;
  for (const chunk of timed) {
    if (ms >= maxMs) break;
    const t0 = performance.now();
    learner.observe(chunk);
    ms += performance.now() - t0;
    n += chunk.length;
    count++;
  }
  return { events: n, chunks: count, ms, perSec: n / (ms / 1000) };
}

export interface TrainerDrainResult {
  /** Events trained between the first trained chunk and the end of the timing. */
  events: number;
  ms: number;
  perSec: number;
  /** One release published after the drain (bundle, write, fsync, promote, commit), ms. */
  publishMs: number;
  /** Bytes of that release's files. */
  releaseBytes: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The OnlineTrainer of `kind` on `topic` (its own group, from the beginning; the sync interval
 * pushed out of the timing), from a release directory holding `bundle` as the current release:
 * events/s from the first trained chunk until `limit` events are trained.
 */
export async function trainerDrain(
  services: Services,
  res: BenchResources,
  kind: OnlineKind,
  side: Side,
  bundle: Bundle,
  topic: string,
  limit: number,
  log: Logger,
  timeoutMs = 600_000,
): Promise<TrainerDrainResult> {
  const dir = res.dir(join(tmpdir(), `thaw-bench-online-speed-${res.id}-${kind}`));
  const store = new ReleaseStore({ root: dir });
  const base = await store.publish({ model: kind, architecture: bundle.architecture, files: bundle.files });
  await store.promote(kind, base.version);
  const trainer = new OnlineTrainer({ kafka: services.kafka, store, model: kind, side, kind, topic, groupId: res.group(`trainer-${kind}`), syncIntervalMs: 3_600_000, logger: log });
  await trainer.start();
  try {
    const deadline = performance.now() + timeoutMs;
    const trained = (): number => trainer.status().learner.events;
    while (trained() === 0) {
      if (performance.now() > deadline || trainer.state === 'failed') throw new Error(`online trainer ${kind}: nothing trained (state ${trainer.state})`);
      await sleep(5);
    }
    const t0 = performance.now();
    const first = trained();
    while (trained() < limit) {
      if (performance.now() > deadline || trainer.state === 'failed') throw new Error(`online trainer ${kind}: ${trained()}/${limit} events trained (state ${trainer.state})`);
      await sleep(5);
    }
    const ms = performance.now() - t0;
    const events = trained() - first;
    const tp = performance.now();
    const version = await trainer.syncNow();
    const publishMs = performance.now() - tp;
    const files = version === null ? [] : Object.values((await store.list(kind)).find((m) => m.version === version)?.files ?? {});
    return { events, ms, perSec: events / (ms / 1000), publishMs, releaseBytes: files.reduce((s, f) => s + f.bytes, 0) };
  } finally {
    await trainer.stop();
  }
}
