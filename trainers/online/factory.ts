/** Builds the online learner of a loaded release (its kind decides which). */
import { ThawError } from '../../lib/errors.js';
import type { LoadedRelease } from '../../model-store/releases.js';
import { FixedAdaptive } from '../../models/fixed-adaptive.js';
import { Emerg } from '../../models/emerg.js';
import { architectureOf, ctrFromRelease, fmFromRelease, userModelFromRelease } from '../../models/onnx/bundle.js';
import type { Side } from '../../schemas/types.js';
import { EmergOnlineLearner, type EmergLearnerOptions } from './emerg-learner.js';
import { FixedAdaptiveOnlineLearner, type FixedAdaptiveLearnerOptions } from './fixed-adaptive-learner.js';
import { FmOnlineLearner, type FmLearnerOptions } from './fm-learner.js';
import type { OnlineKind, OnlineLearner } from './learner.js';

export interface LearnerOptions {
  fm?: FmLearnerOptions;
  fixedAdaptive?: FixedAdaptiveLearnerOptions;
  emerg?: EmergLearnerOptions;
}

/**
 * The learner continuing `rel`: throws RELEASE_INCOMPATIBLE if the release is not of `kind`, is
 * for the other side, or (fixed-adaptive, emerg) lacks the event layout that says how streamed events map
 * to its fields. The release's state layout (and a meta release's bias filter prior) is kept, so
 * workers keep their states across releases.
 * Models with tf.js parameters need `initBackend` first.
 */
export function learnerFromRelease(rel: LoadedRelease, kind: OnlineKind, side: Side, opts: LearnerOptions = {}): OnlineLearner {
  const arch = architectureOf(rel);
  const where = `release ${rel.manifest.model}/${rel.manifest.version}`;
  if (arch.type !== kind) throw new ThawError('RELEASE_INCOMPATIBLE', `${where} is a ${arch.type} release; the online trainer was asked for ${kind}`);
  if (kind === 'fm') {
    // Two-sided: a trainer of either side's topic learns both sides (every event has both).
    return new FmOnlineLearner(fmFromRelease(rel), { stateLayout: arch.stateLayout, side, ...opts.fm });
  }
  if (kind === 'emerg') {
    if (side !== 'item') throw new ThawError('RELEASE_INCOMPATIBLE', 'emerg adapts items: use --side item');
    if (arch.eventLayout === undefined) throw new ThawError('RELEASE_INCOMPATIBLE', `${where} has no eventLayout: it was not trained for the stream (see trainers/event-trainer.ts)`);
    const model = ctrFromRelease(rel);
    if (!(model instanceof Emerg)) throw new ThawError('RELEASE_INCOMPATIBLE', `${where} is not an EmerG model`);
    return new EmergOnlineLearner(model, arch.eventLayout, { stateLayout: arch.stateLayout, ...(arch.biasFilter === undefined ? {} : { biasFilter: arch.biasFilter }), ...opts.emerg });
  }
  if (side !== 'user') throw new ThawError('RELEASE_INCOMPATIBLE', 'fixed-adaptive adapts users: use --side user');
  if (arch.eventLayout === undefined) throw new ThawError('RELEASE_INCOMPATIBLE', `${where} has no eventLayout: it was not trained for the stream (see trainers/event-trainer.ts)`);
  const model = userModelFromRelease(rel);
  if (!(model instanceof FixedAdaptive)) throw new ThawError('RELEASE_INCOMPATIBLE', `${where} is not a fixed-adaptive model`);
  return new FixedAdaptiveOnlineLearner(model, arch.eventLayout, { stateLayout: arch.stateLayout, ...(arch.biasFilter === undefined ? {} : { biasFilter: arch.biasFilter }), ...opts.fixedAdaptive });
}
